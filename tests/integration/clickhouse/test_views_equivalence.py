"""The web view's queries (`ViewQueries`) answer on ClickHouse as on SQLite.

The same fleet as test_store_equivalence.py (its `stores` fixture: real kernel
captures on many hosts, their incidents, silences, odd accounting events and
express-lane rows, in a SQLite store and in ClickHouse on two real 18.16
servers, or embedded chDB) is read through `SQLiteViews` and `ClickHouseViews`,
and every method's answers are compared field by field: the fleet with each
sort, filter and status, one machine and its streams, timeline pages both ways
and around a record, `record_at`, counts over time with and without hosts,
incidents' surroundings, and search. Record, incident and host ids differ by
design (SQLite counts, ClickHouse hashes): they are compared through the
mappings the exports establish.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from netconsole.store import RecordFilter, SQLiteReader, StoredEvent, StoredRecord, StoreError
from netconsole.store._views import FLEET_SORTS, Machine, SQLiteViews, TimelinePage
from netconsole.store.clickhouse import ClickHouseReader, ClickHouseViews
from tests.integration.clickhouse.test_store_equivalence import (  # noqa: F401 (fixtures)
    record_ids,
    stores,
)

SenderKey = tuple[str, int, int]


@dataclasses.dataclass(frozen=True)
class Both:
    """The two backends' views, and how their ids correspond (SQLite's -> ClickHouse's)."""

    sq: SQLiteViews
    ch: ClickHouseViews
    end: float  # the fleet's last event, plus a little
    records: dict[int, int]
    incidents: dict[int, int]
    hosts: dict[int, int]

    def same_records(self, a: list[StoredRecord], b: list[StoredRecord]) -> None:
        assert [(self.records[s.id], s.record, s.name, s.boot) for s in a] == [
            (c.id, c.record, c.name, c.boot) for c in b]


@pytest.fixture(scope="module")
def both(stores: Any, record_ids: dict[int, int]) -> Both:  # noqa: F811
    sq, ch, end, *_ = stores
    assert isinstance(sq, SQLiteReader) and isinstance(ch, ClickHouseReader)
    incidents = {x.id: y.id for x, y in zip(sq.incidents(limit=1000), ch.incidents(limit=1000),
                                             strict=True)}
    ch_hosts = {(h.address, h.port, h.local_port): h.id for h in ch.hosts(now=end)}
    hosts = {h.id: ch_hosts[h.address, h.port, h.local_port] for h in sq.hosts(now=end)}
    return Both(sq=SQLiteViews(sq), ch=ClickHouseViews(ch), end=end, records=record_ids,
                incidents=incidents, hosts=hosts)


def _machine(m: Machine, both: Both | None = None) -> Machine:
    """`m` with ClickHouse's ids (given SQLite's `both`) and its streams in one order."""
    hosts = m.host_ids if both is None else tuple(both.hosts[h] for h in m.host_ids)
    crash = m.crash_id if both is None or m.crash_id is None else both.incidents[m.crash_id]
    return dataclasses.replace(m, host_ids=tuple(sorted(hosts)), crash_id=crash)


def _events(events: list[StoredEvent]) -> list[tuple[Any, ...]]:
    """Events without their ids, in time order (SQLite's ids order kinds of one
    batch its own way; each page's rows are sorted by time)."""
    return sorted((e.at, e.kind, repr(sorted(e.detail.items())), repr(e.sender), e.name)
                  for e in events)


def _same_page(both: Both, a: TimelinePage, b: TimelinePage) -> None:
    both.same_records(a.records, b.records)
    assert _events(a.events) == _events(b.events)
    assert [both.incidents[i.id] for i in a.incidents] == [i.id for i in b.incidents]
    assert (a.older, a.newer) == (b.older, b.newer)


SORT_KEYS: dict[str, Callable[[Machine], Any]] = {
    "machine": lambda m: m.machine.casefold(),
    "status": lambda m: ({"crashed": 0, "silent": 1, "live": 2}[m.status],
                         m.machine.casefold()),
    "last": lambda m: m.last_record or 0.0,
    "release": lambda m: m.release or "",
    "records": lambda m: m.records,
    "loss": lambda m: m.lost_seq + m.lost_msgid,
    "reboots": lambda m: m.reboots,
    "incidents": lambda m: (m.open_incidents, m.incidents),
}
"""What each of FLEET_SORTS orders by, as a Machine shows it: machines that tie
(the same capture on two hosts) may come in either order."""

# (now, silent_after) from the fleet's end: two live, four crashed, the rest
# silent; in the middle of it, right after the panics: all live or crashed;
# and a short silent_after there: some of each.
MOMENTS = [(30.0, 3600.0), (-7500.0, 600.0), (-7505.0, 30.0)]


def _by_label(machines: list[Machine]) -> list[Machine]:
    return sorted(machines, key=lambda m: m.machine)


