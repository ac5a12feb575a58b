"""The SQLite writer: events in, one transaction per batch.

Theory of operation
-------------------
The collector hands `apply()` a batch of stream events (records and the
accounting events beside them). `apply` opens `BEGIN IMMEDIATE` (taking the
write lock up front, so a batch never fails half-way on a lock upgrade),
inserts the records with one `executemany`, adds the gap/reboot/incomplete
rows to `events`, folds every counter into one `UPDATE hosts` per sender, and
saves the senders' stream states if given, then commits. Either all of it is
in the file or none of it is.

Durability: the database is in WAL mode. A commit appends the transaction to
the `-wal` file before `apply` returns; with `synchronous=NORMAL` it is not
fsynced at each commit, but it is in the kernel's page cache, which a killed
process (even `kill -9`) cannot lose. Only a power loss or kernel crash can
lose the last transactions, and never corrupts the file. `durability="power"`
selects `synchronous=FULL` (an fsync per batch) for those who need that too.
`close()` checkpoints the WAL into the main file.

One writer per database file: the writer caches host ids and boot numbers, and
only the collector's single writer should call `apply`. (SQLite serialises
writers anyway, with `busy_timeout`; the cache stays right as long as each
sender goes to one writer, which SO_REUSEPORT's 4-tuple hash ensures.)
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from netconsole.incidents import Incident, IncidentEvent, Phase, Silence
from netconsole.store._codec import (
    INSERT_PREBUILT,
    INSERT_RECORD,
    RECORD_COLUMNS,
    record_to_row,
    row_to_stored,
)
from netconsole.store._errors import StoreError
from netconsole.store._model import (
    DEFAULT_SILENT_AFTER,
    PrebuiltRecords,
    Retention,
    RetentionResult,
    Shed,
)
from netconsole.store._paths import default_db_path
from netconsole.store._reader import SQLiteReader, open_reader
from netconsole.store._schema import migrate
from netconsole.stream.events import (
    Duplicate,
    Event,
    Gap,
    GapKind,
    Incomplete,
    Reboot,
    Record,
    Rejected,
    Sender,
)

if TYPE_CHECKING:
    from netconsole.store.clickhouse import ClickHouseStore

Durability = Literal["process", "power"]

CACHE_KIB = 32 * 1024
BUSY_TIMEOUT_MS = 10_000
WAL_CHECKPOINT_PAGES = 10_000

LOW_WATER = 0.9
"""Size retention deletes down to this share of `max_bytes`, not just under it."""

FTS_MERGE_PAGES = 2000
"""Pages of FTS5 index merged after a size-retention pass: enough to fold in
the tombstones of the deleted rows, bounded (~8 MB of work) so the write lock
is held briefly whatever the index size."""

_HOSTNAME = b"hostname"

_THROUGH, _BOOT = "_through", "_boot"
"""Marks the writer adds to a saved stream state: the last record id it covers
(every record stored by then) and the host's boot number then."""

INT64_MAX = (1 << 63) - 1
"""Loss counts saturate here: SQLite's INTEGER is signed 64-bit, and an
addition past it turns the column into a REAL. A hostile sender can jump seq
by 2**63 (`wire` takes numbers up to this); such a jump is counted as the loss
it claims, so `lost_seq` reads "at least this much", never wraps nor fails."""


def _saturating(column: str) -> str:
    # `column + :column` without overflow: both are at most INT64_MAX.
    return (f"{column} = CASE WHEN {column} > {INT64_MAX} - :{column} THEN {INT64_MAX}"
            f" ELSE {column} + :{column} END")


_UPDATE_HOST = f"""
UPDATE hosts SET
    records = records + :records,
    {_saturating("lost_seq")},
    {_saturating("lost_msgid")},
    {_saturating("dropped")},
    duplicates = duplicates + :duplicates,
    reboots = reboots + :reboots,
    incomplete = incomplete + :incomplete,
    rejected = rejected + :rejected,
    shed = shed + :shed,
    boot = boot + :reboots,
    first_seen = min(coalesce(first_seen, :first), :first),
    last_seen = max(coalesce(last_seen, :last), :last),
    last_record = CASE WHEN :last_record IS NULL THEN last_record
                       ELSE max(coalesce(last_record, :last_record), :last_record) END,
    name = coalesce(:name, name),
    release = coalesce(:release, release)
WHERE id = :id
"""

