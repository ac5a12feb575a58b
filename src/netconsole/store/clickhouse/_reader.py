"""Queries over the ClickHouse store: what `SQLiteReader` answers, the same way.

Every method of `store/_reader.py`'s `SQLiteReader` that the CLI, `setup` and
the HTTP API use is here with the same arguments and results, so `tail`,
`search`, `hosts`, `export`, `incidents` and `/api/v1/seen` work on either
backend. Where the engines differ:

* Order: records are in `(received, n)` order -- receive time, then arrival
  within one wake-up -- which is the SQLite id order for one receiver and the
  only order several receivers share. Ids are hashes (docs/scale-out.md), so
  `after_id` means "after that record in this order" (`export`), or for
  `tail -f` "stored after it" (`_Follow`).
* Duplicates: a retried insert may have left copies with the same key until
  ClickHouse merges them; every read keeps one (`LIMIT 1 BY id`,
  `uniqExact(id)`).
* Host counters are computed from the rows (see `hosts`), so they count what
  retention kept, where SQLite's count everything ever stored.
* Search has no FTS index: the text column is scanned for each word
  (`positionCaseInsensitiveUTF8`), and the candidates are matched here with
  the rules of SQLite's FTS5 `unicode61` tokenizer (`fts_match`), so the same
  records match -- except that diacritics are not folded (`cafe` does not find
  `café`). `--fts` syntax is SQLite's own and not available.
* `--grep` is Python's `re` on the text, as on SQLite, applied here.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
from netconsole.store.clickhouse._client import Client
from netconsole.store.clickhouse._dialect import (
    ONE_PER_KEY,
    SETTINGS_PER_HOST,
    after,
    contains,
    contains_ci,
    has_token,
    in_list,
    number,
    quote,
    table,
)
from netconsole.store.clickhouse._url import ClickHouseURL
from netconsole.stream.events import Record, Sender
from netconsole.wire import Flag, Mode

RECORD_COLUMNS = (
    "host_id", "received", "n", "id", "boot", "stored", "mode", "release", "facility",
    "level", "seq", "ts_usec", "flag", "caller", "text", "fields.key", "fields.value",
    "header_extra", "complete", "missing",
)
SELECT_RECORDS = ", ".join(f"`{c}`" if "." in c else c for c in RECORD_COLUMNS)
_NEWEST_FIRST = "ORDER BY received DESC, n DESC, id DESC"
_OLDEST_FIRST = "ORDER BY received, n, id"
_KEY = ("received", "n", "id")

HOST_FACTS = (
    "argMaxIf(value, (at, n), kind = 'name'), countIf(kind = 'name'),"
    " argMaxIf(value, (at, n), kind = 'release'), countIf(kind = 'release'),"
    " maxIf(toUInt32OrZero(value), kind = 'boot'), countIf(kind = 'host')"
)
"""A host's current facts from its `hosts` rows (GROUP BY host_id): name and
release (newest, and whether there is one), boot, and whether it is written."""

INCIDENT_COLUMNS = (
    "id", "host_id", "key", "boot", "kind", "severity", "state", "title", "fingerprint",
    "culprit", "frames", "text", "release", "first_seq", "last_seq", "first_received",
    "last_received", "first_ts_usec", "last_ts_usec", "first_record_id", "last_record_id",
    "lines", "dropped_lines", "count", "truncated", "fatal", "lane", "task", "at",
    "closed_at", "previous_boot",
)

CHUNK = 2000
"""Rows read per query when results are filtered here (grep, search)."""
WINDOWS = (3600.0, 86400.0, None)
"""How far back the newest records are looked for first: a recent partition is
read before the whole table is."""
FOLLOW_SLACK_USEC = 10_000_000
"""`tail -f`: a record shows even if it became visible this long (by the
receivers' clocks) after a newer one did -- another receiver's batch, clocks a
little apart."""
FOLLOW_RECEIVED_LAG = 3600.0
"""`tail -f` shows records received up to this long before they were stored
(a spool delivered after an outage); older ones are stored but not followed."""

_MODES = {mode.value: mode for mode in Mode}
_FLAGS = {flag.value: flag for flag in Flag}
_TOKEN = re.compile(r"[^\W_]+")
_WORD = re.compile(r"\w")
INT64_MAX = (1 << 63) - 1


def _b(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def row_to_stored(row: Sequence[Any], sender: Sender, name: str | None) -> StoredRecord:
    """A `RECORD_COLUMNS` row back to the exact Record."""
    (_hid, received, _n, rid, boot, _stored, mode, release, facility, level, seq, ts_usec,
     flag, caller, text, keys, values, header_extra, complete, missing) = row
    record = Record(
        sender=sender, mode=_MODES[mode], received=float(received), text=_b(text),
        release=release, facility=facility, level=level, seq=seq, ts_usec=ts_usec,
        flag=_FLAGS[flag], caller=caller,
        fields=tuple((_b(k), _b(v)) for k, v in zip(keys, values, strict=True)),
        header_extra=tuple(json.loads(header_extra)) if header_extra else (),
        complete=bool(complete),
        missing=tuple((int(a), int(b)) for a, b in json.loads(missing)) if missing else (),
    )
    return StoredRecord(id=int(rid), record=record, name=name, boot=int(boot))


def _fold(token: str) -> str:
    """FTS5 unicode61's case folding (diacritics are kept: see the module doc)."""
    return token.lower()


def tokens(text: str) -> list[str]:
    """Text as FTS5's `unicode61` tokenizer splits it: runs of letters and digits
    (`_` and punctuation separate), case-folded."""
    return [_fold(t) for t in _TOKEN.findall(text)]


def fts_words(query: str) -> list[list[str]]:
    """The user's words (as `store.fts_query` quotes them) as token phrases.

    Raises:
        StoreError: there is nothing to search for.
    """
    words = [tokens(w) for w in query.split() if _WORD.search(w)]
    words = [w for w in words if w]
    if not words:
        raise StoreError(f"nothing to search for in {query!r}")
    return words


def _has(have: list[str], phrase: list[str]) -> bool:
    k = len(phrase)
    return any(have[i:i + k] == phrase for i in range(len(have) - k + 1))


def fts_match(text: str, words: list[list[str]], fields: str | None = None) -> bool:
    """Whether every phrase's tokens appear next to each other, in `text` or in
    `fields` (FTS5 matches a phrase within one column)."""
    in_text = tokens(text)
    in_fields = tokens(fields) if fields else []
    return all(_has(in_text, phrase) or _has(in_fields, phrase) for phrase in words)


SYSDATA = ("cpu", "taskname", "release", "msgid")


def field_text(keys: Sequence[str], values: Sequence[str]) -> str | None:
    """What the SQLite store's search indexes of a record's fields
    (store/_schema.py FTS_FIELD_VALUES): the values but sysdata's, space-separated;
    nothing when there are none or the fields start with sysdata."""
    if not keys or keys[0] in SYSDATA:
        return None
    return " ".join(_b(v).decode("utf-8", "replace") for k, v in zip(keys, values, strict=True)
                    if k not in SYSDATA)


def _has_field(key: str, value: str) -> str:
    return (f"arrayExists((k, v) -> k = {quote(key)} AND v = {quote(value)},"
            " `fields.key`, `fields.value`)")


def _match_clauses(match: RecordFilter) -> list[str]:
    """The WHERE clauses of a RecordFilter (as the SQLite reader's)."""
    where = [f"{column} = {int(value)}" for column, value in
             (("cpu", match.cpu), ("msgid", match.msgid), ("boot", match.boot))
             if value is not None]
    if match.task is not None:
        where.append(f"taskname = {quote(match.task)}")
    if match.release is not None:
        # The release prefix (6.6+), else the release= sysdata (Record.kernel_release).
        where.append(f"(release = {quote(match.release)} OR (isNull(release) AND"
                     f" {_has_field('release', match.release)}))")
    where += [_has_field(key, value) for key, value in match.fields]
    return where


@functools.lru_cache(maxsize=32)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _grep(pattern: re.Pattern[str], row: list[Any]) -> bool:
    """`--grep` on a record row: Python's `re`, on the text as SQLite stores it."""
    return pattern.search(_b(row[14]).decode("utf-8", "replace")) is not None


@dataclass(slots=True)
class _Follow:
    """Where a `tail -f` is: records stored up to `floor` (µs) are shown or
    older; `seen` holds the ids read in the last FOLLOW_SLACK_USEC before it,
    with their stored time, so a late one shows and none shows twice."""

    cursor: int
    where: tuple[str, ...]
    floor: int
    seen: dict[int, int] = field(default_factory=dict)


class ClickHouseReader:
    """The queries of `SQLiteReader` over a ClickHouse store. Open with
    `open_clickhouse_reader()`; methods return the same dataclasses."""

    def __init__(self, client: Client, url: ClickHouseURL, *,
                 silent_after: float = DEFAULT_SILENT_AFTER, owned: bool = False) -> None:
        self.client = client
        self.url = url
        self.silent_after = silent_after
        self._owned = owned
        self._follow: _Follow | None = None

    def close(self) -> None:
        if self._owned:
            self.client.close()

    def __enter__(self) -> ClickHouseReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _t(self, name: str) -> str:
        return table(self.url.database, name)

    def _select(self, sql: str, settings: Mapping[str, str | int] | None = None
                ) -> list[list[Any]]:
        return self.client.select(sql, settings=settings)

    # -- hosts --------------------------------------------------------------------------

    def _host_rows(self, where: str = "", having: str = "") -> dict[int, list[Any]]:
        """host id -> [address, port, local_port, name, release, boot, written]."""
        out = {}
        for row in self._select(
                f"SELECT host_id, any(address), any(port), any(local_port), {HOST_FACTS}"
                f" FROM {self._t('hosts')}{where} GROUP BY host_id{having}",
                settings=SETTINGS_PER_HOST):
            hid, address, port, local_port, name, has_name, release, has_release, boot, \
                written = row
            out[int(hid)] = [address, int(port), int(local_port),
                             name if has_name else None, release if has_release else None,
                             int(boot), bool(written)]
        return out

    def _labels(self, ids: Sequence[int]) -> dict[int, tuple[Sender, str | None]]:
        """The sender and current name of each host id."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = self._host_rows(f" WHERE {in_list('host_id', wanted)}")
        return {hid: (Sender(host=r[0], port=r[1], local_port=r[2]), r[3])
                for hid, r in rows.items()}

    def _host_ids(self, host: str) -> list[int]:
        """Hosts matching a name, an address, or `address:port` (`[v6]:port`)."""
        h = quote(host)
        having = (
            f" HAVING (countIf(kind = 'name') > 0 AND argMaxIf(value, (at, n), kind = 'name')"
            f" = {h}) OR any(address) = {h}"
            f" OR concat(any(address), ':', toString(any(port))) = {h}"
            f" OR concat('[', any(address), ']:', toString(any(port))) = {h}")
        return sorted(self._host_rows(having=having))

    # -- records ------------------------------------------------------------------------

    def _filters(self, *, host: str | None, since: float | None, until: float | None = None,
                 level: int | None = None, match: RecordFilter | None = None
                 ) -> list[str] | None:
        """WHERE clauses; None when the host matches nothing."""
        where: list[str] = [] if match is None else _match_clauses(match)
        if host is not None:
            ids = self._host_ids(host)
            if not ids:
                return None
            where.append(in_list("host_id", ids))
        if since is not None:
            where.append(f"received >= {number(since)}")
        if until is not None:
            where.append(f"received < {number(until)}")
        if level is not None:
            # printk levels: lower is more severe; records without one are left out.
            where.append(f"level <= {int(level)}")
        return where

    def _rows(self, where: Sequence[str], order: str, limit: int) -> list[list[Any]]:
        """Up to `limit` records, one row per id. Through a Distributed table,
        18.16 applies the LIMIT on each shard before the LIMIT BY, so copies not
        yet merged make a page short: callers page on until a page is empty."""
        clause = " WHERE " + " AND ".join(where) if where else ""
        return self._select(f"SELECT {SELECT_RECORDS} FROM {self._t('records')}{clause}"
                            f" {order} {ONE_PER_KEY} LIMIT {int(limit)}")

    def _stored(self, rows: Sequence[Sequence[Any]]) -> list[StoredRecord]:
        labels = self._labels([int(r[0]) for r in rows])
        return [row_to_stored(r, *labels[int(r[0])]) for r in rows]

    def _newest(self, where: Sequence[str], limit: int,
                keep: Callable[[list[Any]], bool] | None = None) -> list[StoredRecord]:
        """The newest `limit` records matching `where` (and `keep`), oldest first:
        read newest first, in the last hour, then day, then all."""
        if limit <= 0:
            return []
        found: list[list[Any]] = []
        cursor: tuple[float, int, int] | None = None
        now = time.time()
        chunk = limit if keep is None else max(limit, CHUNK)
        for window in WINDOWS:
            lower = None if window is None else now - window
            while True:
                clauses = list(where)
                if lower is not None:
                    clauses.append(f"received >= {number(lower)}")
                if cursor is not None:
                    clauses.append(f"({', '.join(_KEY)}) < ({number(cursor[0])},"
                                   f" {cursor[1]}, {cursor[2]})")
                rows = self._rows(clauses, _NEWEST_FIRST, chunk)
                if not rows:  # not "fewer than asked": see `_rows`
                    break
                found += rows if keep is None else [r for r in rows if keep(r)]
                if len(found) >= limit:
                    return self._stored(found[:limit][::-1])
                last = rows[-1]
                cursor = (float(last[1]), int(last[2]), int(last[3]))
            if lower is not None:
                cursor = (lower, 0, 0)  # everything from `lower` on is read
        return self._stored(found[::-1])

    def last_id(self) -> int:
        """The id of the record stored last (0 when empty): where `tail -f` starts."""
        for window in WINDOWS:
            where = "" if window is None else f" WHERE received >= {number(time.time() - window)}"
            rows = self._select(f"SELECT id FROM {self._t('records')}{where}"
                                " ORDER BY stored DESC, received DESC, n DESC LIMIT 1")
            if rows:
                return int(rows[0][0])
        return 0

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
        """Records matching the filters, oldest first: the last `limit`, or with
        `after_id` the next ones stored after that record (`tail -f` polls
        with the last id it got; see `_Follow`)."""
        where = self._filters(host=host, since=since, level=level, match=match)
        if where is None:
            return []
        keep: Callable[[list[Any]], bool] | None = None
        if grep is not None:
            try:
                pattern = _compile(grep)
            except re.error as exc:
                raise StoreError(f"bad --grep pattern {grep!r}: {exc}") from None
            keep = functools.partial(_grep, pattern)
        if after_id is not None:
            return self._poll(tuple(where), after_id, limit, keep)
        return self._newest(where, limit, keep)

    def _stored_at(self, rid: int) -> int:
        if not rid:
            return 0
        rows = self._select(f"SELECT max(stored), count() FROM {self._t('records')}"
                            f" WHERE id = {int(rid)}")
        return int(rows[0][0]) if rows and rows[0][1] else 0

    def _poll(self, where: tuple[str, ...], after_id: int, limit: int,
              keep: Callable[[list[Any]], bool] | None) -> list[StoredRecord]:
        """The next records stored after `after_id` (see `_Follow`)."""
        state = self._follow
        if state is None or state.cursor != after_id or state.where != where:
            floor = self._stored_at(after_id)
            state = _Follow(cursor=after_id, where=where, floor=floor)
            if floor:  # what was visible up to it counts as shown
                window = [*where, f"stored >= {floor - FOLLOW_SLACK_USEC}",
                          f"stored <= {floor}",
                          f"received >= {number(floor / 1e6 - FOLLOW_RECEIVED_LAG)}"]
                for rid, stored in self._select(f"SELECT id, stored FROM {self._t('records')}"
                                                " WHERE " + " AND ".join(window)):
                    state.seen[int(rid)] = int(stored)
        clauses = [*where, f"stored >= {max(0, state.floor - FOLLOW_SLACK_USEC)}"]
        if state.floor:
            clauses.append(f"received >= {number(state.floor / 1e6 - FOLLOW_RECEIVED_LAG)}")
        rows = self._rows(clauses, "ORDER BY stored, received, n, id", limit + len(state.seen))
        taken: list[list[Any]] = []
        newest = state.floor
        for row in rows:
            rid, stored = int(row[3]), int(row[5])
            if rid in state.seen:
                continue
            if len(taken) >= limit:
                break
            state.seen[rid] = stored
            newest = max(newest, stored)
            if keep is None or keep(row):
                taken.append(row)
        else:  # every row read was looked at: the floor may move to the newest of them
            if rows:
                newest = max(newest, int(rows[-1][5]))
        state.floor = newest
        low = state.floor - FOLLOW_SLACK_USEC
        state.seen = {rid: s for rid, s in state.seen.items() if s >= low}
        out = self._stored(taken)
        if out:
            state.cursor = out[-1].id
        self._follow = state
        return out

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
        """The newest `limit` records containing all the words, oldest first.

        Each word matches as FTS5 would match it quoted (its tokens adjacent,
        ignoring case), in the text or in the values of the record's userdata
        and printk dictionary (`field_text`), as the SQLite store's index has them.

        Raises:
            StoreError: an empty query, or `fts_syntax` (SQLite FTS5 only).
        """
        if fts_syntax:
            raise StoreError("--fts is SQLite FTS5 syntax; the ClickHouse store matches "
                             "words as written (drop --fts)")
        words = fts_words(query)
        where = self._filters(host=host, since=since, match=match)
        if where is None:
            return []
        modern = self.url.modern  # the token index prunes (what it cannot take is scanned)

        def in_text(token: str) -> str:
            return (modern and has_token("text", token)) or contains_ci("text", token)

        where += [f"({in_text(t)} OR arrayExists(v -> {contains_ci('v', t)},"
                  " `fields.value`))" for phrase in words for t in phrase]

        def keep(row: list[Any]) -> bool:
            return fts_match(_b(row[14]).decode("utf-8", "replace"), words,
                             field_text(row[15], row[16]))

        return self._newest(where, limit, keep)

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
        """Every matching record, oldest first, `chunk` rows a query; `after_id`
        resumes after that record."""
        where = self._filters(host=host, since=since, until=until, match=match)
        if where is None:
            return
        key = self._key_of(after_id) if after_id else None
        while True:
            clauses = list(where)
            if key is not None:
                clauses += [f"received >= {number(key[0])}", after(_KEY, key)]
            rows = self._rows(clauses, _OLDEST_FIRST, chunk)
            if not rows:
                return
            yield from self._stored(rows)
            last = rows[-1]
            key = (float(last[1]), int(last[2]), int(last[3]))

    def _key_of(self, rid: int, where: str = "") -> tuple[float, int, int] | None:
        rows = self._select(f"SELECT received, n, id FROM {self._t('records')}"
                            f" WHERE id = {int(rid)}{where} LIMIT 1")
        return (float(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    def hosts(self, *, now: float, silent_after: float | None = None,
              host_ids: Sequence[int] | None = None) -> list[HostInfo]:
        """Every sender (or those of `host_ids`), by name/address, with its
        counters and live/silent status.

        Counters are counted from the stored rows (each kept once): records,
        gaps, reboots' boot number, and so on, as the SQLite store keeps them
        in its `hosts` table -- over the data retention has kept.
        """
        limit = self.silent_after if silent_after is None else silent_after
        only = "" if host_ids is None else f" AND {in_list('host_id', host_ids)}"
        facts = self._host_rows(f" WHERE 1{only}")
        records = {int(r[0]): r[1:] for r in self._select(
            f"SELECT host_id, uniqExact(id), min(received), max(received),"
            f" uniqExactIf(id, complete = 0 AND isNull(seq)) FROM {self._t('records')}"
            f" WHERE 1{only} GROUP BY host_id", settings=SETTINGS_PER_HOST)}
        events: dict[int, dict[str, list[Any]]] = {}
        for hid, kind, count, first, last in self._select(
                f"SELECT host_id, kind, uniqExact(id), min(at), max(at) FROM {self._t('events')}"
                f" WHERE kind != 'silence'{only} GROUP BY host_id, kind",
                settings=SETTINGS_PER_HOST):
            events.setdefault(int(hid), {})[kind] = [int(count), first, last]
        sums: dict[int, dict[str, int]] = {}
        for hid, sub, total, approx in self._select(
                "SELECT host_id, sub, sum(c), sum(toFloat64(c)) FROM (SELECT host_id, sub, id,"
                f" any(count) AS c FROM {self._t('events')} WHERE kind IN ('gap', 'shed'){only}"
                " GROUP BY host_id, sub, id) GROUP BY host_id, sub",
                settings=SETTINGS_PER_HOST):
            # Counters saturate at 2^63 - 1 as SQLite's do (a hostile seq jump).
            sums.setdefault(int(hid), {})[sub] = INT64_MAX if approx >= INT64_MAX else min(
                int(total), INT64_MAX)
        out = []
        for hid, (address, port, local_port, name, release, boot, _) in facts.items():
            rec = records.get(hid)
            ev = events.get(hid, {})
            sm = sums.get(hid, {})
            times = [t for t in ([rec[1], rec[2]] if rec else []) +
                     [t for e in ev.values() for t in e[1:]] if t is not None]
            last_record = float(rec[2]) if rec else None
            live = last_record is not None and now - last_record <= limit
            out.append(HostInfo(
                id=hid, address=address, port=port, local_port=local_port, name=name,
                release=release, first_seen=min(times) if times else None,
                last_seen=max(times) if times else None, last_record=last_record,
                records=int(rec[0]) if rec else 0, lost_seq=sm.get("seq", 0),
                lost_msgid=sm.get("msgid", 0), dropped=sm.get("dropped", 0),
                duplicates=ev.get("duplicate", [0])[0], reboots=boot,
                incomplete=ev.get("incomplete", [0])[0] + (int(rec[3]) if rec else 0),
                rejected=ev.get("rejected", [0])[0], shed=sm.get("", 0), boot=boot,
                status="live" if live else "silent",
            ))
        out.sort(key=lambda h: (h.name if h.name is not None else h.address, h.port,
                                h.local_port))
        return out

    # -- events -------------------------------------------------------------------------

    def events(
        self,
        *,
        host: str | None = None,
        since: float | None = None,
        kind: str | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[StoredEvent]:
        """Gaps, reboots, incomplete records, shed datagrams and silences, oldest
        first, after the event `after_id`."""
        where = ["kind NOT IN ('duplicate', 'rejected')"] if kind is None else [
            f"kind = {quote(kind)}"]
        if host is not None:
            ids = self._host_ids(host)
            if not ids:
                return []
            where.append(in_list("host_id", ids))
        if since is not None:
            where.append(f"at >= {number(since)}")
        base = len(where)
        if after_id:
            start = self._select(f"SELECT at, n, id FROM {self._t('events')}"
                                 f" WHERE id = {int(after_id)} LIMIT 1")
            if start:
                where.append(after(("at", "n", "id"), (float(start[0][0]), int(start[0][1]),
                                                       int(start[0][2]))))
        rows: list[list[Any]] = []
        while len(rows) < limit:  # paged: a page may come short (see `_rows`)
            page = self._select(
                f"SELECT id, host_id, at, kind, detail, n FROM {self._t('events')} WHERE "
                + " AND ".join(where) + f" ORDER BY at, n, id {ONE_PER_KEY}"
                f" LIMIT {int(limit - len(rows))}")
            if not page:
                break
            rows += page
            last = page[-1]
            where = [*where[:base], after(("at", "n", "id"), (float(last[2]), int(last[5]),
                                                              int(last[0])))]
        labels = self._labels([int(r[1]) for r in rows])
        return [StoredEvent(id=int(eid), sender=labels[int(hid)][0], name=labels[int(hid)][1],
                            at=float(at), kind=k, detail=json.loads(detail))
                for eid, hid, at, k, detail, _ in rows]

    # -- incidents ----------------------------------------------------------------------

    def _latest_incidents(self, where: Sequence[str] = ()) -> str:
        """Each incident's newest version (updates are appended), as a subquery."""
        clause = " WHERE " + " AND ".join(where) if where else ""
        return (f"(SELECT * FROM {self._t('incidents')}{clause}"
                " ORDER BY at DESC, n DESC LIMIT 1 BY host_id, key)")

    def _to_incidents(self, rows: list[list[Any]]) -> list[StoredIncident]:
        labels = self._labels([int(r[1]) for r in rows])
        out = []
        for row in rows:
            d = dict(zip(INCIDENT_COLUMNS, row, strict=True))
            sender, name = labels[int(d["host_id"])]
            out.append(StoredIncident(
                id=int(d["id"]), sender=sender, name=name, key=d["key"], boot=int(d["boot"]),
                kind=d["kind"], severity=d["severity"], state=d["state"], title=d["title"],
                fingerprint=d["fingerprint"], culprit=d["culprit"],
                frames=tuple(json.loads(d["frames"])), text=d["text"], release=d["release"],
                first_seq=d["first_seq"], last_seq=d["last_seq"],
                first_received=float(d["first_received"]),
                last_received=float(d["last_received"]), first_ts_usec=d["first_ts_usec"],
                last_ts_usec=d["last_ts_usec"], first_record_id=d["first_record_id"],
                last_record_id=d["last_record_id"], lines=int(d["lines"]),
                dropped_lines=int(d["dropped_lines"]), count=int(d["count"]),
                truncated=bool(d["truncated"]), fatal=bool(d["fatal"]), lane=d["lane"],
                task=d["task"], updated_at=float(d["at"]),
                closed_at=None if d["closed_at"] is None else float(d["closed_at"]),
                previous_boot=bool(d["previous_boot"]),
            ))
        return out

    def incidents(
        self,
        *,
        host: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        fingerprint: str | None = None,
        limit: int = 100,
    ) -> list[StoredIncident]:
        """The newest `limit` incidents matching the filters, oldest first."""
        inner: list[str] = []
        if host is not None:
            ids = self._host_ids(host)
            if not ids:
                return []
            inner.append(in_list("host_id", ids))
        if since is not None:
            inner.append(f"first_received >= {number(since)}")
        outer = [f"{column} = {quote(value)}" for column, value in
                 (("kind", kind), ("fingerprint", fingerprint)) if value is not None]
        rows = self._select(
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM {self._latest_incidents(inner)}"
            + (" WHERE " + " AND ".join(outer) if outer else "")
            + " ORDER BY first_received DESC, opened_at DESC, opened_n DESC, id DESC"
            f" LIMIT {int(limit)}")
        return self._to_incidents(rows)[::-1]

    def incident(self, incident_id: int) -> StoredIncident | None:
        """One incident by id, or None."""
        rows = self._select(
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM"
            f" {self._latest_incidents([f'id = {int(incident_id)}'])} LIMIT 1")
        found = self._to_incidents(rows)
        return found[0] if found else None

    def incident_records(self, incident_id: int, *, limit: int = 10_000) -> list[StoredRecord]:
        """The host's records from the incident's first to its last."""
        inc = self.incident(incident_id)
        if inc is None or inc.first_record_id is None:
            return []
        host = self._select(f"SELECT host_id FROM {self._t('incidents')}"
                            f" WHERE id = {int(incident_id)} LIMIT 1")[0][0]
        first = self._key_of(inc.first_record_id, f" AND host_id = {int(host)} AND received ="
                                                   f" {number(inc.first_received)}")
        last_id = inc.last_record_id if inc.last_record_id is not None else inc.first_record_id
        last = self._key_of(last_id, f" AND host_id = {int(host)} AND received ="
                                     f" {number(inc.last_received)}") or first
        if first is None or last is None:
            return []
        where = [f"host_id = {int(host)}", f"received <= {number(last[0])}",
                 f"({', '.join(_KEY)}) <= ({number(last[0])}, {last[1]}, {last[2]})"]
        rows: list[list[Any]] = []
        key = first
        while len(rows) < limit:
            page = self._rows([*where, f"received >= {number(key[0])}",
                               f"({', '.join(_KEY)}) >= ({number(key[0])}, {key[1]}, {key[2]})"
                               if not rows else after(_KEY, key)],
                              _OLDEST_FIRST, limit - len(rows))
            if not page:
                break
            rows += page
            key = (float(page[-1][1]), int(page[-1][2]), int(page[-1][3]))
        return self._stored(rows)

    def incidents_top(self, *, since: float | None = None, limit: int = 20) -> list[IncidentGroup]:
        """Incidents grouped by fingerprint across hosts, the most frequent first."""
        where = [f"first_received >= {number(since)}"] if since is not None else []
        newest = "(first_received, opened_at, opened_n)"
        rows = self._select(
            f"SELECT fingerprint, count() AS c, uniqExact(host_id) AS h, min(first_received),"
            f" max(first_received) AS last, argMax(id, (opened_at, opened_n)),"
            f" argMax(kind, {newest}), argMax(title, {newest}),"
            f" argMax(ifNull(culprit, ''), {newest}), argMax(isNull(culprit), {newest}),"
            f" groupUniqArray(host_id) FROM {self._latest_incidents(where)}"
            f" GROUP BY fingerprint ORDER BY c DESC, h DESC, last DESC LIMIT {int(limit)}")
        labels = self._labels([int(h) for r in rows for h in r[10]])
        out = []
        for fp, count, hosts, first, last, latest, kind, title, culprit, no_culprit, host_ids \
                in rows:
            names = sorted({name or sender.host for sender, name in
                            (labels[int(h)] for h in host_ids)})
            out.append(IncidentGroup(
                fingerprint=fp, kind=kind, title=title,
                culprit=None if no_culprit else culprit, incidents=int(count), hosts=int(hosts),
                first=float(first), last=float(last), latest_id=int(latest),
                host_names=tuple(names[:5])))
        return out

    def seen_nonce(self, nonce: str, *, since: float | None = None) -> bool:
        """Whether a stored record's text contains `nonce` exactly, on word
        boundaries as FTS sees them (as `SQLiteReader.seen_nonce`)."""
        if not _WORD.search(nonce) or "\x00" in nonce:
            return False
        words = fts_words(nonce)
        where = [contains("text", nonce)]
        if since is not None:
            where.append(f"received >= {number(since)}")

        def keep(row: list[Any]) -> bool:
            text = _b(row[14]).decode("utf-8", "replace")
            return nonce in text and fts_match(text, words, field_text(row[15], row[16]))

        return bool(self._newest(where, 1, keep))


def open_clickhouse_reader(url: ClickHouseURL, *,
                           silent_after: float = DEFAULT_SILENT_AFTER) -> ClickHouseReader:
    """Connect for queries; the schema must be this netconsole's.

    Raises:
        StoreError: no schema yet, older or newer; StoreUnavailable: the server
            cannot be reached.
    """
    from netconsole.store.clickhouse._schema import check_version

    client = Client(url)
    try:
        check_version(client, url)
    except BaseException:
        client.close()
        raise
    return ClickHouseReader(client, url, silent_after=silent_after, owned=True)
