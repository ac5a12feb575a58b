"""The web view's queries (`ViewQueries`, store/_views.py) over the ClickHouse store.

The same pages as `SQLiteViews` gives, from the same dataclasses; what is plain
Python (machines folded from their streams with their status, the fleet's
filters and sorts, counts into buckets) is store/_views.py's own. Where the
engines differ (see store/clickhouse/_reader.py):

* Order: a host's records are in `(received, n, id)` order, the reader's, not
  by id: ids are hashes. A timeline's `before`/`after`/`around` id is looked up
  for its place in that order (an id not among the host's records gives the
  newest page), and a page's incidents are those whose first record is on it.
* A stream's counters come from `ClickHouseReader.hosts` (counted from the
  rows), incidents from their newest version; duplicates not merged yet are
  read once (`LIMIT 1 BY id`, `uniqExact(id)`).
* Search is `ClickHouseReader.search` (newest matches, no FTS5 syntax).

Every query reads a host's rows by the sorting key `(host_id, received, …)`, or
a span of time by the day partitions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from netconsole.incidents import CRASH_KINDS
from netconsole.store._model import (
    HostInfo,
    StoredEvent,
    StoredIncident,
    StoredRecord,
)
from netconsole.store._views import (
    CRASH_SLACK,
    Activity,
    CrashRow,
    FleetPage,
    IncidentContext,
    Machine,
    MachineTally,
    StreamRow,
    TimelinePage,
    activity_from,
    bucket_edges,
    fleet_page,
    tally_machines,
)
from netconsole.store.clickhouse._dialect import ONE_PER_KEY, after, in_list, number, quote
from netconsole.store.clickhouse._reader import (
    _KEY,
    _OLDEST_FIRST,
    INCIDENT_COLUMNS,
    ClickHouseReader,
)

Place = tuple[float, int, int]
"""Where a record is in the store's order: (received, n, id)."""

EVENTS_LIMIT = 10_000
"""Events one timeline page or picture shows at most (as the SQLite views)."""

_CRASH_KINDS = ", ".join(quote(k) for k in sorted(k.value for k in CRASH_KINDS))
_HIDDEN_EVENTS = "kind NOT IN ('duplicate', 'rejected')"
"""Events the SQLite store only counts on the host: not shown among records."""


def _before(place: Place) -> list[str]:
    """Records before `place` (the `received` bound lets the sorting key prune)."""
    return [f"received <= {number(place[0])}",
            f"({', '.join(_KEY)}) < ({number(place[0])}, {place[1]}, {place[2]})"]


def _from(place: Place, *, inclusive: bool) -> list[str]:
    """Records after `place`, or from it on."""
    cut = (f"({', '.join(_KEY)}) >= ({number(place[0])}, {place[1]}, {place[2]})"
           if inclusive else after(_KEY, place))
    return [f"received >= {number(place[0])}", cut]


def _label(host: HostInfo) -> str:
    """A stream's machine: its name, else its address (`coalesce(name, address)`)."""
    return host.address if host.name is None else host.name