_UPDATE_HOST_RECORDS = """
UPDATE hosts SET
    records = records + ?1,
    first_seen = min(coalesce(first_seen, ?2), ?2),
    last_seen = max(coalesce(last_seen, ?3), ?3),
    last_record = max(coalesce(last_record, ?4), ?4),
    name = coalesce(NULLIF(?5, ''), name),
    release = coalesce(NULLIF(?6, ''), release)
WHERE id = ?7
"""
"""`_UPDATE_HOST` for the common batch of a host, only records: positional and
with no None (see `INSERT_PREBUILT`), half the cost of the general one, which
matters when every record of a batch comes from another host."""

_UPSERT_INCIDENT = """
INSERT INTO incidents (
    host_id, key, boot, kind, severity, state, title, fingerprint, culprit, frames, text,
    release, first_seq, last_seq, first_received, last_received, first_ts_usec, last_ts_usec,
    first_record_id, last_record_id, lines, dropped_lines, count, truncated, fatal, lane, task,
    previous_boot, updated_at, closed_at
) VALUES (
    :host_id, :key, :boot, :kind, :severity, :state, :title, :fingerprint, :culprit, :frames,
    :text, :release, :first_seq, :last_seq, :first_received, :last_received, :first_ts_usec,
    :last_ts_usec, :first_record_id, :last_record_id, :lines, :dropped_lines, :count,
    :truncated, :fatal, :lane, :task, :previous_boot, :updated_at, :closed_at
)
ON CONFLICT (host_id, key) DO UPDATE SET
    kind = excluded.kind, severity = excluded.severity, state = excluded.state,
    title = excluded.title, fingerprint = excluded.fingerprint, culprit = excluded.culprit,
    frames = excluded.frames, text = excluded.text,
    release = coalesce(excluded.release, release), last_seq = excluded.last_seq,
    last_received = excluded.last_received, last_ts_usec = excluded.last_ts_usec,
    last_record_id = coalesce(excluded.last_record_id, last_record_id),
    lines = excluded.lines, dropped_lines = excluded.dropped_lines, count = excluded.count,
    truncated = excluded.truncated, fatal = excluded.fatal, lane = excluded.lane,
    task = coalesce(excluded.task, task), updated_at = excluded.updated_at,
    closed_at = coalesce(closed_at, excluded.closed_at)
"""


def _incident_params(incident: Incident) -> dict[str, Any]:
    """The `incidents` columns of an incident event, without host, boot and record ids."""
    closed = incident.phase in (Phase.CLOSED, Phase.AMENDED)
    return {
        "key": incident.key,
        "kind": incident.kind.value,
        "severity": incident.severity.name.lower(),
        "state": "closed" if closed else "open",
        "title": incident.title,
        "fingerprint": incident.fingerprint,
        "culprit": str(incident.culprit) if incident.culprit is not None else None,
        "frames": json.dumps([
            {"function": f.function, "offset": f.offset, "size": f.size, "module": f.module,
             "reliable": f.reliable, "section": f.section, "rip": f.rip}
            for f in incident.frames
        ], separators=(",", ":")),
        "text": incident.text,
        "release": incident.release,
        "first_seq": incident.first_seq,
        "last_seq": incident.last_seq,
        "first_received": incident.first_received,
        "last_received": incident.last_received,
        "first_ts_usec": incident.first_ts_usec,
        "last_ts_usec": incident.last_ts_usec,
        "lines": incident.lines,
        "dropped_lines": incident.dropped_lines,
        "count": incident.count,
        "truncated": int(incident.truncated),
        "fatal": int(incident.fatal),
        "lane": incident.lane,
        "task": incident.task,
        "previous_boot": int(incident.previous_boot),
        "updated_at": incident.at,
        "closed_at": incident.at if closed else None,
    }


def _silence_row(event: Silence) -> tuple[float, str, str]:
    """The `events` row of a silence (kind `silence`), without its host id."""
    detail = {
        "phase": event.phase.value,
        "reason": event.reason.value,
        "last_record": event.last_record,
        "incident": event.incident,
        "title": event.title,
        "rebooted": event.rebooted,
    }
    return (event.at, "silence", json.dumps(detail))


