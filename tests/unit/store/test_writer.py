"""The batch writer: records, host counters, events, atomicity, stream states."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from netconsole.store import RecordQueries, SQLiteStore, Store, open_store
from netconsole.stream.events import (
    Duplicate,
    Gap,
    GapKind,
    Incomplete,
    Reboot,
    RebootReason,
    Rejected,
    Sender,
)
from netconsole.wire import RejectReason
from tests.unit.store.conftest import DB1, WEB1, MakeRecord


def _reboot(at: float, sender: Sender = WEB1) -> Reboot:
    return Reboot(
        sender=sender,
        at=at,
        reason=RebootReason.SEQ_BACK,
        previous_seq=9,
        seq=0,
        previous_release="6.1.0",
        release="6.12.0",
    )


def test_apply_counts_every_event_kind_on_its_host(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    reason = next(iter(RejectReason))
    fresh_store.apply(
        [
            record(1, hostname=b"web-1", release="6.1.0"),
            Gap(sender=WEB1, at=2.0, kind=GapKind.SEQ, first=2, count=3),
            Gap(sender=WEB1, at=2.0, kind=GapKind.MSGID, first=2, count=2),
            Gap(sender=WEB1, at=2.0, kind=GapKind.DROPPED, first=None, count=7),
            Duplicate(sender=WEB1, at=3.0, seq=1),
            Incomplete(sender=WEB1, at=4.0, seq=5, total=3000, missing=((1000, 2000),)),
            Rejected(sender=WEB1, at=4.5, reason=reason, detail="x", size=3),
            record(5, complete=False, missing=((1000, 2000),)),
            record(0, sender=DB1),
        ]
    )
    fresh_store.apply([_reboot(5.0), record(0, received=1_700_000_100.0, release="6.12.0")])

    hosts = {h.address: h for h in fresh_store.reader.hosts(now=1_700_000_100.0)}
    web = hosts[WEB1.host]
    assert (web.records, web.lost_seq, web.lost_msgid, web.dropped) == (3, 3, 2, 7)
    assert (web.duplicates, web.incomplete, web.rejected, web.reboots) == (1, 1, 1, 1)
    assert web.name == "web-1"
    assert web.release == "6.12.0"
    assert web.first_seen == 2.0
    assert web.last_record == 1_700_000_100.0
    assert hosts[DB1.host].records == 1
    assert hosts[DB1.host].name is None


def test_apply_numbers_boots_across_reboots_and_batches(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.apply([record(8), _reboot(10.0), record(0)])
    fresh_store.apply([record(1), _reboot(11.0)])
    fresh_store.apply([record(0)])

    assert [s.boot for s in fresh_store.reader.tail()] == [0, 1, 1, 2]


def test_apply_records_gaps_reboots_and_incomplete_as_events(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.apply(
        [
            Gap(sender=WEB1, at=2.0, kind=GapKind.SEQ, first=2, count=3),
            _reboot(3.0),
            Incomplete(sender=WEB1, at=4.0, seq=5, total=3000, missing=((1000, 2000),)),
            Duplicate(sender=WEB1, at=5.0, seq=1),
        ]
    )

    events = fresh_store.reader.events()
    assert [(e.kind, e.at) for e in events] == [("gap", 2.0), ("reboot", 3.0), ("incomplete", 4.0)]
    assert events[0].detail == {"gap": "seq", "first": 2, "count": 3}
    assert events[1].detail["reason"] == "seq_back"
    assert events[2].detail["missing"] == [[1000, 2000]]
    assert fresh_store.reader.events(kind="reboot")[0].id == events[1].id


def test_apply_is_all_or_nothing(fresh_store: SQLiteStore, record: MakeRecord) -> None:
    unserialisable = {WEB1: {"buffer": b"bytes are not JSON"}}

    with pytest.raises(TypeError):
        fresh_store.apply([record(1), record(2, sender=DB1), _reboot(3.0)], unserialisable)

    assert fresh_store.reader.tail() == []
    assert fresh_store.reader.hosts(now=0) == []
    # The host cache did not keep ids or boots from the rolled-back batch.
    fresh_store.apply([record(3), record(4, sender=DB1)])
    assert [(s.record.seq, s.boot) for s in fresh_store.reader.tail()] == [(3, 0), (4, 0)]
    assert sum(h.records for h in fresh_store.reader.hosts(now=0)) == 2


def test_apply_of_nothing_writes_nothing(fresh_store: SQLiteStore) -> None:
    fresh_store.apply([])
    assert fresh_store.reader.hosts(now=0) == []


def test_stream_states_round_trip_across_reopen(db_path: Path, record: MakeRecord) -> None:
    state = {"last_seq": 41, "window": [39, 40, 41], "release": "6.12.0", "msgid": None}
    store = open_store(db_path)
    store.apply([record(41)], states={WEB1: state})
    store.save_stream_states({DB1: {"last_seq": 7}})
    store.close()

    reopened = open_store(db_path)
    assert reopened.load_stream_states() == {WEB1: state, DB1: {"last_seq": 7}}
    reopened.close()


def test_stream_state_saved_with_a_batch_is_replaced_by_the_next(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.apply([record(1)], states={WEB1: {"last_seq": 1}})
    fresh_store.apply([record(2)], states={WEB1: {"last_seq": 2}})

    assert fresh_store.load_stream_states() == {WEB1: {"last_seq": 2}}


def test_resume_stream_gives_the_state_and_the_records_stored_after_it(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.apply([record(1), record(2)], states={WEB1: {"last_seq": 2}})
    fresh_store.apply([record(3), record(0, sender=DB1), record(4)])

    state, since = fresh_store.resume_stream(WEB1)
    assert state == {"last_seq": 2}
    assert [r.seq for r in since] == [3, 4]
    assert fresh_store.known_senders() == {WEB1, DB1}
    # a host with no saved state: its whole current boot is replayed
    assert fresh_store.resume_stream(DB1)[0] == {}
    assert [r.seq for r in fresh_store.resume_stream(DB1)[1]] == [0]
    assert fresh_store.resume_stream(Sender(host="10.9.9.9", port=6665, local_port=6666)) == (
        {}, [])


def test_resume_stream_drops_a_state_from_before_a_reboot(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.apply([record(8), record(9)], states={WEB1: {"last_seq": 9}})
    fresh_store.apply([_reboot(5.0), record(0), record(1)])

    state, since = fresh_store.resume_stream(WEB1)
    assert state == {}
    assert [r.seq for r in since] == [0, 1]


def test_resume_stream_takes_a_state_saved_with_every_batch_as_exact(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    """Older netconsole saved the state with every batch, without marks."""
    fresh_store.apply([record(1), record(2)])
    fresh_store._conn.execute("UPDATE hosts SET stream_state = '{\"last_seq\": 2}'")
    assert fresh_store.resume_stream(WEB1) == ({"last_seq": 2}, [])


def test_atomic_nests_as_savepoints(fresh_store: SQLiteStore) -> None:
    with fresh_store.atomic() as conn:
        conn.execute("INSERT INTO hosts (address, port, local_port) VALUES ('a', 1, 1)")
        with pytest.raises(ValueError), fresh_store.atomic() as inner:
            inner.execute("INSERT INTO hosts (address, port, local_port) VALUES ('b', 1, 1)")
            raise ValueError
    assert [h.address for h in fresh_store.reader.hosts(now=0)] == ["a"]


def test_file_store_uses_wal_and_checkpoints_on_close(db_path: Path, record: MakeRecord) -> None:
    store = open_store(db_path)
    store.apply([record(1)])
    assert Path(f"{db_path}-wal").stat().st_size > 0
    store.close()

    assert not Path(f"{db_path}-wal").exists() or Path(f"{db_path}-wal").stat().st_size == 0
    conn = sqlite3.connect(f"file:{db_path}?mode=ro&immutable=1", uri=True)
    assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 1


def test_durability_power_selects_synchronous_full(db_path: Path) -> None:
    store = open_store(db_path, durability="power")
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    store.close()
    store = open_store(db_path)
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    store.close()


def test_sqlite_store_satisfies_the_store_protocol(fresh_store: SQLiteStore) -> None:
    # Checked by mypy (tests are type-checked too): a mismatch fails there.
    store: Store = fresh_store
    queries: RecordQueries = store.reader
    assert queries.last_id() == 0


# -- numbers and faults the store must survive ----------------------------------------

INT64_MAX = (1 << 63) - 1


def test_loss_sums_saturate_instead_of_overflowing(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    """A seq jump of 2**63 - 1, twice in a batch and again in the next: the
    batch commits, and the host counts 'at least this much' as an integer."""
    def jumps() -> list[Gap]:
        return [Gap(sender=WEB1, at=2.0, kind=kind, first=1, count=INT64_MAX)
                for kind in (GapKind.SEQ, GapKind.SEQ, GapKind.MSGID, GapKind.MSGID)]

    fresh_store.apply([record(1), *jumps(),
                       Gap(sender=WEB1, at=2.0, kind=GapKind.DROPPED, first=None,
                           count=9_999_999_999_999_999_999)])
    fresh_store.apply([record(2), *jumps()])

    [web] = fresh_store.reader.hosts(now=1_700_000_100.0)
    assert web.records == 2
    for value in (web.lost_seq, web.lost_msgid, web.dropped):
        assert value == INT64_MAX and type(value) is int


def test_a_row_sqlite_cannot_hold_fails_its_batch_whole(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    with pytest.raises(OverflowError):
        fresh_store.apply([record(1), record(2**64)])
    fresh_store.apply([record(3)])
    assert [s.record.seq for s in fresh_store.reader.export()] == [3]


def test_a_full_store_reports_full_not_a_failed_rollback(
    file_store: SQLiteStore, record: MakeRecord
) -> None:
    """SQLite rolls a transaction back itself on SQLITE_FULL; the error the
    caller sees must still say the store is full (the collector holds the
    records then, rather than judging the data bad)."""
    file_store.apply([record(0)])
    conn = file_store._conn
    conn.execute(f"PRAGMA max_page_count = {conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.OperationalError) as exc:
        file_store.apply([record(i, text=b"x" * 3000) for i in range(1, 300)])
    assert exc.value.sqlite_errorcode == sqlite3.SQLITE_FULL
    conn.execute("PRAGMA max_page_count = 1073741823")
    file_store.apply([record(300)])
    assert [s.record.seq for s in file_store.reader.export()] == [0, 300]