class ClickHouseViews:
    """`ViewQueries` over a `ClickHouseReader` (its client, read-only)."""

    def __init__(self, reader: ClickHouseReader) -> None:
        self.reader = reader

    def _t(self, name: str) -> str:
        return self.reader._t(name)

    def _select(self, sql: str) -> list[list[Any]]:
        return self.reader._select(sql)

    # -- machines -----------------------------------------------------------------------

    def _label_ids(self, label: str) -> list[int]:
        """The host ids of the machine called `label` (its name, else its address)."""
        current = ("if(countIf(kind = 'name') > 0, argMaxIf(value, (at, n), kind = 'name'),"
                   " any(address))")
        return sorted(self.reader._host_rows(having=f" HAVING {current} = {quote(label)}"))

    def _streams(self, now: float, limit: float, label: str | None) -> list[HostInfo]:
        if label is None:
            return self.reader.hosts(now=now, silent_after=limit)
        ids = self._label_ids(label)
        return self.reader.hosts(now=now, silent_after=limit, host_ids=ids) if ids else []

    def _tallies(self, now: float, silent_after: float | None,
                 label: str | None) -> list[MachineTally]:
        limit = self.reader.silent_after if silent_after is None else silent_after
        streams = self._streams(now, limit, label)
        if not streams:
            return []
        by_id = {h.id: h for h in streams}
        latest = self.reader._latest_incidents(
            [] if label is None else [in_list("host_id", sorted(by_id))])
        counts: dict[str, list[int]] = {}
        for hid, boot, previous, n in self._select(
                f"SELECT host_id, boot, previous_boot, count() FROM {latest}"
                " GROUP BY host_id, boot, previous_boot"):
            host = by_id.get(int(hid))
            if host is None:  # no facts of its host (SQLite's join leaves it out too)
                continue
            tally = counts.setdefault(_label(host), [0, 0])
            tally[0] += int(n)
            if int(boot) == host.boot and not previous:
                tally[1] += int(n)
        # Crash reports of a stream's current boot after which it sent nothing
        # more than CRASH_SLACK seconds, oldest first (opened order breaks ties,
        # as SQLite's ids do).
        found = []
        for hid, iid, title, fatal, last, boot, opened_at, opened_n in self._select(
                f"SELECT host_id, id, title, fatal OR kind = 'panic', last_received, boot,"
                f" opened_at, opened_n FROM {latest} WHERE previous_boot = 0"
                f" AND (fatal OR kind IN ({_CRASH_KINDS}))"):
            host = by_id.get(int(hid))
            if host is None or int(boot) != host.boot or \
                    (host.last_record or 0.0) > float(last) + CRASH_SLACK:
                continue
            found.append((float(last), float(opened_at), int(opened_n), int(iid), _label(host),
                          str(title), bool(fatal)))
        found.sort()
        crashes: list[CrashRow] = [(name, iid, title, fatal, last)
                                   for last, _, _, iid, name, title, fatal in found]
        rows: list[StreamRow] = [
            (_label(h), h.id, h.address, h.last_record, h.records, float(h.lost_seq) + h.dropped,
             h.lost_msgid, h.reboots, h.release) for h in streams]
        return tally_machines(rows, [(name, n, current) for name, (n, current) in counts.items()],
                              crashes, now=now, silent_after=limit)

    def machines(self, *, now: float, silent_after: float | None = None) -> list[Machine]:
        return [m.machine() for m in self._tallies(now, silent_after, None)]

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
        return fleet_page(self._tallies(now, silent_after, None), status=status, needle=needle,
                          sort=sort, descending=descending, offset=offset, limit=limit)

    def machine(
        self, label: str, *, now: float, silent_after: float | None = None
    ) -> Machine | None:
        found = self._tallies(now, silent_after, label)
        return found[0].machine() if found else None

    def host_streams(
        self, label: str, *, now: float, silent_after: float | None = None
    ) -> list[HostInfo]:
        limit = self.reader.silent_after if silent_after is None else silent_after
        return sorted(self._streams(now, limit, label),
                      key=lambda h: (h.port, h.local_port, h.id))

    # -- a host's timeline --------------------------------------------------------------

    def _place(self, rid: int, host_ids: Sequence[int],
               received: float | None = None) -> Place | None:
        """Where record `rid` of these streams is; None when it is none of theirs.
        Its receive time, when known, narrows the lookup to one key range."""
        at = "" if received is None else f" AND received = {number(received)}"
        return self.reader._key_of(rid, f" AND {in_list('host_id', host_ids)}{at}")

    def _older(self, host_ids: Sequence[int], before: Place | None,
               limit: int) -> list[StoredRecord]:
        """The newest `limit` records before `before` (or of all), oldest first."""
        where = [in_list("host_id", host_ids), *(_before(before) if before is not None else [])]
        return self.reader._newest(where, limit)

    def _newer(self, host_ids: Sequence[int], start: Place, limit: int, *,
               inclusive: bool = False) -> list[StoredRecord]:
        """The oldest `limit` records after `start` (or from it on), oldest first.
        Paged on until full or empty: a page may come short (`ClickHouseReader._rows`)."""
        rows: list[list[Any]] = []
        while len(rows) < limit:
            page = self.reader._rows([in_list("host_id", host_ids),
                                      *_from(start, inclusive=inclusive and not rows)],
                                     _OLDEST_FIRST, limit - len(rows))
            if not page:
                break
            rows += page
            last = page[-1]
            start = (float(last[1]), int(last[2]), int(last[3]))
        return self.reader._stored(rows)

    def _any_before(self, host_ids: Sequence[int], place: Place) -> bool:
        # A column, not a constant: 18.16 loses `SELECT 1` through a Distributed table.
        rows = self._select(f"SELECT id FROM {self._t('records')} WHERE "
                            + " AND ".join([in_list("host_id", host_ids), *_before(place)])
                            + " LIMIT 1")
        return bool(rows)

    def _next_received(self, host_ids: Sequence[int], place: Place) -> float | None:
        """When the streams' first record after `place` was received; None: none yet."""
        rows = self._select(
            f"SELECT received FROM {self._t('records')} WHERE "
            + " AND ".join([in_list("host_id", host_ids), *_from(place, inclusive=False)])
            + f" {_OLDEST_FIRST} LIMIT 1")
        return float(rows[0][0]) if rows else None

    def _events(self, host_ids: Sequence[int], since: float | None, until: float | None,
                kinds: Sequence[str] | None = None) -> list[StoredEvent]:
        """The streams' events in `[since, until)` (None: no bound), oldest first."""
        where = [in_list("host_id", host_ids), _HIDDEN_EVENTS if kinds is None else
                 f"kind IN ({', '.join(quote(k) for k in kinds)})"]
        if since is not None:
            where.append(f"at >= {number(since)}")
        if until is not None:
            where.append(f"at < {number(until)}")
        rows: list[list[Any]] = []
        cursor: list[str] = []
        while len(rows) < EVENTS_LIMIT:  # paged: a page may come short
            page = self._select(
                f"SELECT id, host_id, at, kind, detail, n FROM {self._t('events')} WHERE "
                + " AND ".join([*where, *cursor]) + f" ORDER BY at, n, id {ONE_PER_KEY}"
                f" LIMIT {EVENTS_LIMIT - len(rows)}")
            if not page:
                break
            rows += page
            last = page[-1]
            cursor = [after(("at", "n", "id"), (float(last[2]), int(last[5]), int(last[0])))]
        labels = self.reader._labels([int(r[1]) for r in rows])
        return [StoredEvent(id=int(eid), sender=labels[int(hid)][0], name=labels[int(hid)][1],
                            at=float(at), kind=kind, detail=json.loads(detail))
                for eid, hid, at, kind, detail, _ in rows]

    def _page_incidents(self, host_ids: Sequence[int],
                        records: list[StoredRecord]) -> list[StoredIncident]:
        """The incidents whose first record is on the page, in the page's order."""
        place = {s.id: i for i, s in enumerate(records)}
        latest = self.reader._latest_incidents([
            in_list("host_id", host_ids),
            f"first_received >= {number(records[0].record.received)}",
            f"first_received <= {number(records[-1].record.received)}"])
        found = self.reader._to_incidents(self._select(
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM {latest}"
            f" WHERE {in_list('first_record_id', place)}"
            " ORDER BY first_received, opened_at, opened_n"))
        return sorted(found, key=lambda i: place[i.first_record_id or 0])

    def timeline(
        self,
        host_ids: Sequence[int],
        *,
        before: int | None = None,
        after: int | None = None,
        around: int | None = None,
        limit: int = 200,
    ) -> TimelinePage:
        """As `SQLiteViews.timeline`, in the store's order; an id that is none of
        these streams' records gives the newest page."""
        if not host_ids:
            return TimelinePage(records=[], events=[], incidents=[], older=False, newer=False)
        ids = list(host_ids)
        mark = around if around is not None else after if after is not None else before
        start = None if mark is None else self._place(mark, ids)
        if start is None:
            records = self._older(ids, None, limit)
        elif around is not None:
            older = self._older(ids, start, limit // 2)
            records = older + self._newer(ids, start, limit - len(older), inclusive=True)
        elif after is not None:
            records = self._newer(ids, start, limit)
        else:
            records = self._older(ids, start, limit)
        if not records:
            return TimelinePage(records=[], events=[], incidents=[], older=False,
                                newer=start is not None and before is not None)
        first, last = records[0], records[-1]
        first_place = self._place(first.id, ids, first.record.received)
        last_place = self._place(last.id, ids, last.record.received)
        assert first_place is not None and last_place is not None  # just read
        has_older = self._any_before(ids, first_place)
        following = self._next_received(ids, last_place)
        # Each event falls on exactly one page (see SQLiteViews.timeline).
        events = self._events(ids, first.record.received if has_older else None, following)
        return TimelinePage(records=records, events=events,
                            incidents=self._page_incidents(ids, records),
                            older=has_older, newer=following is not None)

    def record_at(self, host_ids: Sequence[int], when: float) -> int | None:
        rows = self._select(
            f"SELECT id FROM {self._t('records')} WHERE {in_list('host_id', host_ids)}"
            f" AND received >= {number(when)} {_OLDEST_FIRST} LIMIT 1")
        return int(rows[0][0]) if rows else None

    # -- counts over time ---------------------------------------------------------------

    def activity(
        self, *, since: float, until: float, step: float, host_ids: Sequence[int] | None = None
    ) -> Activity:
        """Records (each once) and incidents per `step` seconds in `[since, until)`,
        by day partition; a host's with its reboots and gaps as marks."""
        edges = bucket_edges(since, until, step)
        n = len(edges) - 1
        span = [f"received >= {number(since)}", f"received < {number(until)}"]
        firsts = [f"first_received >= {number(since)}", f"first_received < {number(until)}"]
        if host_ids is not None:
            span.append(in_list("host_id", host_ids))
            firsts.append(in_list("host_id", host_ids))
        counts = [0] * n
        for index, count in self._select(
                f"SELECT toInt64((received - {number(since)}) / {number(step)}) AS bucket,"
                f" uniqExact(id) FROM {self._t('records')} WHERE {' AND '.join(span)}"
                " GROUP BY bucket"):
            counts[min(n - 1, int(index))] += int(count)
        incidents = self._select(
            f"SELECT first_received FROM {self.reader._latest_incidents(firsts)}")
        marks = self._events(host_ids, since, until, ("reboot", "gap")) if host_ids else []
        return activity_from(edges, step, counts, (float(r[0]) for r in incidents), marks)

    # -- an incident's surroundings -----------------------------------------------------

    def incident_context(self, incident: StoredIncident, *, around: int = 15) -> IncidentContext:
        """`around` records of the host before the incident's first and after its
        last record, and its own."""
        empty = IncidentContext(before=[], report=[], after=[])
        if incident.first_record_id is None:
            return empty
        rows = self._select(f"SELECT host_id FROM {self._t('incidents')}"
                            f" WHERE id = {int(incident.id)} LIMIT 1")
        if not rows:
            return empty
        host = [int(rows[0][0])]
        first = self._place(incident.first_record_id, host, incident.first_received)
        last_id = incident.last_record_id if incident.last_record_id is not None else \
            incident.first_record_id
        last = self._place(last_id, host, incident.last_received) or first
        return IncidentContext(
            before=self._older(host, first, around) if first is not None else [],
            report=self.reader.incident_records(incident.id, limit=5000),
            after=self._newer(host, last, around) if last is not None else [],
        )

