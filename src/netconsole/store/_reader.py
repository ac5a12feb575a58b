"""Queries over the store, on a read-only connection.

Readers open the database as a `mode=ro` URI: they can never take the write
lock, so `tail -f`, `search` or the web view cannot stall the collector, and a
bug in a query cannot change the data. In WAL mode each query sees the last
committed batch, which is all `tail -f` needs: it polls `after_id`.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netconsole.store._codec import RECORD_COLUMNS, _quote, row_to_stored
from netconsole.store._errors import StoreError
from netconsole.store._model import (
    DEFAULT_SILENT_AFTER,
    HostInfo,
    IncidentGroup,
    RecordFilter,
    StoredEvent,
    StoredIncident,
    StoredRecord,
)
from netconsole.store._paths import default_db_path
from netconsole.store._schema import LATEST
from netconsole.store._spans import host_rows
from netconsole.stream.events import Sender

if TYPE_CHECKING:
    from netconsole.store._protocol import RecordQueries


@dataclass(frozen=True, slots=True)
class _Filters:
    """A query's conditions on records: `where` clauses over `records r` with
    their `params`, and the host ids to read (None: every host)."""

    where: list[str]
    params: list[Any]
    hosts: list[int] | None


_FROM_RECORDS = f"SELECT {RECORD_COLUMNS} FROM records r JOIN hosts h ON h.id = r.host_id"

_HOST_COLUMNS = (
    "id, address, port, local_port, name, release, first_seen, last_seen, last_record,"
    " records, lost_seq, lost_msgid, dropped, duplicates, reboots, incomplete, rejected, shed,"
    " boot"
)
# HostInfo's fields in the order `_HOSTS` selects them (status last, decided in SQL).
_HOST_FIELDS = (*(c.strip() for c in _HOST_COLUMNS.split(",")), "status")
_HOSTS = (
    f"SELECT {_HOST_COLUMNS}, CASE WHEN last_record IS NOT NULL AND ?1 - last_record <= ?2"
    " THEN 'live' ELSE 'silent' END FROM hosts ORDER BY coalesce(name, address), port, local_port"
)

_WORD = re.compile(r"\w")

_INCIDENT_COLUMNS = (
    "i.id, h.address, h.port, h.local_port, h.name, i.key, i.boot, i.kind, i.severity,"
    " i.state, i.title, i.fingerprint, i.culprit, i.frames, i.text, i.release, i.first_seq,"
    " i.last_seq, i.first_received, i.last_received, i.first_ts_usec, i.last_ts_usec,"
    " i.first_record_id, i.last_record_id, i.lines, i.dropped_lines, i.count, i.truncated,"
    " i.fatal, i.lane, i.task, i.updated_at, i.closed_at, i.previous_boot"
)
_FROM_INCIDENTS = f"SELECT {_INCIDENT_COLUMNS} FROM incidents i JOIN hosts h ON h.id = i.host_id"


def _row_to_incident(row: Sequence[Any]) -> StoredIncident:
    (iid, address, port, local_port, name, key, boot, kind, severity, state, title,
     fingerprint, culprit, frames, text, release, first_seq, last_seq, first_received,
     last_received, first_ts_usec, last_ts_usec, first_record_id, last_record_id, lines,
     dropped_lines, count, truncated, fatal, lane, task, updated_at, closed_at,
     previous_boot) = row
    return StoredIncident(
        id=iid, sender=Sender(host=address, port=port, local_port=local_port), name=name,
        key=key, boot=boot, kind=kind, severity=severity, state=state, title=title,
        fingerprint=fingerprint, culprit=culprit, frames=tuple(json.loads(frames)), text=text,
        release=release, first_seq=first_seq, last_seq=last_seq,
        first_received=first_received, last_received=last_received,
        first_ts_usec=first_ts_usec, last_ts_usec=last_ts_usec,
        first_record_id=first_record_id, last_record_id=last_record_id, lines=lines,
        dropped_lines=dropped_lines, count=count, truncated=bool(truncated),
        fatal=bool(fatal), lane=lane, task=task, updated_at=updated_at, closed_at=closed_at,
        previous_boot=bool(previous_boot),
    )


def fts_query(text: str) -> str:
    """A user's words as an FTS5 query that means "all of these, as written".

    Each whitespace-separated word becomes a quoted phrase (quotes doubled), so
    `eth0: link down` or `rcu_sched` or `-EIO` never hit FTS5's own syntax
    (`-`, `:`, `AND`, `*`); FTS then matches the word's tokens adjacent.

    Raises:
        StoreError: there is nothing to search for.
    """
    words = [w for w in text.split() if _WORD.search(w)]
    if not words:
        raise StoreError(f"nothing to search for in {text!r}")
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def _field_clause(key: str, value: str) -> tuple[str, list[Any]]:
    """A record has the field `key` with `value` (any of its pairs of that key).

    `instr` on the key as the writer spells it in JSON rules most rows out
    cheaply; json_extract decides exactly (a key may appear more than once).
    """
    sql = (
        "(instr(r.fields, ?) > 0 AND EXISTS (SELECT 1 FROM json_each(r.fields) j"
        " WHERE json_extract(j.value, '$[0]') = ? AND json_extract(j.value, '$[1]') = ?))"
    )
    return sql, [_quote(key), key, value]


def _match_clauses(match: RecordFilter, where: list[str], params: list[Any]) -> None:
    """The WHERE clauses of a RecordFilter, appended to `where` and `params`."""
    for column, value in (("r.cpu", match.cpu), ("r.taskname", match.task),
                          ("r.msgid", match.msgid), ("r.boot", match.boot)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if match.release is not None:
        # The release prefix (6.6+), else the release= sysdata (Record.kernel_release).
        clause, values = _field_clause("release", match.release)
        where.append(f"(r.release = ? OR (r.release IS NULL AND {clause}))")
        params.extend([match.release, *values])
    for key, value in match.fields:
        clause, values = _field_clause(key, value)
        where.append(clause)
        params.extend(values)


@functools.lru_cache(maxsize=32)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _regexp(pattern: str, text: str | None) -> bool:
    return text is not None and _compile(pattern).search(text) is not None


class SQLiteReader:
    """Every query the CLI and web view make. Open with `open_reader()`.

    Methods return lists (bounded by `limit`) or iterators (`export`) of the
    `_model` dataclasses; records come back in id order, oldest first.
    """

    def __init__(
        self, conn: sqlite3.Connection, *, silent_after: float = DEFAULT_SILENT_AFTER
    ) -> None:
        self.conn = conn
        self.silent_after = silent_after
        conn.create_function("regexp", 2, _regexp, deterministic=True)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> SQLiteReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ------------------------------------------------------------

    def _host_ids(self, host: str) -> list[int]:
        """Hosts matching a name, an address, or `address:port` (`[v6]:port`)."""
        rows = self.conn.execute(
            "SELECT id FROM hosts WHERE name = ?1 OR address = ?1"
            " OR address || ':' || port = ?1 OR '[' || address || ']:' || port = ?1",
            (host,),
        ).fetchall()
        return [row[0] for row in rows]

    def _filters(
        self,
        *,
        host: str | None,
        since: float | None,
        until: float | None = None,
        level: int | None = None,
        grep: str | None = None,
        match: RecordFilter | None = None,
    ) -> _Filters | None:
        """The filters as WHERE clauses; None when the host matches nothing."""
        where: list[str] = []
        params: list[Any] = []
        if match is not None:
            _match_clauses(match, where, params)
        hosts = None
        if host is not None:
            hosts = self._host_ids(host)
            if not hosts:
                return None
        if since is not None:
            where.append("r.received >= ?")
            params.append(since)
        if until is not None:
            where.append("r.received < ?")
            params.append(until)
        if level is not None:
            # printk levels: lower is more severe; records without one are left out.
            where.append("r.level <= ?")
            params.append(level)
        if grep is not None:
            try:
                _compile(grep)
            except re.error as exc:
                raise StoreError(f"bad --grep pattern {grep!r}: {exc}") from None
            where.append("r.text REGEXP ?")
            params.append(grep)
        return _Filters(where=where, params=params, hosts=hosts)

    def _read(self, filters: _Filters, *, after: int = 0, newest_first: bool = False,
              limit: int) -> list[StoredRecord]:
        """Up to `limit` records past id `after` that pass `filters`, in id order
        (descending with `newest_first`). A host's through its spans
        (store/_spans.py), several hosts' merged; else by the table's order."""
        where, params = filters.where, filters.params
        try:
            if filters.hosts is None:
                sql = _FROM_RECORDS + " WHERE " + " AND ".join([*where, "r.id > ?"])
                sql += " ORDER BY r.id DESC LIMIT ?" if newest_first else " ORDER BY r.id LIMIT ?"
                rows = self.conn.execute(sql, [*params, after, limit]).fetchall()
            else:
                rows = []
                for host_id in filters.hosts:
                    rows += host_rows(self.conn, _FROM_RECORDS, host_id, above=after, where=where,
                                      params=params, newest_first=newest_first, limit=limit)
                if len(filters.hosts) > 1:
                    rows.sort(key=itemgetter(0), reverse=newest_first)
                    del rows[limit:]
        except sqlite3.OperationalError as exc:
            raise StoreError(str(exc)) from exc
        return [row_to_stored(row) for row in rows]

    def _records(self, sql: str, params: Sequence[Any]) -> list[StoredRecord]:
        try:
            rows = self.conn.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreError(str(exc)) from exc
        return [row_to_stored(row) for row in rows]

    # -- queries ------------------------------------------------------------

    def last_id(self) -> int:
        """The newest record id (0 when empty): where `tail -f` starts polling."""
        row = self.conn.execute("SELECT max(id) FROM records").fetchone()
        return int(row[0] or 0)

    def tail(
        self,
        *,
        host: str | None = None,
        level: int | None = None,
        since: float | None = None,
        grep: str | None = None,
        limit: int = 100,
        after_id: int | None = None,
        match: RecordFilter | None = None,
    ) -> list[StoredRecord]:
        """Records matching the filters, oldest first.

        Without `after_id`: the last `limit` of them. With it: the first `limit`
        with a larger id (poll with the last id seen to follow).

        Args:
            host: a host name, address or `address:port`.
            level: this printk level and more severe (0 emerg … 7 debug).
            since: unix time; records received at or after it.
            grep: a Python regular expression searched in the text.
            match: the record facts to match (cpu, task, msgid, release, boot, fields).
        """
        filters = self._filters(host=host, since=since, level=level, grep=grep, match=match)
        if filters is None:
            return []
        if after_id is not None:
            return self._read(filters, after=after_id, limit=limit)
        return self._read(filters, newest_first=True, limit=limit)[::-1]

    def search(
        self,
        query: str,
        *,
        host: str | None = None,
        since: float | None = None,
        limit: int = 100,
        fts_syntax: bool = False,
        match: RecordFilter | None = None,
    ) -> list[StoredRecord]:
        """The newest `limit` records whose text or field values match, oldest first.

        Args:
            query: words that must all appear, in the text or in the values of
                the userdata and printk dictionary (each matched as written), or,
                with `fts_syntax`, an FTS5 query (`"link down" OR oom*`; the
                columns are `text` and `fields`).
            match: the record facts to match besides (cpu, task, … as `tail`).

        Raises:
            StoreError: an empty query, or an FTS5 syntax error.
        """
        fts = query if fts_syntax else fts_query(query)
        filters = self._filters(host=host, since=since, match=match)
        if filters is None:
            return []
        where, params = filters.where, filters.params
        if filters.hosts is not None:
            # FTS finds the matches newest first; the host's are picked from them.
            where = [*where, f"r.host_id IN ({', '.join('?' * len(filters.hosts))})"]
            params = [*params, *filters.hosts]
        sql = (
            f"SELECT {RECORD_COLUMNS} FROM records_fts f"
            " JOIN records r ON r.id = f.rowid JOIN hosts h ON h.id = r.host_id"
            " WHERE records_fts MATCH ?"
            + "".join(" AND " + clause for clause in where)
            # By the FTS rowid (the same number as records.id), which FTS5 reads
            # backwards and stops after `limit`; by `r.id`, SQLite first collects
            # and sorts every match (350 ms for a word in a third of 10^6 records).
            + " ORDER BY f.rowid DESC LIMIT ?"
        )
        return self._records(sql, [fts, *params, limit])[::-1]

    def export(
        self,
        *,
        host: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int = 0,
        chunk: int = 1000,
        match: RecordFilter | None = None,
    ) -> Iterator[StoredRecord]:
        """Every matching record, oldest first, read `chunk` rows at a time.

        Each chunk is its own read transaction, so a long export does not pin
        the WAL (which would stop checkpoints and let the `-wal` file grow).
        """
        filters = self._filters(host=host, since=since, until=until, match=match)
        if filters is None:
            return
        last = after_id
        while True:
            batch = self._read(filters, after=last, limit=chunk)
            yield from batch
            if len(batch) < chunk:
                return
            last = batch[-1].id

    def hosts(self, *, now: float, silent_after: float | None = None) -> list[HostInfo]:
        """Every sender, by name/address, with its counters and live/silent status.

        A host is `silent` when its last record is older than `silent_after`
        seconds (default: the reader's), or it never sent one.
        """
        limit = self.silent_after if silent_after is None else silent_after
        # One query decides everything, status included: the Python side only builds
        # the dataclasses (a fleet has 100,000s of senders; see bench/hosts_query.py).
        rows = self.conn.execute(_HOSTS, (now, limit)).fetchall()
        return [HostInfo(**dict(zip(_HOST_FIELDS, row, strict=True))) for row in rows]

    def events(
        self,
        *,
        host: str | None = None,
        since: float | None = None,
        kind: str | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[StoredEvent]:
        """Gaps, reboots and incomplete records, oldest first, after `after_id`."""
        where = ["e.id > ?"]
        params: list[Any] = [after_id]
        if host is not None:
            ids = self._host_ids(host)
            if not ids:
                return []
            where.append(f"e.host_id IN ({', '.join('?' * len(ids))})")
            params.extend(ids)
        if since is not None:
            where.append("e.at >= ?")
            params.append(since)
        if kind is not None:
            where.append("e.kind = ?")
            params.append(kind)
        rows = self.conn.execute(
            "SELECT e.id, h.address, h.port, h.local_port, h.name, e.at, e.kind, e.detail"
            " FROM events e JOIN hosts h ON h.id = e.host_id WHERE "
            + " AND ".join(where)
            + " ORDER BY e.id LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [
            StoredEvent(
                id=eid,
                sender=Sender(host=address, port=port, local_port=local_port),
                name=name,
                at=at,
                kind=kind_,
                detail=json.loads(detail),
            )
            for eid, address, port, local_port, name, at, kind_, detail in rows
        ]

    def incidents(
        self,
        *,
        host: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        fingerprint: str | None = None,
        limit: int = 100,
    ) -> list[StoredIncident]:
        """The newest `limit` incidents matching the filters, oldest first.

        Args:
            host: a host name, address or `address:port`.
            kind: an incident kind (`panic`, `oops`, ...; see `netconsole.incidents.Kind`).
            since: unix time; incidents whose first record came at or after it.
            fingerprint: only this crash (as `incidents_top` groups them).
        """
        where: list[str] = []
        params: list[Any] = []
        if host is not None:
            ids = self._host_ids(host)
            if not ids:
                return []
            where.append(f"i.host_id IN ({', '.join('?' * len(ids))})")
            params.extend(ids)
        for column, value in (("i.kind", kind), ("i.fingerprint", fingerprint)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("i.first_received >= ?")
            params.append(since)
        sql = _FROM_INCIDENTS + (" WHERE " + " AND ".join(where) if where else "")
        rows = self.conn.execute(
            sql + " ORDER BY i.first_received DESC, i.id DESC LIMIT ?", [*params, limit]
        ).fetchall()
        return [_row_to_incident(row) for row in reversed(rows)]

    def incident(self, incident_id: int) -> StoredIncident | None:
        """One incident by id, or None."""
        row = self.conn.execute(_FROM_INCIDENTS + " WHERE i.id = ?", (incident_id,)).fetchone()
        return _row_to_incident(row) if row is not None else None

    def incident_records(self, incident_id: int, *, limit: int = 10_000) -> list[StoredRecord]:
        """The host's records from the incident's first to its last (interleaved
        lines of other reports included: they are the host's log as it came)."""
        row = self.conn.execute(
            "SELECT host_id, first_record_id, last_record_id FROM incidents WHERE id = ?",
            (incident_id,),
        ).fetchone()
        if row is None or row[1] is None:
            return []
        host_id, first, last = row
        rows = host_rows(self.conn, _FROM_RECORDS, host_id, above=first - 1,
                         below=(last if last is not None else first) + 1, limit=limit)
        return [row_to_stored(r) for r in rows]

    def incidents_top(self, *, since: float | None = None, limit: int = 20) -> list[IncidentGroup]:
        """Incidents grouped by fingerprint across hosts, the most frequent first.

        Each group says how many incidents and distinct hosts share the
        fingerprint, when it was first and last seen, the newest incident's
        title, culprit and id, and up to five host names.
        """
        where, params = "", []
        if since is not None:
            where, params = " WHERE i.first_received >= ?", [since]
        rows = self.conn.execute(
            "SELECT i.fingerprint, count(*), count(DISTINCT i.host_id), min(i.first_received),"
            " max(i.first_received), max(i.id) FROM incidents i" + where +
            " GROUP BY i.fingerprint ORDER BY count(*) DESC, count(DISTINCT i.host_id) DESC,"
            " max(i.first_received) DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        out = []
        for fingerprint, count, hosts, first, last, latest in rows:
            kind, title, culprit = self.conn.execute(
                "SELECT kind, title, culprit FROM incidents WHERE id = ?", (latest,)
            ).fetchone()
            names = self.conn.execute(
                "SELECT DISTINCT coalesce(h.name, h.address) FROM incidents i"
                " JOIN hosts h ON h.id = i.host_id WHERE i.fingerprint = ?" +
                where.replace(" WHERE", " AND") + " LIMIT 5",
                [fingerprint, *params],
            ).fetchall()
            out.append(IncidentGroup(
                fingerprint=fingerprint, kind=kind, title=title, culprit=culprit,
                incidents=count, hosts=hosts, first=first, last=last, latest_id=latest,
                host_names=tuple(n[0] for n in names),
            ))
        return out

    def seen_nonce(self, nonce: str, *, since: float | None = None) -> bool:
        """Whether any stored record's text contains `nonce` exactly.

        `netconsole setup` logs a nonce through the kernel and asks this to
        prove delivery. FTS narrows the candidates; `instr` confirms the exact
        substring (FTS alone would also match the tokens in another order of
        punctuation).

        A nonce without a letter or digit is never seen: FTS has no token of
        it, and scanning every record for it is not worth a request (the API
        refuses one). Nor is one with a NUL, which FTS cannot take.
        """
        if not _WORD.search(nonce) or "\x00" in nonce:
            return False
        params: list[Any] = [fts_query(nonce), nonce]
        clause = ""
        if since is not None:
            clause = " AND r.received >= ?"
            params.append(since)
        sql = (
            "SELECT 1 FROM records_fts f JOIN records r ON r.id = f.rowid"
            " WHERE records_fts MATCH ? AND instr(r.text, ?) > 0" + clause + " LIMIT 1"
        )
        return self.conn.execute(sql, params).fetchone() is not None


def open_sqlite_reader(
    path: Path | str | None = None, *, silent_after: float = DEFAULT_SILENT_AFTER
) -> SQLiteReader:
    """Open the database read-only (`mode=ro`) for queries (`open_reader` in
    store/_open.py picks this backend or ClickHouse's).

    Raises:
        StoreError: no database at `path` (nothing has been received yet), or
            its schema is older (start `netconsole listen` once to migrate) or
            newer than this netconsole.
    """
    resolved = Path(path) if path is not None else default_db_path()
    if not resolved.is_file():
        raise StoreError(
            f"no database at {resolved}: start `netconsole listen` first, or pass --db PATH"
        )
    uri = resolved.resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{resolved}: {exc}") from exc
    if version != LATEST:
        conn.close()
        if version > LATEST:
            raise StoreError(f"{resolved}: schema v{version} is newer than this netconsole")
        raise StoreError(
            f"{resolved}: schema v{version} is older than v{LATEST}; "
            "start `netconsole listen` once to migrate it"
        )
    return SQLiteReader(conn, silent_after=silent_after)


def follow(
    reader: RecordQueries,
    *,
    after_id: int,
    interval: float = 0.5,
    sleep: Callable[[float], object] = time.sleep,
    host: str | None = None,
    level: int | None = None,
    grep: str | None = None,
    batch: int = 1000,
    match: RecordFilter | None = None,
) -> Iterator[StoredRecord]:
    """Records stored after `after_id`, as they arrive; never returns.

    Polls `tail(after_id=…)` and sleeps `interval` seconds whenever it is
    caught up. Polling a read-only connection is what lets any number of
    followers run without touching the writer (no notifications to wire up,
    no lock taken). Stop it by closing the generator or with KeyboardInterrupt.
    """
    last = after_id
    while True:
        batch_records = reader.tail(host=host, level=level, grep=grep, limit=batch,
                                    after_id=last, match=match)
        yield from batch_records
        if batch_records:
            last = batch_records[-1].id
        if len(batch_records) < batch:
            sleep(interval)
