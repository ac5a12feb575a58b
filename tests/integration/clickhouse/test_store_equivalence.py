"""The ClickHouse store answers every reader query as the SQLite store does.

The same batches -- real kernel captures on many hosts, their incidents and
silences, express-lane rows, and every kind of accounting event -- go into a
SQLite store and into a ClickHouse store over two real servers (two shards of
one cluster, a Distributed table). Then each reader method's results are
compared field by field. Ids differ by design (SQLite counts, ClickHouse
hashes), so they are compared through the mapping the exports establish.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from netconsole.store import (
    LaneHostCount,
    PrebuiltRecords,
    SQLiteReader,
    SQLiteStore,
    StoredRecord,
    open_reader,
    open_store,
)
from netconsole.store._codec import prebuilt_row
from netconsole.store.clickhouse import ClickHouseReader, ClickHouseStore, migrate, parse_url
from netconsole.store.clickhouse._schema import modernize
from netconsole.stream.events import Record, Sender
from netconsole.wire import Mode
from tests.integration.clickhouse.chdb_client import ChdbClient, chdb_session
from tests.integration.clickhouse.fleet import fleet_batches, odd_events
from tests.integration.clickhouse.server import Cluster

EXPRESS = Sender(host="10.8.8.8", port=6665, local_port=6666)


def _express(store: SQLiteStore | ClickHouseStore, at: float) -> list[Any]:
    """Records as the C express lane hands them over: rows built with the host id
    and boot `reserve_host` gave, then the hosts' counts."""
    host = store.reserve_host(EXPRESS)
    assert host is not None
    records = [Record(sender=EXPRESS, mode=Mode.EXTENDED, received=at + i * 0.001,
                      text=b"express %d" % i, facility=0, level=6, seq=i, ts_usec=i,
                      release="6.1.0", fields=((b"hostname", b"lane-host"),))
               for i in range(50)]
    rows = [prebuilt_row(r, *host) for r in records]
    assert all(rows)
    return [PrebuiltRecords([r for r in rows if r is not None]),
            PrebuiltRecords([], [LaneHostCount(sender=EXPRESS, records=50, first_received=at,
                                               last_received=at + 0.049, name=b"lane-host",
                                               release="6.1.0")])]


def _chdb_store(path: Path) -> ClickHouseStore:
    """The store on embedded chDB (current ClickHouse), with `modern=1`'s extras."""
    if chdb_session is None:
        pytest.skip("chDB is not installed (pip install chdb)")
    url = parse_url("clickhouse://chdb.invalid/fleet?modern=1")
    client = ChdbClient(url, path)
    migrate(client, url)
    modernize(client, url, retain=None)
    return ClickHouseStore(client, url)


@pytest.fixture(scope="module", params=["clickhouse-18.16", "chdb"])
def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[SQLiteReader, ClickHouseReader, float, SQLiteStore, ClickHouseStore]:
    """The fleet in SQLite and in ClickHouse: two 18.16 servers as the shards of
    a cluster, or (if installed) embedded chDB, today's engine."""
    tmp = tmp_path_factory.mktemp("equivalence")
    db = tmp / "fleet.db"
    if request.param == "chdb":
        ch = _chdb_store(tmp / "chdb")
    else:
        clickhouse: Cluster = request.getfixturevalue("clickhouse")
        opened = open_store(clickhouse.url())
        assert isinstance(opened, ClickHouseStore)
        ch = opened
    sqlite = open_store(db)
    batches = fleet_batches(copies=2)
    end = max(float(getattr(e, "received", getattr(e, "at", 0))) for b in batches for e in b)
    for store in (sqlite, ch):
        for batch in batches:
            store.apply(batch)
        store.apply(odd_events(end + 10), states={
            Sender(host="10.9.9.9", port=6665, local_port=6666): {"answer": 42}})
        store.apply(_express(store, end + 20))
    reader = open_reader(db)
    assert isinstance(reader, SQLiteReader)
    return reader, ch.reader, end + 30, sqlite, ch


def _ids(sq: list[StoredRecord], ch: list[StoredRecord]) -> dict[int, int]:
    assert [(s.record, s.name, s.boot) for s in sq] == [(c.record, c.name, c.boot) for c in ch]
    return {s.id: c.id for s, c in zip(sq, ch, strict=True)}


