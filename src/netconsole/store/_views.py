"""The web view's queries beyond `RecordQueries`: the fleet as machines with their
incident status, a host's timeline a page at a time, counts over time, and the
records around an incident.

`SQLiteViews` answers them over a `SQLiteReader`'s connection (read-only, like
every reader query), with the helpers below it. The web
view reads only through `ViewQueries` and the reader's own methods, so another
backend gives it the same pages by implementing this protocol with its own SQL
(`ClickHouseViews`, store/clickhouse/_views.py). What is plain Python -- folding
streams into machines and their status (`tally_machines`), the fleet's filters,
sorts and pages (`fleet_page`), counts into buckets (`activity_from`) -- is
here, shared by both.

Each query stays fast at fleet size (10^4 hosts, 10^6 records; bench/web_pages.py)
on the schema's existing indexes: a host's records through its spans
(store/_spans.py) and all records by `received`. A time is turned into a record
id through the `received` index (ids are given in arrival order, so they follow
time to within a batch; `ID_SLACK`), and a host's records are then read from that
id on, never by scanning all its rows.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal, Protocol

from netconsole.incidents import CRASH_KINDS
from netconsole.store._codec import RECORD_COLUMNS, row_to_stored
from netconsole.store._columns import INT64_MAX
from netconsole.store._model import (
    HostInfo,
    StoredEvent,
    StoredIncident,
    StoredRecord,
)
from netconsole.store._reader import (
    _FROM_INCIDENTS,
    _HOST_COLUMNS,
    _HOST_FIELDS,
    SQLiteReader,
    _row_to_incident,
)
from netconsole.store._spans import SPAN_RECORDS, host_rows
from netconsole.stream.events import Sender

MachineStatus = Literal["live", "silent", "crashed"]

CRASH_SLACK = 10.0
"""Seconds of records a host may still send after a crash report's last line and
count as crashed: `Rebooting in 1 seconds..`, a last console flush."""

_CRASH_KINDS = tuple(sorted(k.value for k in CRASH_KINDS))

ID_SLACK = 60.0
"""Seconds by which a record's id may be out of step with its arrival time: ids
are given in commit order, and another worker's batch (or a spooled one) may
commit records that arrived a little earlier after ones that arrived later. A
time is turned into a lower bound on ids this much before it, and the rows
are then filtered by time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Machine:
    """The streams of one machine (same `hostname=` name, else same address; as
    `netconsole hosts --machines` groups them), with its incident status.

    `status` is `crashed` when the machine's newest crash report of its current
    boot is the last thing it sent (nothing more than `CRASH_SLACK` seconds
    after it) and the report was fatal (a panic, or a report that ended in one)
    or the machine is silent since;
    else `live` when a stream sent a record within `silent_after`, else `silent`.
    `open_incidents` counts the incidents of the current boot: a reboot closes
    them. Records and losses add up over the streams (each carries its own copy
    of the log); a reboot every stream saw counts once.
    """

    machine: str
    host_ids: tuple[int, ...]
    addresses: tuple[str, ...]
    status: MachineStatus
    last_record: float | None
    release: str | None
    records: int
    lost_seq: int
    lost_msgid: int
    reboots: int
    incidents: int
    open_incidents: int
    crash_id: int | None
    crash_title: str | None

    @property
    def streams(self) -> int:
        return len(self.host_ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetPage:
    """One page of the machines that match, with the whole fleet's counts."""

    machines: list[Machine]
    matched: int
    total: int
    counts: dict[str, int]
    open_incidents: int
    records: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelinePage:
    """Records of some streams in id order (oldest first), with the events (gaps,
    reboots, silences) and incidents that fall among them. `older`/`newer` say
    whether more records lie beyond each end."""

    records: list[StoredRecord]
    events: list[StoredEvent]
    incidents: list[StoredIncident]
    older: bool
    newer: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Bucket:
    start: float
    records: int
    incidents: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Activity:
    """Records and incidents per `step` seconds from `since`; for a host also its
    reboots and loss gaps (`marks`) in the span."""

    since: float
    step: float
    buckets: list[Bucket]
    marks: list[StoredEvent]


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentContext:
    """The host's records before an incident, the incident's own, and after it."""

    before: list[StoredRecord]
    report: list[StoredRecord]
    after: list[StoredRecord]


class ViewQueries(Protocol):
    """What the web view asks a backend besides its reader's queries."""

    def machines(self, *, now: float, silent_after: float | None = None) -> list[Machine]: ...

    def fleet(
        self,
        *,
        now: float,
        silent_after: float | None = None,
        status: str | None = None,
        needle: str | None = None,
        sort: str = "status",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> FleetPage: ...

    def machine(
        self, label: str, *, now: float, silent_after: float | None = None
    ) -> Machine | None: ...

    def host_streams(
        self, label: str, *, now: float, silent_after: float | None = None
    ) -> list[HostInfo]: ...

    def timeline(
        self,
        host_ids: Sequence[int],
        *,
        before: int | None = None,
        after: int | None = None,
        around: int | None = None,
        limit: int = 200,
    ) -> TimelinePage: ...

    def record_at(self, host_ids: Sequence[int], when: float) -> int | None: ...

    def activity(
        self, *, since: float, until: float, step: float, host_ids: Sequence[int] | None = None
    ) -> Activity: ...

    def incident_context(self, incident: StoredIncident, *, around: int = 15) -> IncidentContext:
        ...


# -- machines -------------------------------------------------------------------

_LABEL = "coalesce(h.name, h.address)"

# One row per stream, grouped into machines in Python: a GROUP BY over the
# unindexed label sorts every row first, twice as slow at 10^4 hosts. `{where}`
# narrows it to one machine.
_STREAMS = (
    f"SELECT {_LABEL}, h.id, h.address, h.last_record, h.records, h.lost_seq + 0.0"
    " + h.dropped, h.lost_msgid, h.reboots, h.release FROM hosts h{where}"
)
_INCIDENT_COUNTS = (
    f"SELECT {_LABEL}, count(*), total(i.boot = h.boot AND NOT i.previous_boot)"
    " FROM incidents i JOIN hosts h ON h.id = i.host_id{where} GROUP BY 1"
)
# Each machine's crash reports of a stream's current boot after which that stream
# sent nothing more than CRASH_SLACK seconds, oldest first (so the newest wins).
_CRASHES = (
    f"SELECT {_LABEL}, i.id, i.title, i.fatal OR i.kind = 'panic', i.last_received"
    " FROM incidents i"
    " JOIN hosts h ON h.id = i.host_id"
    " WHERE i.boot = h.boot AND NOT i.previous_boot"
    f" AND (i.fatal OR i.kind IN ({', '.join(repr(k) for k in _CRASH_KINDS)}))"
    " AND coalesce(h.last_record, 0) <= i.last_received + ?{and_where}"
    " ORDER BY i.last_received, i.id"
)

FLEET_SORTS = ("machine", "status", "last", "release", "records", "loss", "reboots",
               "incidents")
_STATUS_RANK = {"crashed": 0, "silent": 1, "live": 2}


StreamRow = tuple[str, int, str, float | None, int, float, int, int, str | None]
"""One stream as `tally_machines` takes it: its machine's label (name, else
address), host id, address, last record, records, lost seq plus dropped (a
float: the counters saturate at 2^63 - 1), lost msgid, reboots, release."""
IncidentCount = tuple[str, int, int]
"""A machine's label, its incidents, and those of a stream's current boot."""
CrashRow = tuple[str, int, str, bool, float]
"""A crash report after which its stream sent nothing more than CRASH_SLACK
seconds: the machine's label, incident id, title, whether fatal (or a panic),
its last record's time."""


class MachineTally:
    """A machine being summed up (plain attributes: 10^4 of them per page view)."""

    __slots__ = ("addresses", "crash", "current", "ids", "incidents", "label", "last",
                 "lost_msgid", "lost_seq", "reboots", "records", "release", "release_at",
                 "status")

    def __init__(self, label: str) -> None:
        self.label = label
        self.ids: list[int] = []
        self.addresses: list[str] = []
        self.last: float | None = None
        self.records = self.reboots = self.lost_msgid = self.incidents = self.current = 0
        self.lost_seq = 0.0
        self.release: str | None = None
        self.release_at = -1.0
        self.status: MachineStatus = "silent"
        self.crash: tuple[int, str, bool, float] | None = None

    def machine(self) -> Machine:
        crash = self.crash
        return Machine(
            machine=self.label, host_ids=tuple(self.ids),
            addresses=tuple(sorted(set(self.addresses))), status=self.status,
            last_record=self.last, release=self.release, records=self.records,
            lost_seq=int(self.lost_seq), lost_msgid=self.lost_msgid, reboots=self.reboots,
            incidents=self.incidents, open_incidents=self.current,
            crash_id=crash[0] if crash else None, crash_title=crash[1] if crash else None)


def tally_machines(streams: Iterable[StreamRow], incident_counts: Iterable[IncidentCount],
                   crashes: Iterable[CrashRow], *, now: float,
                   silent_after: float) -> list[MachineTally]:
    """Streams folded into machines by label, with their incident counts and
    status (`Machine`). `crashes` oldest first: a machine's newest one counts."""
    rows: dict[str, MachineTally] = {}
    for (name, hid, address, last, records, lost_seq, lost_msgid, reboots,
         release) in streams:
        m = rows.get(name)
        if m is None:
            m = rows[name] = MachineTally(name)
        m.ids.append(hid)
        m.addresses.append(address)
        if last is not None and (m.last is None or last > m.last):
            m.last = last
        m.records += records
        # Losses add up in floats: the counters saturate at 2^63 - 1.
        m.lost_seq += lost_seq
        m.lost_msgid += lost_msgid
        m.reboots = max(m.reboots, reboots)
        if release is not None and (last or 0.0) > m.release_at:
            m.release, m.release_at = release, last or 0.0
    for name, n, current in incident_counts:
        m = rows[name]
        m.incidents, m.current = n, int(current)
    newest = {name: (iid, title, bool(fatal), last) for name, iid, title, fatal, last in crashes}
    for m in rows.values():
        live = m.last is not None and now - m.last <= silent_after
        m.status = "live" if live else "silent"
        crash = newest.get(m.label)
        if crash is not None and (m.last or 0.0) <= crash[3] + CRASH_SLACK and (
                crash[2] or not live):
            m.status, m.crash = "crashed", crash
    return list(rows.values())


def _rows(reader: SQLiteReader, now: float, silent_after: float | None,
          label: str | None) -> list[MachineTally]:
    limit = reader.silent_after if silent_after is None else silent_after
    conn = reader.conn
    where, and_where = "", ""
    params: tuple[str, ...] = ()
    if label is not None:
        where, and_where, params = f" WHERE {_LABEL} = ?", f" AND {_LABEL} = ?", (label,)
    return tally_machines(
        conn.execute(_STREAMS.format(where=where), params),
        conn.execute(_INCIDENT_COUNTS.format(where=where), params),
        conn.execute(_CRASHES.format(and_where=and_where), (CRASH_SLACK, *params)),
        now=now, silent_after=limit)


_SORT_KEYS: dict[str, Any] = {
    "machine": lambda m: m.label.casefold(),
    "status": lambda m: (_STATUS_RANK[m.status], m.label.casefold()),
    "last": lambda m: m.last or 0.0,
    "release": lambda m: m.release or "",
    "records": lambda m: m.records,
    "loss": lambda m: m.lost_seq + m.lost_msgid,
    "reboots": lambda m: m.reboots,
    "incidents": lambda m: (m.current, m.incidents),
}


def fleet_page(
    rows: list[MachineTally],
    *,
    status: str | None = None,
    needle: str | None = None,
    sort: str = "status",
    descending: bool = False,
    offset: int = 0,
    limit: int | None = None,
) -> FleetPage:
    """`fleet`'s page of the machines `rows` (sorted in place)."""
    counts = {"live": 0, "silent": 0, "crashed": 0}
    for m in rows:
        counts[m.status] += 1
    shown = rows
    if status:
        shown = [m for m in shown if m.status == status]
    if needle:
        folded = needle.casefold()
        shown = [m for m in shown if folded in m.label.casefold()
                 or folded in (m.release or "").casefold()
                 or any(folded in a for a in m.addresses)]
    shown.sort(key=_SORT_KEYS[sort], reverse=descending)
    page = shown[offset:] if limit is None else shown[offset:offset + limit]
    return FleetPage(machines=[m.machine() for m in page], matched=len(shown),
                     total=len(rows), counts=counts,
                     open_incidents=sum(m.current for m in rows),
                     records=sum(m.records for m in rows))


# -- a host's timeline ----------------------------------------------------------

_FROM_RECORDS = f"SELECT {RECORD_COLUMNS} FROM records r JOIN hosts h ON h.id = r.host_id"


def _older(reader: SQLiteReader, host_ids: Sequence[int], before: int | None,
           limit: int) -> list[StoredRecord]:
    """The newest `limit` records below id `before`, oldest first: each stream's
    read backwards through its spans (store/_spans.py), then merged."""
    rows: list[Any] = []
    for host in host_ids:
        rows += host_rows(reader.conn, _FROM_RECORDS, host,
                          below=before if before is not None else INT64_MAX,
                          newest_first=True, limit=limit)
    rows.sort(key=itemgetter(0))
    return [row_to_stored(row) for row in rows[-limit:]] if limit else []


def _newer(reader: SQLiteReader, host_ids: Sequence[int], after: int,
           limit: int) -> list[StoredRecord]:
    """The oldest `limit` records above id `after`, oldest first."""
    rows: list[Any] = []
    for host in host_ids:
        rows += host_rows(reader.conn, _FROM_RECORDS, host, above=after, limit=limit)
    rows.sort(key=itemgetter(0))
    return [row_to_stored(row) for row in rows[:limit]]


def _events(reader: SQLiteReader, host_ids: Sequence[int], since: float, until: float,
            kinds: Sequence[str] | None = None) -> list[StoredEvent]:
    marks = ", ".join("?" * len(host_ids))
    kind_clause = ""
    params: list[Any] = [*host_ids, since, until]
    if kinds is not None:
        kind_clause = f" AND e.kind IN ({', '.join('?' * len(kinds))})"
        params += kinds
    rows = reader.conn.execute(
        "SELECT e.id, h.address, h.port, h.local_port, h.name, e.at, e.kind, e.detail"
        f" FROM events e JOIN hosts h ON h.id = e.host_id WHERE e.host_id IN ({marks})"
        f" AND e.at >= ? AND e.at < ?{kind_clause} ORDER BY e.at, e.id LIMIT 10000",
        params,
    ).fetchall()
    return [
        StoredEvent(id=eid, sender=Sender(host=address, port=port, local_port=local_port),
                    name=name, at=at, kind=kind, detail=json.loads(detail))
        for eid, address, port, local_port, name, at, kind, detail in rows
    ]


# -- counts over time -----------------------------------------------------------


def _first_id_at(reader: SQLiteReader, when: float) -> int:
    """The first record id received at or after `when` (past the last id when none)."""
    row = reader.conn.execute(
        "SELECT id FROM records WHERE received >= ? ORDER BY received LIMIT 1", (when,)
    ).fetchone()
    if row is not None:
        return int(row[0])
    return int(reader.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM records").fetchone()[0])


def bucket_edges(since: float, until: float, step: float) -> list[float]:
    """The edges of `activity`'s buckets: `step` seconds each, the last cut at `until`."""
    n = max(1, math.ceil((until - since) / step))
    return [since + i * step for i in range(n)] + [until]


def activity_from(edges: list[float], step: float, records: list[int],
                  incident_times: Iterable[float], marks: list[StoredEvent]) -> Activity:
    """An `Activity` of the records counted per bucket of `edges`, and the
    incidents first received at `incident_times` (within the edges)."""
    n = len(records)
    since = edges[0]
    incidents = [0] * n
    for first in incident_times:
        incidents[min(n - 1, int((first - since) // step))] += 1
    return Activity(
        since=since, step=step, marks=marks,
        buckets=[Bucket(start=edges[i], records=records[i], incidents=incidents[i])
                 for i in range(n)],
    )


class SQLiteViews:
    """`ViewQueries` over a `SQLiteReader` (the same connection, read-only)."""

    def __init__(self, reader: SQLiteReader) -> None:
        self.reader = reader

    def machines(
        self, *, now: float, silent_after: float | None = None,
        label: str | None = None,
    ) -> list[Machine]:
        """Every machine (in no particular order), or only the one called `label`."""
        return [m.machine() for m in _rows(self.reader, now, silent_after, label)]

    def fleet(
        self,
        *,
        now: float,
        silent_after: float | None = None,
        status: str | None = None,
        needle: str | None = None,
        sort: str = "status",
        descending: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> FleetPage:
        """The machines with `status` whose name, address or release contains `needle`
        (ignoring case), sorted by one of `FLEET_SORTS`, `limit` of them from `offset`;
        and the counts of the whole fleet by status."""
        return fleet_page(_rows(self.reader, now, silent_after, None), status=status,
                          needle=needle, sort=sort, descending=descending, offset=offset,
                          limit=limit)

    def machine(
        self, label: str, *, now: float, silent_after: float | None = None
    ) -> Machine | None:
        found = self.machines(now=now, silent_after=silent_after, label=label)
        return found[0] if found else None

    def host_streams(
        self, label: str, *, now: float, silent_after: float | None = None
    ) -> list[HostInfo]:
        """The streams of the machine called `label` (its name, else its address)."""
        reader = self.reader
        limit = reader.silent_after if silent_after is None else silent_after
        rows = reader.conn.execute(
            f"SELECT {_HOST_COLUMNS}, CASE WHEN last_record IS NOT NULL AND ?1 - last_record <= ?2"
            " THEN 'live' ELSE 'silent' END FROM hosts WHERE coalesce(name, address) = ?3"
            " ORDER BY port, local_port, id",
            (now, limit, label),
        ).fetchall()
        return [HostInfo(**dict(zip(_HOST_FIELDS, row, strict=True))) for row in rows]

    def timeline(
        self,
        host_ids: Sequence[int],
        *,
        before: int | None = None,
        after: int | None = None,
        around: int | None = None,
        limit: int = 200,
    ) -> TimelinePage:
        """A page of the streams' records: the newest (no bound), those before id
        `before` (scrolling back), after id `after`, or half before and half from id
        `around` (a search hit, a jump to a time). Events are those between the
        page's first and last record (to the end of time on the newest page, so a
        reboot or silence after the last record shows); incidents those whose first
        record is on the page."""
        reader = self.reader
        if not host_ids:
            return TimelinePage(records=[], events=[], incidents=[], older=False, newer=False)
        if around is not None:
            older = _older(reader, host_ids, around, limit // 2)
            records = older + _newer(reader, host_ids, around - 1, limit - len(older))
        elif after is not None:
            records = _newer(reader, host_ids, after, limit)
        else:
            records = _older(reader, host_ids, before, limit)
        if not records:
            return TimelinePage(records=[], events=[], incidents=[], older=False,
                                newer=before is not None)
        first, last = records[0], records[-1]
        has_older = bool(_older(reader, host_ids, first.id, 1))
        following = _newer(reader, host_ids, last.id, 1)
        # Events are timed by arrival. Each falls on exactly one page: from this
        # page's first record up to the next page's first (or the ends of time),
        # so a gap or reboot between two pages, or after the newest record, shows.
        since = first.record.received if has_older else float("-inf")
        until = following[0].record.received if following else float("inf")
        events = _events(reader, host_ids, since, until)
        marks = ", ".join("?" * len(host_ids))
        rows = reader.conn.execute(
            _FROM_INCIDENTS + f" WHERE i.host_id IN ({marks}) AND i.first_record_id BETWEEN ? AND ?"
            " ORDER BY i.first_record_id, i.id",
            (*host_ids, first.id, last.id),
        ).fetchall()
        return TimelinePage(records=records, events=events,
                            incidents=[_row_to_incident(r) for r in rows],
                            older=has_older, newer=bool(following))

    def record_at(self, host_ids: Sequence[int], when: float) -> int | None:
        """The id of the streams' first record received at or after `when`; None when
        they have none since."""
        reader = self.reader
        start = _first_id_at(reader, when - ID_SLACK)
        found = [
            row[0][0] for host in host_ids
            if (row := host_rows(reader.conn, "SELECT r.id FROM records r", host, above=start - 1,
                                 where=["r.received >= ?"], params=[when], limit=1))
        ]
        return min(found, default=None)

    def activity(
        self,
        *,
        since: float,
        until: float,
        step: float,
        host_ids: Sequence[int] | None = None,
    ) -> Activity:
        """Records and incidents per `step` seconds in `[since, until)`: of the whole
        fleet, or of `host_ids` with their reboots and gaps as `marks`.

        The fleet's: one count per bucket over a range of the `received` index (no
        table row is read; a GROUP BY over computed buckets would read the same
        entries and then sort them, ten times slower over 24 h of 10^6 records). A
        host's: its rows from the first id of the span on, by the `(host_id, id)`
        index.
        """
        reader = self.reader
        edges = bucket_edges(since, until, step)
        n = len(edges) - 1
        conn = reader.conn
        counts = [0] * n
        if host_ids is None:
            for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
                counts[i] = conn.execute(
                    "SELECT count(*) FROM records WHERE received >= ? AND received < ?", (lo, hi)
                ).fetchone()[0]
            incident_filter, params = "", []
            marks: list[StoredEvent] = []
        else:
            start = _first_id_at(reader, since - ID_SLACK)
            for host in host_ids:
                for spans in SPAN_RECORDS:
                    for index, count in conn.execute(
                            "SELECT CAST((r.received - ?1) / ?2 AS INTEGER), count(*)"
                            f" FROM {spans} AND s.host_id = ?3 AND s.last_id >= ?4"
                            " AND r.id >= ?4 AND +r.received >= ?1 AND +r.received < ?5"
                            " GROUP BY 1", (since, step, host, start, until)):
                        counts[min(n - 1, index)] += count
            incident_filter = f" AND host_id IN ({', '.join('?' * len(host_ids))})"
            params = list(host_ids)
            marks = _events(reader, host_ids, since, until, ("reboot", "gap")) if host_ids else []
        firsts = conn.execute("SELECT first_received FROM incidents WHERE first_received >= ? AND"
                              f" first_received < ?{incident_filter}", (since, until, *params))
        return activity_from(edges, step, counts, (first for (first,) in firsts), marks)

    def incident_context(
        self, incident: StoredIncident, *, around: int = 15
    ) -> IncidentContext:
        """`around` records of the host before the incident's first and after its last
        record, and its own (the host's log between them, interleaved lines included)."""
        reader = self.reader
        if incident.first_record_id is None:
            return IncidentContext(before=[], report=[], after=[])
        row = reader.conn.execute(
            "SELECT host_id FROM incidents WHERE id = ?", (incident.id,)
        ).fetchone()
        if row is None:
            return IncidentContext(before=[], report=[], after=[])
        host = [row[0]]
        last = incident.last_record_id if incident.last_record_id is not None else \
            incident.first_record_id
        return IncidentContext(
            before=_older(reader, host, incident.first_record_id, around),
            report=reader.incident_records(incident.id, limit=5000),
            after=_newer(reader, host, last, around),
        )
