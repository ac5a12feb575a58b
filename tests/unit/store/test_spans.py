"""A host's records through `record_spans` (m009): the writer's spans, the readers'
walk over them, retention and the migration of a database without them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netconsole.store import _retention as retention
from netconsole.store import _schema as schema
from netconsole.store import open_store
from netconsole.store._batch import record_spans
from netconsole.store._spans import host_rows, record_ids
from netconsole.stream.events import Sender
from tests.unit.store.conftest import make_record

SENDERS = [Sender(host=f"192.0.2.{i}", port=6665, local_port=6666) for i in range(1, 5)]
_SELECT = "SELECT r.id, r.seq FROM records r"


def _brute(conn: sqlite3.Connection, host: int, above: int, below: int, newest_first: bool,
           limit: int | None, level: int | None) -> list[tuple[int, int]]:
    sql = _SELECT + " WHERE r.host_id = ? AND r.id > ? AND r.id < ?"
    args: list[object] = [host, above, below]
    if level is not None:
        sql += " AND r.level <= ?"
        args.append(level)
    sql += " ORDER BY r.id DESC" if newest_first else " ORDER BY r.id"
    rows = conn.execute(sql, args).fetchall()
    return rows[:limit] if limit is not None else rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batches=st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=30), min_size=1,
                     max_size=12),
    dropped=st.integers(0, 60),
    queries=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 400), st.integers(0, 400),
                               st.booleans(), st.none() | st.integers(0, 50),
                               st.none() | st.integers(0, 7)), min_size=1, max_size=20),
)
def test_host_rows_are_the_hosts_records_in_order(
    batches: list[list[int]], dropped: int,
    queries: list[tuple[int, int, int, bool, int | None, int | None]],
) -> None:
    """Whatever the batches (a host in runs, interleaved, absent) and however many
    of the oldest records retention deleted, `host_rows` reads exactly what a
    scan of the table by host would, in both directions, with a limit and a
    condition."""
    store = open_store(":memory:")
    try:
        seq = 0
        for batch in batches:
            records = []
            for index in batch:
                records.append(make_record(seq, sender=SENDERS[index], level=seq % 8))
                seq += 1
            store.apply(records)
        retention._delete_chunk(
            store.atomic, "DELETE FROM records WHERE id IN (SELECT id FROM records ORDER BY id"
            " LIMIT ?)", dropped, records=True)
        conn = store._conn
        host_ids = [row[0] for row in conn.execute("SELECT id FROM hosts ORDER BY id")]
        for host_index, a, b, newest_first, limit, level in queries:
            if host_index >= len(host_ids):
                continue
            host = host_ids[host_index]
            above, below = min(a, b), max(a, b) + 1
            where, params = (["r.level <= ?"], [level]) if level is not None else ([], [])
            got = host_rows(conn, _SELECT, host, above=above, below=below, where=where,
                            params=params, newest_first=newest_first, limit=limit)
            assert got == _brute(conn, host, above, below, newest_first, limit, level)
        first = conn.execute("SELECT min(id) FROM records").fetchone()[0]
        # no span outlives all its records
        dead = conn.execute("SELECT count(*) FROM record_spans WHERE last_id < ?",
                            (first if first is not None else 2**63 - 1,)).fetchone()[0]
        assert dead == 0
    finally:
        store.close()


def test_a_batch_writes_one_span_per_host() -> None:
    store = open_store(":memory:")
    try:
        store.apply([make_record(i, sender=SENDERS[i % 3]) for i in range(9)])
        store.apply([make_record(9, sender=SENDERS[1]), make_record(10, sender=SENDERS[1])])
        rows = store._conn.execute("SELECT first_id, last_id, host_id, offsets FROM record_spans"
                                   " ORDER BY last_id").fetchall()
        assert rows == [(1, 7, 1, "[0,3,6]"), (2, 8, 2, "[0,3,6]"), (3, 9, 3, "[0,3,6]"),
                        (10, 11, 2, None)]
        # ids follow arrival across hosts
        hosts = store._conn.execute("SELECT r.host_id FROM records r ORDER BY r.id")
        assert [h for (h,) in hosts] == [1, 2, 3, 1, 2, 3, 1, 2, 3, 2, 2]
    finally:
        store.close()


def test_record_spans_of_a_batch() -> None:
    assert record_spans([], 5) == []
    assert record_spans([7, 7, 7], 5) == [(7, 5, 7, None)]
    assert record_spans([7, 8, 8, 7, 9], 5) == [(7, 6, 8, None), (8, 5, 7, "[0,3]"),
                                                (9, 9, 9, None)]


def test_record_ids_walk_chunks_that_grow_and_stop_at_the_bounds() -> None:
    store = open_store(":memory:")
    try:
        for i in range(40):  # forty batches: forty spans of each host, one record each
            store.apply([make_record(i, sender=SENDERS[0]), make_record(i, sender=SENDERS[1])])
        conn = store._conn
        queries: list[str] = []
        conn.set_trace_callback(lambda sql: queries.append(sql) if "record_spans" in sql
                                else None)
        down = [list(ids) for ids in record_ids(conn, 1, below=70, newest_first=True)]
        assert [i for ids in down for i in ids] == list(range(69, 0, -2))
        assert len(queries) == 1 + 4  # the span holding `below`, then chunks of 4, 8, 16, 32
        up = [i for ids in record_ids(conn, 2, above=10, below=31) for i in ids]
        assert up == list(range(12, 31, 2))
        # a bound inside a span clips it
        store.apply([make_record(50 + i, sender=SENDERS[i % 2]) for i in range(6)])  # 81-86
        inside = [i for ids in record_ids(conn, 1, above=81, below=86, newest_first=True)
                  for i in ids]
        assert inside == [85, 83]
    finally:
        store.close()


def test_emptied_table_leaves_no_span_for_ids_that_begin_again() -> None:
    store = open_store(":memory:")
    try:
        store.apply([make_record(i, sender=SENDERS[i % 2]) for i in range(6)])
        retention._delete_chunk(store.atomic, "DELETE FROM records WHERE id IN"
                                " (SELECT id FROM records ORDER BY id LIMIT ?)", 6, records=True)
        assert store._conn.execute("SELECT count(*) FROM record_spans").fetchone()[0] == 0
        store.apply([make_record(10, sender=SENDERS[1])])  # id 1 again, the other host's
        assert [s.record.seq for s in store.reader.tail(host=SENDERS[0].host)] == []
        assert [s.record.seq for s in store.reader.tail(host=SENDERS[1].host)] == [10]
    finally:
        store.close()


def test_migration_finds_the_spans_of_interleaved_records(tmp_path: Path) -> None:
    path = tmp_path / "v8.db"
    conn = sqlite3.connect(path, isolation_level=None)
    schema.migrate(conn, upto=8)
    for sender in SENDERS[:3]:
        conn.execute("INSERT INTO hosts (address, port, local_port) VALUES (?, ?, ?)",
                     (sender.host, sender.port, sender.local_port))
    hosts = [1, 2, 2, 1, 3, 3, 3, 1, 2, 1]  # as a v8 writer interleaved them
    for seq, host in enumerate(hosts):
        conn.execute("INSERT INTO records (host_id, received, mode, seq, flag, text, complete,"
                     " boot) VALUES (?, ?, 'extended', ?, '-', 'line', 1, 0)",
                     (host, 1.0 + seq, seq))
    conn.close()
    store = open_store(path)
    try:
        conn = store._conn
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'records_host'"
                            ).fetchone()[0] == 0
        got = conn.execute(
            "SELECT first_id, last_id, host_id FROM record_spans ORDER BY last_id").fetchall()
        assert got == [(1, 1, 1), (2, 3, 2), (4, 4, 1), (5, 7, 3), (8, 8, 1), (9, 9, 2),
                       (10, 10, 1)]
        assert [s.record.seq for s in store.reader.tail(host=SENDERS[0].host)] == [0, 3, 7, 9]
        store.apply([make_record(10, sender=SENDERS[0])])
        assert [s.record.seq for s in store.reader.tail(host=SENDERS[0].host, limit=2)] == [9, 10]
    finally:
        store.close()
