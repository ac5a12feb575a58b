"""BatchWriter: bad rows set aside, held records through a store that cannot
write, the spool, and its replay. Real SQLite throughout; a full store is a
real SQLITE_FULL (`PRAGMA max_page_count`), a bad row a number SQLite refuses."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconsole.collector._metrics import Counters
from netconsole.collector._spool import (
    Backlog,
    BatchWriter,
    Item,
    about_the_store,
    quarantine_for,
    replay_spool,
    spool_dir_for,
    spool_files,
)
from netconsole.store import LaneHostCount, PrebuiltRecords, PrebuiltRow, SQLiteStore, open_store
from netconsole.stream import Gap, GapKind, Record
from tests.unit.store.conftest import DB1, WEB1, make_record


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "nc.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    s = open_store(db)
    yield s
    s.close()


def stored_seqs(store: SQLiteStore) -> list[int | None]:
    return [s.record.seq for s in store.reader.export()]


def fill_up(store: SQLiteStore) -> None:
    """The store's file may not grow: every write needing a page fails SQLITE_FULL."""
    conn = store._conn
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")


def make_room(store: SQLiteStore) -> None:
    store._conn.execute("PRAGMA max_page_count = 1073741823")


def records(first: int, n: int, **kw: object) -> list[Item]:
    return [make_record(seq, text=b"record %d " % seq + b"x" * 400, **kw)  # type: ignore[arg-type]
            for seq in range(first, first + n)]


def writer(store: SQLiteStore, db: Path, clock: Clock | None = None,
           said: list[str] | None = None, **kw: int) -> BatchWriter:
    return BatchWriter(store, Counters(), db=db, clock=clock or Clock(),
                       say=(said if said is not None else []).append, **kw)


# -- a store failure never blocks other records -------------------------------------------


def test_bad_rows_are_set_aside_and_the_rest_commits_in_order(
        store: SQLiteStore, db: Path) -> None:
    said: list[str] = []
    w = writer(store, db, said=said)
    batch = records(0, 1000)
    for bad in (3, 500, 998):  # seq 2**64: SQLite cannot bind it
        batch[bad] = make_record(2**64, text=b"bad %d" % bad)
    batch.append(make_record(2**64, sender=DB1))
    out = w.write(batch, {WEB1: {"n": 1}})

    assert stored_seqs(store) == [s for s in range(1000) if s not in (3, 500, 998)]
    assert [r for piece in out.committed for r in piece] == [
        r for r in batch if isinstance(r, Record) and r.seq != 2**64]
    assert out.states_saved and store.load_stream_states() == {WEB1: {"n": 1}}
    assert w.counters.quarantined == 4 and not w.holding
    # Logged once per sender, with its address; kept beside the database.
    assert len(said) == 2
    assert WEB1.host in said[0] and "OverflowError" in said[0] and DB1.host in said[1]
    kept = [json.loads(line) for line in quarantine_for(db).read_text().splitlines()]
    assert [k["event"]["text"] for k in kept[:3]] == ["bad 3", "bad 500", "bad 998"]


def test_a_bad_express_row_is_found_among_its_rows(store: SQLiteStore, db: Path) -> None:
    w = writer(store, db)
    store.apply(records(0, 1))
    host_id, boot = store.committed_host(WEB1) or (0, 0)
    row = PrebuiltRow(host_id, 1.0, "extended", "", 0, 6, 1, 1, "-", "", "text", "", -1, -1, "",
                      boot)
    rows = [row._replace(seq=seq) for seq in range(1, 101)]
    rows[40] = row._replace(seq=2**64)
    counted = LaneHostCount(sender=WEB1, records=100, first_received=1.0, last_received=1.0,
                            name=None, release=None)
    w.write([PrebuiltRecords(rows, [counted])])
    assert stored_seqs(store) == [0, *range(1, 41), *range(42, 101)]
    assert w.counters.quarantined == 1
    [kept] = [json.loads(line) for line in quarantine_for(db).read_text().splitlines()]
    assert kept["event"] == {"rows": [list(rows[40])], "hosts": []}  # the counts went first