@dataclass(slots=True)
class _HostDelta:
    """What one batch changes in one `hosts` row.

    `id` and `boot` (the boot number before this batch) are filled in inside
    the transaction; everything else is computed before it.
    """

    first: float
    last: float
    id: int = 0
    boot: int = 0
    last_record: float | None = None
    records: int = 0
    lost_seq: int = 0
    lost_msgid: int = 0
    dropped: int = 0
    duplicates: int = 0
    reboots: int = 0
    incomplete: int = 0
    rejected: int = 0
    shed: int = 0
    name: str | None = None
    release: str | None = None

    def seen(self, at: float) -> None:
        self.first = min(self.first, at)
        self.last = max(self.last, at)

    def plain(self) -> bool:
        """Only records arrived: `_UPDATE_HOST_RECORDS` says it all."""
        return (self.last_record is not None and self.name != "" and self.release != ""
                and not (self.lost_seq or self.lost_msgid or self.dropped or self.duplicates
                         or self.reboots or self.incomplete or self.rejected
                         or self.shed))

    def lean_params(self) -> tuple[Any, ...]:
        return (self.records, self.first, self.last, self.last_record, self.name or "",
                self.release or "", self.id)

    def params(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first": self.first,
            "last": self.last,
            "last_record": self.last_record,
            "records": self.records,
            # Python's sums are exact; what SQLite is given must fit its integers.
            "lost_seq": min(self.lost_seq, INT64_MAX),
            "lost_msgid": min(self.lost_msgid, INT64_MAX),
            "dropped": min(self.dropped, INT64_MAX),
            "duplicates": self.duplicates,
            "reboots": self.reboots,
            "incomplete": self.incomplete,
            "rejected": self.rejected,
            "shed": self.shed,
            "name": self.name,
            "release": self.release,
        }


def _event_row(event: Gap | Reboot | Incomplete) -> tuple[float, str, str]:
    """The `events` row for an accounting event, without its host id."""
    detail: dict[str, Any]
    if isinstance(event, Gap):
        kind = "gap"
        detail = {"gap": event.kind.value, "first": event.first, "count": event.count}
    elif isinstance(event, Reboot):
        kind = "reboot"
        detail = {
            "reason": event.reason.value,
            "previous_seq": event.previous_seq,
            "seq": event.seq,
            "previous_release": event.previous_release,
            "release": event.release,
        }
    else:
        kind = "incomplete"
        detail = {
            "seq": event.seq,
            "total": event.total,
            "missing": [list(span) for span in event.missing],
        }
    return (event.at, kind, json.dumps(detail))


