"""What one batch writes: the statements of `SQLiteStore.apply`.

`prepare_batch` sorts a batch's events by what they write and counts them per
host, with no database, so that it runs before the write lock is taken.
`write_batch` then runs inside the store's transaction: it looks up (or
inserts) the hosts' rows, inserts the records in order and indexes them for
FTS, upserts incidents, adds `events` rows, folds the counters into one
`UPDATE hosts` per sender and saves the stream states. The ClickHouse sink
builds its rows with the same `event_row`, `incident_columns` and `silence_row`
(store/_columns.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from netconsole.incidents import Incident, IncidentEvent, Silence
from netconsole.store._codec import INSERT_PREBUILT, INSERT_RECORD, record_to_row
from netconsole.store._columns import (
    INT64_MAX,
    STATE_BOOT,
    STATE_THROUGH,
    EventRow,
    event_row,
    incident_columns,
    shed_row,
    silence_row,
)
from netconsole.store._model import PrebuiltRecords, Shed
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

_HOSTNAME = b"hostname"


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


@dataclass(slots=True)
class Batch:
    """One batch's events, sorted by what they write (`prepare_batch`)."""

    deltas: dict[Sender, _HostDelta]
    records: list[tuple[_HostDelta | None, int, Any]]
    """(host, reboots before, RecordRow), or (None, 0, [PrebuiltRow]) for PrebuiltRecords."""
    others: list[tuple[_HostDelta, EventRow]]
    """The `events` rows of gaps, reboots, incompletes and sheds, with their host."""
    incidents: list[tuple[Sender, int, dict[str, Any]]]
    """(sender, reboots before, row)."""
    silences: list[tuple[Sender, EventRow]]
    states: dict[Sender, str]
    """Each sender's stream state, as JSON."""


def prepare_batch(
    events: Sequence[Event | IncidentEvent | PrebuiltRecords | Shed],
    states: Mapping[Sender, Mapping[str, Any]] | None,
) -> Batch:
    """Everything of a batch that needs no database (see `SQLiteStore.apply`).

    Raises:
        TypeError: a state is not JSON-serialisable.
    """
    deltas: dict[Sender, _HostDelta] = {}
    records: list[tuple[_HostDelta | None, int, Any]] = []
    others: list[tuple[_HostDelta, EventRow]] = []
    incidents: list[tuple[Sender, int, dict[str, Any]]] = []
    silences: list[tuple[Sender, EventRow]] = []
    for event in events:
        if type(event) is PrebuiltRecords:
            if event.rows:
                records.append((None, 0, event.rows))
            _count_prebuilt(event, deltas)
            continue
        assert not isinstance(event, PrebuiltRecords)
        sender = event.sender
        if isinstance(event, Incident):
            known = deltas.get(sender)
            incidents.append((sender, known.reboots if known else 0, incident_columns(event)))
            continue
        if isinstance(event, Silence):
            silences.append((sender, silence_row(event)))
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
            others.append((delta, event_row(event)))
        elif isinstance(event, Reboot):
            delta.reboots += 1
            others.append((delta, event_row(event)))
        elif isinstance(event, Incomplete):
            delta.incomplete += 1
            others.append((delta, event_row(event)))
        elif isinstance(event, Duplicate):
            delta.duplicates += 1
        elif isinstance(event, Rejected):
            delta.rejected += 1
        elif isinstance(event, Shed):
            delta.shed += event.count
            others.append((delta, shed_row(event)))
        else:  # pragma: no cover - Event is a closed union
            raise TypeError(f"not a stream event: {event!r}")
    state_json = {
        sender: json.dumps(state, separators=(",", ":"))
        for sender, state in (states or {}).items()
    }
    return Batch(deltas, records, others, incidents, silences, state_json)


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