@pytest.mark.parametrize(("moment", "silent_after"), MOMENTS)
def test_machines_and_their_status(both: Both, moment: float, silent_after: float) -> None:
    now = both.end + moment
    a = _by_label([_machine(m, both) for m in both.sq.machines(now=now,
                                                                silent_after=silent_after)])
    b = _by_label([_machine(m) for m in both.ch.machines(now=now, silent_after=silent_after)])
    assert a == b
    assert {m.status for m in b} >= {"live", "crashed"}
    assert [m.crash_title for m in b if m.status == "crashed"] == [
        "Kernel panic - not syncing: sysrq triggered crash"] * 4
    for m in b:
        assert _machine(both.ch.machine(m.machine, now=now, silent_after=silent_after)
                        ) == m  # type: ignore[arg-type]
        sq_streams = both.sq.host_streams(m.machine, now=now, silent_after=silent_after)
        ch_streams = both.ch.host_streams(m.machine, now=now, silent_after=silent_after)
        assert [dataclasses.replace(h, id=both.hosts[h.id]) for h in sq_streams] == ch_streams
    assert both.ch.machine("nobody", now=now) is None
    assert both.ch.host_streams("nobody", now=now) == []


@pytest.mark.parametrize("sort", FLEET_SORTS)
@pytest.mark.parametrize("descending", [False, True])
def test_fleet_sorts_and_pages(both: Both, sort: str, descending: bool) -> None:
    now, silent_after = both.end + MOMENTS[1][0], MOMENTS[1][1]
    key = SORT_KEYS[sort]

    def fleet(views: Any, **kw: Any) -> Any:
        return views.fleet(now=now, silent_after=silent_after, sort=sort,
                           descending=descending, **kw)

    a, b = fleet(both.sq), fleet(both.ch)
    assert (a.matched, a.total, a.counts, a.open_incidents, a.records) == (
        b.matched, b.total, b.counts, b.open_incidents, b.records)
    assert _by_label([_machine(m, both) for m in a.machines]) == _by_label(
        [_machine(m) for m in b.machines])
    assert [key(m) for m in a.machines] == [key(m) for m in b.machines]
    assert [key(m) for m in b.machines] == sorted((key(m) for m in b.machines),
                                                  reverse=descending)
    paged = fleet(both.ch, offset=3, limit=5)
    assert [key(m) for m in paged.machines] == [key(m) for m in b.machines[3:8]]
    assert paged.matched == b.matched


@pytest.mark.parametrize("query", [
    {"status": "crashed"}, {"status": "live"}, {"status": "silent"}, {"needle": "10.1."},
    {"needle": "LANE"}, {"needle": "deb12"}, {"needle": "10.9.9.9"}, {"needle": "none such"},
    {"status": "crashed", "needle": "10.0"},
], ids=lambda q: ",".join(f"{k}={v}" for k, v in q.items()))
def test_fleet_filters(both: Both, query: dict[str, Any]) -> None:
    now = both.end + MOMENTS[1][0]
    a = both.sq.fleet(now=now, silent_after=MOMENTS[1][1], sort="machine", **query)
    b = both.ch.fleet(now=now, silent_after=MOMENTS[1][1], sort="machine", **query)
    assert [_machine(m, both) for m in a.machines] == [_machine(m) for m in b.machines]
    assert (a.matched, a.total, a.counts) == (b.matched, b.total, b.counts)


def _ids(both: Both, label: str) -> tuple[list[int], list[int]]:
    """The host ids of machine `label` in each store."""
    m = both.sq.machine(label, now=both.end)
    assert m is not None
    return list(m.host_ids), [both.hosts[h] for h in m.host_ids]


# a crashed machine with incidents; two streams of one machine; odd events
MACHINES = ["10.0.2.15", "10.1.8.15", "odd-host", "10.0.5.15"]