def _connect(path: Path | str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (the sqlite3
    # module's implicit transactions would defeat BEGIN IMMEDIATE).
    # check_same_thread=False: the collector may open the store in its main
    # thread and write from its writer thread; it never writes from two.
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


class SQLiteStore:
    """The SQLite sink (and, through `reader`, its queries).

    Open it with `open_store()`. Not thread-safe: one thread calls `apply`,
    `save_stream_states`, `enforce_retention` and `close`.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        path: Path | None,
        retention: Retention | None = None,
        silent_after: float = DEFAULT_SILENT_AFTER,
    ) -> None:
        self._conn = conn
        self.path = path
        self.retention = retention or Retention()
        self.silent_after = silent_after
        self._hosts: dict[Sender, tuple[int, int]] = {}  # sender -> (id, boot), committed
        self._depth = 0
        self._reader: SQLiteReader | None = None

    # -- transactions -------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A transaction (`BEGIN IMMEDIATE`), or a savepoint when nested.

        Rolls back on any exception, including KeyboardInterrupt, and re-raises.
        """
        rollback: tuple[str, ...]
        if self._depth == 0:
            begin, commit, rollback = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
        else:
            name = f"sp{self._depth}"
            begin, commit = f"SAVEPOINT {name}", f"RELEASE {name}"
            rollback = (f"ROLLBACK TO {name}", f"RELEASE {name}")
        self._conn.execute(begin)
        self._depth += 1
        try:
            yield self._conn
        except BaseException:
            self._depth -= 1
            # After SQLITE_FULL, IOERR, NOMEM or BUSY SQLite may have rolled the
            # whole transaction back already; a ROLLBACK then fails and would
            # hide the error that says what happened.
            if self._conn.in_transaction:
                for statement in rollback:
                    self._conn.execute(statement)
            raise
        self._depth -= 1
        self._conn.execute(commit)

    # -- writing ------------------------------------------------------------

    def _host(self, sender: Sender, pending: dict[Sender, tuple[int, int]]) -> tuple[int, int]:
        known = pending.get(sender) or self._hosts.get(sender)
        if known is not None:
            return known
        key = (sender.host, sender.port, sender.local_port)
        self._conn.execute(
            "INSERT OR IGNORE INTO hosts (address, port, local_port) VALUES (?, ?, ?)", key
        )
        row = self._conn.execute(
            "SELECT id, boot FROM hosts WHERE address = ? AND port = ? AND local_port = ?", key
        ).fetchone()
        pending[sender] = (row[0], row[1])
        return pending[sender]

    def committed_host(self, sender: Sender) -> tuple[int, int] | None:
        """(host id, boot) of `sender` as committed by this store, or None."""
        return self._hosts.get(sender)

    def reserve_host(self, sender: Sender) -> tuple[int, int] | None:
        """(host id, committed boot) of `sender` now, so that the express lane
        can build rows for it from its first records rather than after the
        next batch commits.

        From the cache, else read from the file (a host known before a
        restart), else its `hosts` row is inserted and committed now, in a
        transaction of its own. None when that cannot happen at once: inside
        a batch, or the write lock is held by another writer (the lane then
        waits for this writer's next commit), or the file cannot be written.
        """
        known = self._hosts.get(sender)
        if known is not None or self._depth:
            return known
        key = (sender.host, sender.port, sender.local_port)
        select = "SELECT id, boot FROM hosts WHERE address = ? AND port = ? AND local_port = ?"
        try:
            row = self._conn.execute(select, key).fetchone()
            if row is None:
                # Never wait for another writer here: this runs between datagrams.
                self._conn.execute("PRAGMA busy_timeout = 0")
                try:
                    with self.atomic() as conn:
                        conn.execute("INSERT OR IGNORE INTO hosts (address, port, local_port)"
                                     " VALUES (?, ?, ?)", key)
                        row = conn.execute(select, key).fetchone()
                finally:
                    self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error:
            return None
        self._hosts[sender] = (row[0], row[1])
        return self._hosts[sender]

    def apply(
        self,
        events: Sequence[Event | IncidentEvent | PrebuiltRecords | Shed],
        states: Mapping[Sender, Mapping[str, Any]] | None = None,
    ) -> None:
        """Store a batch of stream events, and optionally stream states, atomically.

        Events are taken in order: a `Reboot` bumps the sender's boot number for
        the records after it. Records are inserted; `Gap`, `Reboot` and
        `Incomplete` are inserted into `events` and counted on the host;
        `Duplicate` and `Rejected` are only counted (they can come in floods).
        `PrebuiltRecords` are inserted as they are, in their place among the
        other records, and counted on their hosts.
        `Incident` events (from `netconsole.incidents`, placed among the
        records that made them) are upserted into `incidents` by key, with the
        boot number and record ids of their records; `Silence` events become
        `events` rows of kind `silence`. Neither touches the host's counters
        or last-seen time (a silence is decided when nothing arrived).

        When this returns, the batch is committed and survives `kill -9`.

        Args:
            events: one batch, as the streams emitted it.
            states: `SenderStream.snapshot()` per sender, saved in the same
                transaction so a restart resumes exactly where the stored
                records end. Values must be JSON-serialisable.

        Raises:
            sqlite3.Error, TypeError (unserialisable state): nothing was written.
        """
        if not events and not states:
            return
        # Everything that needs no database is done before taking the write
        # lock, so that several writer processes hold it as briefly as possible.
        deltas: dict[Sender, _HostDelta] = {}
        # (host, reboots before, RecordRow), or (None, 0, [PrebuiltRow]) for PrebuiltRecords.
        records: list[tuple[_HostDelta | None, int, Any]] = []
        others: list[tuple[_HostDelta, tuple[float, str, str]]] = []
        incidents: list[tuple[Sender, int, dict[str, Any]]] = []  # (sender, reboots before, row)
        silences: list[tuple[Sender, tuple[float, str, str]]] = []
        for event in events:
            if type(event) is PrebuiltRecords:
                if event.rows:
                    records.append((None, 0, event.rows))
                self._count_prebuilt(event, deltas)
                continue
            assert not isinstance(event, PrebuiltRecords)
            sender = event.sender
            if isinstance(event, Incident):
                known = deltas.get(sender)
                incidents.append((sender, known.reboots if known else 0, _incident_params(event)))
                continue
            if isinstance(event, Silence):
                silences.append((sender, _silence_row(event)))
                continue
            delta = deltas.get(sender)
            at = event.received if isinstance(event, Record) else event.at
            if delta is None:
                delta = deltas[sender] = _HostDelta(first=at, last=at)
            else:
                delta.seen(at)
            if isinstance(event, Record):
                records.append((delta, delta.reboots, record_to_row(event)))
                delta.records += 1
                if not event.complete and event.seq is None:
                    delta.incomplete += 1  # basic mode: no Incomplete event says it
                delta.last_record = max(delta.last_record or at, at)
                release = event.kernel_release
                if release is not None:
                    delta.release = release
                if event.fields:
                    name = event.field(_HOSTNAME)
                    if name is not None:
                        delta.name = name.decode("utf-8", "replace")
            elif isinstance(event, Gap):
                if event.kind is GapKind.SEQ:
                    delta.lost_seq += event.count
                elif event.kind is GapKind.MSGID:
                    delta.lost_msgid += event.count
                else:
                    delta.dropped += event.count
                others.append((delta, _event_row(event)))
            elif isinstance(event, Reboot):
                delta.reboots += 1
                others.append((delta, _event_row(event)))
            elif isinstance(event, Incomplete):
                delta.incomplete += 1
                others.append((delta, _event_row(event)))
            elif isinstance(event, Duplicate):
                delta.duplicates += 1
            elif isinstance(event, Rejected):
                delta.rejected += 1
            elif isinstance(event, Shed):
                delta.shed += event.count
                others.append((delta, (event.at, "shed", json.dumps({"count": event.count}))))
            else:  # pragma: no cover - Event is a closed union
                raise TypeError(f"not a stream event: {event!r}")
        state_json = {
            sender: json.dumps(state, separators=(",", ":"))
            for sender, state in (states or {}).items()
        }

        pending: dict[Sender, tuple[int, int]] = {}
        with self.atomic() as conn:
            for sender, delta in deltas.items():
                delta.id, delta.boot = self._host(sender, pending)
            ids: dict[tuple[int, Any, Any], int] = {}
            if records:
                ids = self._insert_records(conn, records)
            if incidents:
                self._upsert_incidents(conn, incidents, ids, pending)
            if silences:
                conn.executemany(
                    "INSERT INTO events (host_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                    [(self._host(s, pending)[0], *row) for s, row in silences],
                )
            if others:
                conn.executemany(
                    "INSERT INTO events (host_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                    [(d.id, *row) for d, row in others],
                )
            full, lean = [], []
            for delta in deltas.values():
                if delta.plain():
                    lean.append(delta.lean_params())
                else:
                    full.append(delta.params())
            if lean:
                conn.executemany(_UPDATE_HOST_RECORDS, lean)
            if full:
                conn.executemany(_UPDATE_HOST, full)
            if state_json:
                # Each state is marked with the last record id and the boot it
                # covers, so `resume_stream` knows which records to replay onto it.
                through = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
                rows = []
                for s, text in state_json.items():
                    host_id, boot = self._host(s, pending)
                    delta = deltas.get(s)
                    if delta is not None:
                        boot = delta.boot + delta.reboots
                    marks = f'"{_THROUGH}":{through},"{_BOOT}":{boot}}}'
                    rows.append((text[:-1] + ("," if text != "{}" else "") + marks, host_id))
                conn.executemany("UPDATE hosts SET stream_state = ? WHERE id = ?", rows)
        # Only now, committed, may the cache learn new ids and boots.
        self._hosts.update(pending)
        for sender, delta in deltas.items():
            self._hosts[sender] = (delta.id, delta.boot + delta.reboots)

    @staticmethod
    def _count_prebuilt(batch: PrebuiltRecords, deltas: dict[Sender, _HostDelta]) -> None:
        for host in batch.hosts:
            first, last = host.first_received, host.last_received
            delta = deltas.get(host.sender)
            if delta is None:
                delta = deltas[host.sender] = _HostDelta(first=first, last=last)
            else:
                delta.seen(first)
                delta.seen(last)
            delta.records += host.records
            delta.last_record = max(delta.last_record or last, last)
            if host.release is not None:
                delta.release = host.release
            if host.name is not None:
                delta.name = host.name.decode("utf-8", "replace")

    def _upsert_incidents(
        self,
        conn: sqlite3.Connection,
        incidents: list[tuple[Sender, int, dict[str, Any]]],
        ids: dict[tuple[int, Any, Any], int],
        pending: dict[Sender, tuple[int, int]],
    ) -> None:
        """Upsert incident rows, linking them to this batch's records by id:
        an incident's first record is in the batch that opened it, its last in
        the batch that last extended it, so (host, seq, received) finds both."""
        rows = []
        for sender, reboots, params in incidents:
            host_id, boot = self._host(sender, pending)
            rows.append({
                **params,
                "host_id": host_id,
                # A pstore replay is the boot before the one it arrived in.
                "boot": max(0, boot + reboots - params["previous_boot"]),
                "first_record_id": ids.get(
                    (host_id, params["first_seq"], params["first_received"])),
                "last_record_id": ids.get(
                    (host_id, params["last_seq"], params["last_received"])),
            })
        conn.executemany(_UPSERT_INCIDENT, rows)

    @staticmethod
    def _insert_records(
        conn: sqlite3.Connection, records: list[tuple[_HostDelta | None, int, Any]]
    ) -> dict[tuple[int, Any, Any], int]:
        """Insert a batch in order and index it for FTS in one statement (see
        m004_fts_by_the_writer). Returns the id of each record made here (not prebuilt) by
        (host id, seq, received), for incidents to link to.

        The rows get consecutive ids (a table without AUTOINCREMENT, in one
        transaction); runs of prebuilt and ordinary rows each go in one
        `executemany` of their own statement.
        """
        before = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
        ids: dict[tuple[int, Any, Any], int] = {}
        position = int(before) + 1
        run: list[tuple[Any, ...]] = []
        for delta, reboots, row in records:
            if delta is None:  # PrebuiltRecords' rows
                if run:
                    conn.executemany(INSERT_RECORD, run)
                    run = []
                # As plain tuples (a slice of a PrebuiltRow is one): sqlite3 binds a tuple
                # subclass item by item through its __getitem__, 40% more per insert.
                conn.executemany(INSERT_PREBUILT, (r[:] for r in row))
                position += len(row)
            else:
                ids[(delta.id, row.seq, row.received)] = position
                run.append((delta.id, *row, delta.boot + reboots))
                position += 1
        if run:
            conn.executemany(INSERT_RECORD, run)
        conn.execute(
            "INSERT INTO records_fts (rowid, text, fields)"
            " SELECT id, text, fields FROM records_fts_source WHERE id > ?",  # m006
            (before,),
        )
        return ids

    def save_stream_states(self, states: Mapping[Sender, Mapping[str, Any]]) -> None:
        """Save each sender's opaque stream state (its `snapshot()`), in one transaction."""
        self.apply((), states)

    def load_stream_states(self) -> dict[Sender, dict[str, Any]]:
        """Every saved stream state, as saved (without the writer's marks)."""
        out: dict[Sender, dict[str, Any]] = {}
        for address, port, local_port, state in self._conn.execute(
            "SELECT address, port, local_port, stream_state FROM hosts"
            " WHERE stream_state IS NOT NULL"
        ):
            saved = json.loads(state)
            saved.pop(_THROUGH, None)
            saved.pop(_BOOT, None)
            out[Sender(host=address, port=port, local_port=local_port)] = saved
        return out

    def known_senders(self) -> set[Sender]:
        """Every sender the store has a host row for (streams to resume at restart)."""
        return {Sender(host=a, port=p, local_port=lp) for a, p, lp in self._conn.execute(
            "SELECT address, port, local_port FROM hosts")}

    def resume_stream(self, sender: Sender) -> tuple[dict[str, Any], list[Record]]:
        """A restarted receiver's starting point for `sender`: its saved stream
        state and the records stored after that state was saved, to replay onto
        it (`StreamTable.restore`).

        States are saved now and then (the collector's `STATE_EVERY`), records
        with every batch, so after a `kill -9` the state is behind the records.
        A state saved before the host's current boot is dropped, and the whole
        current boot is replayed; so is a host with no state saved yet.
        """
        row = self._conn.execute(
            "SELECT id, boot, stream_state FROM hosts"
            " WHERE address = ? AND port = ? AND local_port = ?",
            (sender.host, sender.port, sender.local_port),
        ).fetchone()
        if row is None:
            return {}, []
        host_id, boot, text = row
        state: dict[str, Any] = json.loads(text) if text else {}
        if state and _THROUGH not in state:
            return state, []  # saved with every batch by an older netconsole: exact
        through = int(state.pop(_THROUGH, 0))
        if state.pop(_BOOT, None) != boot:
            state, through = {}, 0
        last = self._conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
        if through > last:
            through = 0  # the table was emptied by retention since, and ids began again
        rows = self._conn.execute(
            f"SELECT {RECORD_COLUMNS} FROM records r JOIN hosts h ON h.id = r.host_id"
            " WHERE r.host_id = ? AND r.boot = ? AND r.id > ? ORDER BY r.id",
            (host_id, boot, through),
        )
        return state, [row_to_stored(r).record for r in rows]

    # -- retention ----------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the database in use (pages not on the freelist)."""
        page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
        free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def enforce_retention(self, now: float) -> RetentionResult:
        """Delete what the retention policy no longer keeps, oldest first.

        By age: records received (and events that happened) before
        `now - max_age`. By size: the oldest records until the used size is
        under `max_bytes`, then the events older than the oldest record left.
        Deletes run `chunk` rows per transaction, at most `budget` rows per
        call (`more` says the policy is not met yet); freed pages are returned
        to the file system at the end (`auto_vacuum=INCREMENTAL`), so the file
        shrinks too.

        Call it from the writer's thread, between batches (e.g. once a minute,
        and again soon while `more`).
        """
        policy = self.retention
        budget = [policy.budget]  # rows this call may still delete, shared by the passes
        records = events = 0
        if policy.max_age is not None:
            cutoff = now - policy.max_age
            records += self._delete_all(
                "DELETE FROM records WHERE id IN"
                " (SELECT id FROM records WHERE received < ? ORDER BY received LIMIT ?)",
                cutoff,
                budget,
            )
            events += self._delete_all(
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? LIMIT ?)",
                cutoff,
                budget,
            )
            self._delete_all(
                "DELETE FROM incidents WHERE id IN"
                " (SELECT id FROM incidents WHERE last_received < ? LIMIT ?)",
                cutoff,
                budget,
            )
        if policy.max_bytes is not None and budget[0] > 0:
            deleted = self._shrink_to(policy.max_bytes, budget)
            records += deleted
            if deleted:
                oldest = self._conn.execute("SELECT min(received) FROM records").fetchone()[0]
                events += self._delete_all(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? LIMIT ?)",
                    oldest if oldest is not None else now,
                    budget,
                )
        if records or events:
            # Give the freed pages back to the file system. Each step of this
            # pragma frees one page, and `execute` steps a column-less statement
            # only once; `executescript` steps it to the end (and there is no
            # open transaction here for it to commit).
            assert self._depth == 0
            self._conn.executescript("PRAGMA incremental_vacuum;")
        return RetentionResult(records=records, events=events, more=budget[0] <= 0)

    def _delete_chunk(self, sql: str, *params: Any) -> int:
        with self.atomic() as conn:
            return conn.execute(sql, params).rowcount

    def _delete_all(self, sql: str, cutoff: float, budget: list[int]) -> int:
        """Run a `DELETE … LIMIT ?` in chunks until it deletes less than asked."""
        total = 0
        while budget[0] > 0:
            step = min(self.retention.chunk, budget[0])
            count = self._delete_chunk(sql, cutoff, step)
            total += count
            budget[0] -= count
            if count < step:
                break
        return total

    def _shrink_to(self, max_bytes: int, budget: list[int]) -> int:
        """Delete the oldest records until the used size is at most `max_bytes`.

        Each pass deletes the share of records that should bring the size down
        to `LOW_WATER` of the limit (so retention does not run again at every
        batch), estimating bytes per record from the database as a whole, then
        measures again. FTS5 frees its space lazily (a delete first adds a
        tombstone), so each pass ends with a bounded merge of the index
        (`FTS_MERGE_PAGES`) rather than an `optimize`, whose cost grows with
        the whole index and would stall the writer on a large database.
        """
        total = 0
        for _ in range(4):
            used = self.used_bytes()
            if used <= max_bytes or budget[0] <= 0:
                break
            # Only the oldest records are ever deleted, so the ids left are
            # contiguous: the count without a scan of the table.
            low, high = self._conn.execute("SELECT min(id), max(id) FROM records").fetchone()
            if low is None:
                break
            count = high - low + 1
            goal = max_bytes * LOW_WATER
            target = min(count, budget[0], max(1, math.ceil(count * (used - goal) / used)))
            while target > 0:
                step = min(target, self.retention.chunk)
                deleted = self._delete_chunk(
                    "DELETE FROM records WHERE id IN (SELECT id FROM records ORDER BY id LIMIT ?)",
                    step,
                )
                total += deleted
                target -= deleted
                budget[0] -= deleted
                if deleted < step:
                    break
            with self.atomic() as conn:
                conn.execute(
                    "INSERT INTO records_fts (records_fts, rank) VALUES ('merge', ?)",
                    (-FTS_MERGE_PAGES,),
                )
        return total

    # -- queries and lifetime -----------------------------------------------

    @property
    def reader(self) -> SQLiteReader:
        """A read-only (`mode=ro`) connection's queries, opened on first use.

        An in-memory store has no file to open twice, so its queries share
        the writer's connection.
        """
        if self._reader is None:
            if self.path is None:
                self._reader = SQLiteReader(self._conn, silent_after=self.silent_after)
            else:
                self._reader = open_reader(self.path, silent_after=self.silent_after)
        return self._reader

    def close(self) -> None:
        """Flush and close: checkpoint the WAL into the database file.

        Everything `apply` returned from is already safe; this makes the main
        file complete on its own and removes the `-wal` file.
        """
        if self._reader is not None and self._reader.conn is not self._conn:
            self._reader.close()
        self._reader = None
        if self.path is not None:
            # Maintenance only: every batch is already committed. With other
            # writers on the file (one per worker) SQLite may refuse these at once
            # (SQLITE_BUSY without the busy handler); the last writer to close, or
            # SQLite's own auto-checkpoint, does the work then.
            for pragma in ("PRAGMA optimize", "PRAGMA wal_checkpoint(TRUNCATE)"):
                with contextlib.suppress(sqlite3.OperationalError):
                    self._conn.execute(pragma)
        self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@overload