def write_batch(
    conn: sqlite3.Connection, batch: Batch, committed: Mapping[Sender, tuple[int, int]]
) -> dict[Sender, tuple[int, int]]:
    """Write `batch` inside the caller's transaction.

    `committed` is the caller's cache of (host id, boot) by sender. Returns the
    hosts looked up here that it lacked; the cache may learn them, and each
    delta's `id` and `boot + reboots`, only once the transaction commits.
    """
    deltas, records, others = batch.deltas, batch.records, batch.others
    incidents, silences, state_json = batch.incidents, batch.silences, batch.states
    pending: dict[Sender, tuple[int, int]] = {}
    for sender, delta in deltas.items():
        delta.id, delta.boot = _host(conn, sender, pending, committed)
    ids: dict[tuple[int, Any, Any], int] = {}
    if records:
        ids = _insert_records(conn, records)
    if incidents:
        _upsert_incidents(conn, incidents, ids, pending, committed)
    if silences:
        conn.executemany(
            "INSERT INTO events (host_id, at, kind, detail) VALUES (?, ?, ?, ?)",
            [(_host(conn, s, pending, committed)[0], *row) for s, row in silences],
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
            host_id, boot = _host(conn, s, pending, committed)
            in_batch = deltas.get(s)
            if in_batch is not None:
                boot = in_batch.boot + in_batch.reboots
            marks = f'"{STATE_THROUGH}":{through},"{STATE_BOOT}":{boot}}}'
            rows.append((text[:-1] + ("," if text != "{}" else "") + marks, host_id))
        conn.executemany("UPDATE hosts SET stream_state = ? WHERE id = ?", rows)
    return pending


def _host(
    conn: sqlite3.Connection,
    sender: Sender,
    pending: dict[Sender, tuple[int, int]],
    committed: Mapping[Sender, tuple[int, int]],
) -> tuple[int, int]:
    known = pending.get(sender) or committed.get(sender)
    if known is not None:
        return known
    key = (sender.host, sender.port, sender.local_port)
    conn.execute(
        "INSERT OR IGNORE INTO hosts (address, port, local_port) VALUES (?, ?, ?)", key
    )
    row = conn.execute(
        "SELECT id, boot FROM hosts WHERE address = ? AND port = ? AND local_port = ?", key
    ).fetchone()
    pending[sender] = (row[0], row[1])
    return pending[sender]


def _upsert_incidents(
    conn: sqlite3.Connection,
    incidents: list[tuple[Sender, int, dict[str, Any]]],
    ids: dict[tuple[int, Any, Any], int],
    pending: dict[Sender, tuple[int, int]],
    committed: Mapping[Sender, tuple[int, int]],
) -> None:
    """Upsert incident rows, linking them to this batch's records by id:
    an incident's first record is in the batch that opened it, its last in
    the batch that last extended it, so (host, seq, received) finds both."""
    rows = []
    for sender, reboots, params in incidents:
        host_id, boot = _host(conn, sender, pending, committed)
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


def _insert_records(
    conn: sqlite3.Connection, records: list[tuple[_HostDelta | None, int, Any]]
) -> dict[tuple[int, Any, Any], int]:
    """Insert a batch in order, with its hosts' `record_spans` rows, and index it
    for FTS in one statement (see m004_fts_by_the_writer). Returns the id of each
    record made here (not prebuilt) by (host id, seq, received), for incidents
    to link to.

    The rows get consecutive ids (a table without AUTOINCREMENT, in one
    transaction); runs of prebuilt and ordinary rows each go in one
    `executemany` of their own statement.
    """
    before = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
    ids: dict[tuple[int, Any, Any], int] = {}
    hosts: list[int] = []  # each row's host id, in order
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
            hosts += map(_HOST, row)
            position += len(row)
        else:
            ids[(delta.id, row.seq, row.received)] = position
            run.append((delta.id, *row, delta.boot + reboots))
            hosts.append(delta.id)
            position += 1
    if run:
        conn.executemany(INSERT_RECORD, run)
    conn.executemany(_INSERT_SPAN, record_spans(hosts, int(before) + 1))
    conn.execute(
        "INSERT INTO records_fts (rowid, text, fields)"
        " SELECT id, text, fields FROM records_fts_source WHERE id > ?",  # m006
        (before,),
    )
    return ids


_HOST = itemgetter(0)
"""A prebuilt row's host id."""
_INSERT_SPAN = "INSERT INTO record_spans (last_id, first_id, host_id, offsets) VALUES (?, ?, ?, ?)"


def record_spans(hosts: list[int], first: int) -> list[tuple[int, int, int, str | None]]:
    """The `record_spans` rows (m009) of a batch whose rows, from id `first`,
    are of `hosts`: per host, its last and first id, and the offsets from the
    first of all its ids as JSON, or None when every id between is the host's.
    In order of last id, so that they are appended."""
    if not hosts:
        return []
    if hosts.count(hosts[0]) == len(hosts):  # one sender, or one in the batch
        return [(first + len(hosts) - 1, first, hosts[0], None)]
    positions: dict[int, list[int]] = {}  # each host's positions, in order
    for i, host in enumerate(hosts):
        mine = positions.get(host)
        if mine is None:
            positions[host] = [i]
        else:
            mine.append(i)
    spans = []
    for host, mine in positions.items():
        low, high = mine[0], mine[-1]
        # A JSON list of ints, spelled by hand: json's encoder took 2/3 of this
        # function's time at 1,000 senders (a list per host per batch).
        offsets = None if high - low + 1 == len(mine) else \
            "[" + ",".join(map(str, map(low.__rsub__, mine))) + "]"
        spans.append((first + high, first + low, host, offsets))
    spans.sort()
    return spans