def test_the_errors_are_told_apart(store: SQLiteStore, db: Path) -> None:
    with pytest.raises(OverflowError) as overflow:
        store.apply(records(2**64, 1))
    fill_up(store)
    with pytest.raises(sqlite3.OperationalError) as full:
        store.apply(records(0, 200))
    assert about_the_store(full.value)
    assert not about_the_store(overflow.value)
    assert not about_the_store(sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert about_the_store(OSError(28, "No space left on device"))


# -- faults lose nothing silently ---------------------------------------------------------


def test_a_full_store_holds_records_and_stores_them_once_space_is_back(
        store: SQLiteStore, db: Path) -> None:
    clock, said = Clock(), []
    w = writer(store, db, clock, said, memory_records=300, piece=100)
    w.write(records(0, 10))
    fill_up(store)
    committed: list[Item] = []  # what fits in the pages' last free bytes
    for first in range(10, 1010, 50):  # 20 flushes while full
        out = w.write(records(first, 50), {WEB1: {"at": first}})
        committed += [r for piece in out.committed for r in piece]
        assert not out.states_saved
        clock.now += 1
    assert w.holding and w.counters.held_records == 1000 - len(committed) > 700
    assert w.backlog.in_memory <= 300  # bounded: the rest is in the spool
    assert w.counters.spooled_records >= 700 and spool_files(db)
    assert w.counters.store_errors >= 1 and w.counters.lost_records == 0
    assert sum("cannot write" in line for line in said) == 1  # said once per outage

    make_room(store)
    clock.now += 10  # past the backoff
    saved = False
    for _ in range(100):  # flushes, each a bounded drain, until nothing is held
        out = w.write([], {WEB1: {"at": "end"}})
        committed += [r for piece in out.committed for r in piece]
        saved = out.states_saved
        if not w.holding:
            break
    assert stored_seqs(store) == list(range(1010))  # oldest first, nothing twice
    assert len(committed) == 1000 and saved
    assert store.load_stream_states() == {WEB1: {"at": "end"}}
    assert w.counters.held_records == w.counters.spooled_records == 0
    assert not spool_files(db)
    assert "writes again" in said[-1]


def test_a_little_space_back_is_used_at_once(store: SQLiteStore, db: Path) -> None:
    """Held records go in shrinking pieces while the store stays full, so the
    first pages freed take what fits rather than waiting for room for all."""
    clock = Clock()
    w = writer(store, db, clock, piece=1000)
    w.write(records(0, 1))
    fill_up(store)
    w.write(records(1, 1000))
    for _ in range(12):  # the pieces halve at each failed retry
        clock.now += 10
        w.write([])
    conn = store._conn
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0] + 8}")
    for _ in range(30):
        clock.now += 10
        w.write([])
    assert 1 < len(stored_seqs(store)) < 1001  # some fitted, in order
    assert stored_seqs(store) == list(range(len(stored_seqs(store))))
    make_room(store)
    clock.now += 10
    while w.holding:
        w.write([])
    assert stored_seqs(store) == list(range(1001))


def test_shutdown_spools_what_is_held_and_the_next_start_stores_it(
        store: SQLiteStore, db: Path) -> None:
    w = writer(store, db)
    w.write(records(0, 5))
    fill_up(store)
    w.write([*records(5, 20), Gap(sender=WEB1, at=1.0, kind=GapKind.SEQ, first=30, count=2)],
            final=True)
    kept = w.persist()
    assert (kept.spooled, kept.lost, kept.spool) == (20, 0, spool_dir_for(db))
    make_room(store)

    done = replay_spool(store, db)
    assert (done.records, done.left, done.error) == (20, 0, None)
    assert stored_seqs(store) == list(range(25))
    [web] = store.reader.hosts(now=2e9)
    assert web.lost_seq == 2  # the events came back too, not only the records
    assert not spool_files(db)


def test_replay_keeps_what_the_store_still_cannot_take(store: SQLiteStore, db: Path) -> None:
    w = writer(store, db)
    fill_up(store)
    w.write(records(0, 30), final=True)
    w.persist()
    done = replay_spool(store, db)
    assert (done.records, done.left) == (0, 30) and done.error is not None
    make_room(store)
    assert replay_spool(store, db).records == 30
    assert stored_seqs(store) == list(range(30))


def test_what_neither_store_nor_spool_takes_is_counted_lost(
        store: SQLiteStore, db: Path) -> None:
    spool_dir_for(db).write_text("a file where the spool directory should be")
    said: list[str] = []
    w = writer(store, db, said=said, memory_records=100, piece=50)
    fill_up(store)
    for first in range(0, 300, 50):
        w.write(records(first, 50))
    # Bounded: the oldest went; the newest, which tell what happened last, stay.
    assert w.counters.lost_records == 200 and w.counters.held_records == 100
    assert any("lost 50 records" in line for line in said)
    kept = w.persist()
    assert kept.lost == 100 and kept.spooled == 0 and kept.error is not None
    assert w.counters.lost_records == 300


def test_the_backlog_gives_pieces_back_oldest_first_wherever_they_are(tmp_path: Path) -> None:
    backlog = Backlog(tmp_path / "spool", memory_records=10, piece=5)
    for first in range(0, 40, 4):
        backlog.add(records(first, 4))
    assert backlog.records == 40 and backlog.in_memory <= 10 and backlog.spooled >= 30
    seen: list[int | None] = []
    key, items = backlog.take()
    backlog.put_back(key, items[2:])  # two stored, the rest held again, first
    seen += [r.seq for r in items[:2] if isinstance(r, Record)]
    while backlog:
        _, items = backlog.take()
        seen += [r.seq for r in items if isinstance(r, Record)]
    assert seen == list(range(40)) and backlog.records == 0
    assert not list((tmp_path / "spool").iterdir())


def test_a_spool_of_the_version_before_typed_rows_is_stored(store: SQLiteStore, db: Path) -> None:
    """Spooled before an upgrade (plain-tuple rows and host counts), replayed after it."""
    import pickle

    store.apply(records(0, 1))
    host_id, boot = store.committed_host(WEB1) or (0, 0)
    old_rows = [(host_id, 1.0, "extended", "", 0, 6, seq, seq, "-", "", f"old {seq}", "",
                 -1, -1, "", boot) for seq in range(1, 11)]
    old = PrebuiltRecords(old_rows, [])  # type: ignore[arg-type]
    old.hosts.append((WEB1, 10, 1.0, 1.0, None, None))  # type: ignore[arg-type]
    spool = spool_dir_for(db)
    spool.mkdir()
    (spool / "000001-10.spool").write_bytes(pickle.dumps([old]))
    done = replay_spool(store, db)
    assert (done.records, done.quarantined, done.error) == (10, 0, None)
    assert stored_seqs(store) == list(range(0, 11))