def open_store(
    path: Path | None = None, *, retention: Retention | None = None,
    durability: Durability = "process", silent_after: float = DEFAULT_SILENT_AFTER,
) -> SQLiteStore: ...


@overload
def open_store(
    path: str, *, retention: Retention | None = None, durability: Durability = "process",
    silent_after: float = DEFAULT_SILENT_AFTER,
) -> SQLiteStore | ClickHouseStore: ...


def open_store(
    path: Path | str | None = None,
    *,
    retention: Retention | None = None,
    durability: Durability = "process",
    silent_after: float = DEFAULT_SILENT_AFTER,
) -> SQLiteStore | ClickHouseStore:
    """Open (creating and migrating as needed) the database for writing.

    Args:
        path: the database file; None for the default (`default_db_path()`),
            `":memory:"` for a private in-memory store (tests); or a
            `clickhouse://HOST:PORT/DATABASE[?cluster=NAME]` URL for the
            ClickHouse store (store/clickhouse; `durability` is the servers').
        retention: what `enforce_retention` keeps.
        durability: `"process"` (WAL, synchronous=NORMAL: survives `kill -9`,
            may lose the last batches on power loss) or `"power"`
            (synchronous=FULL: also survives power loss, one fsync per batch).
        silent_after: seconds without a record before a host is `silent`.

    Raises:
        StoreError: the file is not a database, or its schema is newer.
    """
    if isinstance(path, str) and path.startswith("clickhouse://"):
        from netconsole.store.clickhouse import open_clickhouse_store, parse_url

        return open_clickhouse_store(parse_url(path), retention=retention,
                                     silent_after=silent_after)
    memory = str(path) == ":memory:"
    resolved: Path | None = None
    if not memory:
        resolved = Path(path) if path is not None else default_db_path()
        try:
            resolved.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {resolved.parent}: {exc.strerror}") from exc
    try:
        conn = _connect(":memory:" if resolved is None else resolved)
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            # Must precede the first table; lets retention give space back.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if not memory:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{resolved}: cannot use WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'power' else 'NORMAL'}")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # The writer's B-trees (records, its indexes, FTS) stay in its cache,
        # and the WAL is folded back 10x less often than SQLite's default, which
        # writes pages that many batches change (index and FTS pages) once per
        # checkpoint rather than each time: together ~10 % of a record's cost.
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        try:
            migrate(conn)
        except StoreError as exc:  # a newer schema: name the file
            conn.close()
            raise StoreError(f"{resolved or path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{resolved or path}: {exc}") from exc
    return SQLiteStore(conn, path=resolved, retention=retention, silent_after=silent_after)