@pytest.mark.parametrize("label", MACHINES)
def test_timeline_back_and_forth(both: Both, label: str) -> None:
    sq_ids, ch_ids = _ids(both, label)
    a, b = both.sq.timeline(sq_ids, limit=64), both.ch.timeline(ch_ids, limit=64)
    seen: list[StoredRecord] = []
    while True:  # back to the first record, page by page
        _same_page(both, a, b)
        seen[:0] = b.records
        if not b.older:
            break
        a = both.sq.timeline(sq_ids, before=a.records[0].id, limit=64)
        b = both.ch.timeline(ch_ids, before=b.records[0].id, limit=64)
    stored = list(both.ch.reader.export(host=label))
    assert [s.id for s in seen] == [s.id for s in stored]  # each once, in the store's order
    while b.newer:  # and forward again, from the first page
        a = both.sq.timeline(sq_ids, after=a.records[-1].id, limit=150)
        b = both.ch.timeline(ch_ids, after=b.records[-1].id, limit=150)
        _same_page(both, a, b)
    assert b.records[-1].id == seen[-1].id
    # around a record in the middle, and at either end
    for index in (len(seen) // 2, 0, len(seen) - 1):
        ch_id = seen[index].id
        sq_id = {v: k for k, v in both.records.items()}[ch_id]
        _same_page(both, both.sq.timeline(sq_ids, around=sq_id, limit=40),
                   both.ch.timeline(ch_ids, around=ch_id, limit=40))


def test_timeline_edges(both: Both) -> None:
    _, ch_ids = _ids(both, "10.0.2.15")
    newest = both.ch.timeline(ch_ids, limit=10)
    # an id that is not one of its records: the newest page
    assert both.ch.timeline(ch_ids, before=12345, limit=10) == newest
    assert both.ch.timeline(ch_ids, around=12345, limit=10) == newest
    assert both.ch.timeline([], limit=10) == TimelinePage(records=[], events=[], incidents=[],
                                                          older=False, newer=False)
    _, other = _ids(both, "10.1.2.15")  # nor is another host's
    elsewhere = both.ch.timeline(other, limit=10).records[0].id
    assert both.ch.timeline(ch_ids, after=elsewhere, limit=10) == newest


@pytest.mark.parametrize("label", MACHINES)
def test_record_at(both: Both, label: str) -> None:
    sq_ids, ch_ids = _ids(both, label)
    records = both.ch.timeline(ch_ids, limit=10_000).records
    moments = [records[0].record.received - 1, records[len(records) // 3].record.received,
               records[len(records) // 2].record.received + 0.0001,
               records[-1].record.received, records[-1].record.received + 0.001]
    for when in moments:
        a, b = both.sq.record_at(sq_ids, when), both.ch.record_at(ch_ids, when)
        assert (None if a is None else both.records[a]) == b, when
    assert both.ch.record_at(ch_ids, moments[-1]) is None
    assert both.ch.record_at(ch_ids, moments[0]) == records[0].id


@pytest.mark.parametrize("step", [60.0, 3600.0, 7.5])
@pytest.mark.parametrize("label", [None, *MACHINES])
def test_activity(both: Both, step: float, label: str | None) -> None:
    since, until = both.end - 7700, both.end + 100
    sq_ids, ch_ids = _ids(both, label) if label is not None else (None, None)
    a = both.sq.activity(since=since, until=until, step=step, host_ids=sq_ids)
    b = both.ch.activity(since=since, until=until, step=step, host_ids=ch_ids)
    assert (a.since, a.step, a.buckets) == (b.since, b.step, b.buckets)
    assert _events(a.marks) == _events(b.marks)
    assert sum(x.records for x in b.buckets) > 0
    if label is None:
        assert sum(x.incidents for x in b.buckets) == len(both.incidents)
    elif label == "odd-host":
        assert sorted(m.kind for m in b.marks) == ["gap"] * 5 + ["reboot"]
    # a span of nothing, and no hosts at all
    empty = both.ch.activity(since=since - 86400, until=since - 3600, step=step,
                             host_ids=ch_ids)
    assert {(x.records, x.incidents) for x in empty.buckets} == {(0, 0)}
    none = both.ch.activity(since=since, until=until, step=step, host_ids=[])
    assert none.marks == [] and {(x.records, x.incidents) for x in none.buckets} == {(0, 0)}


def test_incident_context(both: Both) -> None:
    sq_incidents = both.sq.reader.incidents(limit=1000)
    ch_incidents = {i.id: i for i in both.ch.reader.incidents(limit=1000)}
    assert len(sq_incidents) == len(ch_incidents) >= 6
    for x in sq_incidents:
        y = ch_incidents[both.incidents[x.id]]
        for around in (15, 3):
            a = both.sq.incident_context(x, around=around)
            b = both.ch.incident_context(y, around=around)
            both.same_records(a.before, b.before)
            both.same_records(a.report, b.report)
            both.same_records(a.after, b.after)
        assert b.report, y.title
    nowhere = dataclasses.replace(y, id=12345)
    assert both.ch.incident_context(nowhere).report == []
    assert both.ch.incident_context(dataclasses.replace(y, first_record_id=None)).before == []


@pytest.mark.parametrize("query", [
    {"query": "netconsole", "limit": 40},
    {"query": "Call Trace", "limit": 15},
    {"query": "labtrig", "host": "10.1.2.15"},
    {"query": "odd one", "host": "odd-host"},
    {"query": "express", "limit": 7},
    {"query": "t1"},  # a userdata value
    {"query": "netconsole", "since": 1795656700.0},
    {"query": "Modules linked", "match": RecordFilter(boot=0)},
    {"query": "express", "match": RecordFilter(fields=(("hostname", "lane-host"),))},
    {"query": "netconsole", "host": "nobody"},
], ids=lambda q: ",".join(f"{k}={v}" for k, v in q.items()))
def test_search(both: Both, query: dict[str, Any]) -> None:
    a, b = both.sq.reader.search(**query), both.ch.reader.search(**query)
    assert b or query.get("host") == "nobody"
    both.same_records(a, b)


def test_search_refuses_fts_syntax(both: Both) -> None:
    assert both.sq.reader.search("netcon*", fts_syntax=True, limit=3)
    with pytest.raises(StoreError, match="FTS5"):
        both.ch.reader.search("netcon*", fts_syntax=True)
    with pytest.raises(StoreError):
        both.ch.reader.search("  !!  ")