@pytest.fixture(scope="module")
def record_ids(stores: Any) -> dict[int, int]:
    sq, ch, *_ = stores
    return _ids(list(sq.export(chunk=777)), list(ch.export(chunk=777)))


def _same(sq: list[StoredRecord], ch: list[StoredRecord], ids: dict[int, int]) -> None:
    assert len(sq) == len(ch)
    assert [(ids[s.id], s.record, s.name, s.boot) for s in sq] == [
        (c.id, c.record, c.name, c.boot) for c in ch]


def test_export_is_every_record_exactly(stores: Any, record_ids: dict[int, int]) -> None:
    sq, ch, *_ = stores
    assert len(record_ids) == len(set(record_ids.values())) > 13_000
    host = "10.1.2.15"
    first = list(ch.export(host=host))
    assert first and all(s.record.sender.host == host for s in first)
    _same(list(sq.export(host=host)), first, record_ids)
    middle = first[len(first) // 2]
    since = middle.record.received
    _same(list(sq.export(since=since, until=since + 1)),
          list(ch.export(since=since, until=since + 1)), record_ids)
    resumed = list(ch.export(after_id=middle.id, chunk=100))
    sq_id = {v: k for k, v in record_ids.items()}[middle.id]
    _same(list(sq.export(after_id=sq_id, chunk=100)), resumed, record_ids)


@pytest.mark.parametrize("query", [
    {"limit": 50},
    {"limit": 30, "host": "10.0.2.15"},
    {"limit": 30, "host": "odd-host"},
    {"limit": 30, "host": "lane-host"},
    {"limit": 40, "level": 3},
    {"limit": 25, "grep": r"Call Trace|netconsole: network logging"},
    {"limit": 10, "grep": r"not utf-8"},
    {"limit": 500, "host": "10.0.2.15:6665"},
], ids=lambda q: ",".join(f"{k}={v}" for k, v in q.items()))
def test_tail(stores: Any, record_ids: dict[int, int], query: dict[str, Any]) -> None:
    sq, ch, *_ = stores
    got = ch.tail(**query)
    assert got
    _same(sq.tail(**query), got, record_ids)


@pytest.mark.parametrize("query", [
    ("netconsole",), ("Call Trace",), ("sysrq:",), ("Modules", "linked"), ("express",),
    ("labtrig",), ("RIP:", "0010:do_oops"),
])
def test_search(stores: Any, record_ids: dict[int, int], query: tuple[str, ...]) -> None:
    sq, ch, *_ = stores
    words = " ".join(query)
    got = ch.search(words, limit=40)
    assert got
    _same(sq.search(words, limit=40), got, record_ids)
    _same(sq.search(words, host="10.1.4.15", limit=10),
          ch.search(words, host="10.1.4.15", limit=10), record_ids)


def test_search_field_values(stores: Any, record_ids: dict[int, int]) -> None:
    sq, ch, *_ = stores
    for words in ("t1", "userdata", "lane"):  # userdata values and a hostname= value
        got = ch.search(words, limit=30)
        assert got
        _same(sq.search(words, limit=30), got, record_ids)


def test_hosts(stores: Any) -> None:
    sq, ch, now, *_ = stores
    a = sq.hosts(now=now, silent_after=3600)
    b = ch.hosts(now=now, silent_after=3600)
    assert len(a) == len(b) > 2 * 9  # and `two`, `configfs`, `sysdata` have two streams
    assert [dataclasses.replace(h, id=0) for h in a] == [dataclasses.replace(h, id=0) for h in b]
    odd = next(h for h in b if h.name == "odd-host")
    assert (odd.lost_seq, odd.lost_msgid, odd.dropped, odd.duplicates, odd.rejected,
            odd.shed, odd.reboots, odd.boot) == ((1 << 63) - 1, 2, 7, 2, 1, 4, 1, 1)


def test_events(stores: Any) -> None:
    sq, ch, *_ = stores

    def strip(events: list[Any]) -> list[Any]:
        return sorted((e.sender.host, e.sender.port, e.sender.local_port, e.name, e.at,
                       e.kind, repr(sorted(e.detail.items()))) for e in events)

    for query in ({}, {"kind": "gap"}, {"kind": "silence"}, {"host": "odd-host"},
                  {"kind": "reboot", "host": "10.9.9.9"}):
        a, b = sq.events(limit=10_000, **query), ch.events(limit=10_000, **query)
        assert a and strip(a) == strip(b), query
    every = ch.events(limit=10_000)
    after = ch.events(limit=10_000, after_id=every[4].id)
    assert after == every[5:]


def test_incidents(stores: Any, record_ids: dict[int, int]) -> None:
    sq, ch, *_ = stores
    a, b = sq.incidents(limit=1000), ch.incidents(limit=1000)
    assert len(a) == len(b) >= 6
    ids = {x.id: y.id for x, y in zip(a, b, strict=True)}
    for x, y in zip(a, b, strict=True):
        assert dataclasses.replace(
            x, id=ids[x.id],
            first_record_id=None if x.first_record_id is None else record_ids[x.first_record_id],
            last_record_id=None if x.last_record_id is None else record_ids[x.last_record_id],
        ) == y
        assert ch.incident(y.id) == y
        _same(sq.incident_records(x.id), ch.incident_records(y.id), record_ids)
    for kind in ("oops", "panic", "warning"):
        assert [ids[i.id] for i in sq.incidents(kind=kind)] == [
            i.id for i in ch.incidents(kind=kind)]
    assert [ids[i.id] for i in sq.incidents(host="10.0.2.15", limit=3)] == [
        i.id for i in ch.incidents(host="10.0.2.15", limit=3)]
    assert ch.incident(12345) is None


def test_incidents_top(stores: Any) -> None:
    sq, ch, *_ = stores
    a, b = sq.incidents_top(limit=50), ch.incidents_top(limit=50)
    assert a
    ids = {x.id: y.id for x, y in zip(sq.incidents(limit=1000), ch.incidents(limit=1000),
                                         strict=True)}
    assert [dataclasses.replace(g, latest_id=ids[g.latest_id],
                                host_names=tuple(sorted(g.host_names))) for g in a] == b


def test_seen_nonce(stores: Any) -> None:
    sq, ch, *_ = stores
    for nonce in ("netconsole", "labtrig", "express", "no-such-word-here", "etconsol",
                  "odd one", "!!!"):
        assert sq.seen_nonce(nonce) == ch.seen_nonce(nonce), nonce


def test_stream_states_and_resume(stores: Any) -> None:
    *_, sqlite, ch = stores
    odd = Sender(host="10.9.9.9", port=6665, local_port=6666)
    assert ch.load_stream_states()[odd] == sqlite.load_stream_states()[odd] == {"answer": 42}
    # The state was saved before the host's reboot: the whole new boot is replayed.
    assert ch.resume_stream(odd) == sqlite.resume_stream(odd)
    host = Sender(host="10.1.2.15", port=6665, local_port=6666)
    assert ch.resume_stream(host) == sqlite.resume_stream(host)
    assert ch.known_senders() == sqlite.known_senders()


def test_follow_sees_records_stored_after(clickhouse: Cluster) -> None:
    store = open_store(clickhouse.url())
    assert isinstance(store, ClickHouseStore)
    reader = store.reader
    s = Sender(host="10.7.7.7", port=6665, local_port=6666)

    def records(at: float, n: int) -> list[Record]:
        return [Record(sender=s, mode=Mode.EXTENDED, received=at + i, text=b"at %d" % i,
                       facility=0, level=6, seq=int(at) + i, ts_usec=i) for i in range(n)]

    now = time.time()
    store.apply(records(now, 3))
    start = reader.last_id()
    assert reader.tail(after_id=start) == []
    late = records(now - 600, 3)  # received ten minutes ago (a spool), stored now
    store.apply(late)
    got = reader.tail(after_id=start)
    assert [g.record for g in got] == late
    assert reader.tail(after_id=got[-1].id) == []
    more = records(now + 10, 2500)
    store.apply(more)
    first = reader.tail(after_id=got[-1].id, limit=1000)
    second = reader.tail(after_id=first[-1].id, limit=1000)
    third = reader.tail(after_id=second[-1].id, limit=1000)
    assert [g.record for g in first + second + third] == more
    assert reader.tail(after_id=third[-1].id, limit=1000) == []
