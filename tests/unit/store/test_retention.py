"""Retention by age and by size: oldest first, in chunks, index kept whole."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netconsole.store import Retention, SQLiteStore, open_store
from netconsole.stream.events import Gap, GapKind
from tests.unit.store.conftest import WEB1, MakeRecord

T0 = 1_700_000_000.0


def _seqs(store: SQLiteStore) -> list[int | None]:
    return [s.record.seq for s in store.reader.export()]


def test_age_retention_deletes_older_records_and_events_in_chunks(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.retention = Retention(max_age=10.0, chunk=3)
    fresh_store.apply([record(i, received=T0 + i) for i in range(20)])
    fresh_store.apply(
        [
            Gap(sender=WEB1, at=T0 + 1, kind=GapKind.SEQ, first=1, count=1),
            Gap(sender=WEB1, at=T0 + 15, kind=GapKind.SEQ, first=15, count=1),
        ]
    )

    result = fresh_store.enforce_retention(now=T0 + 20)

    assert (result.records, result.events) == (10, 1)
    assert _seqs(fresh_store) == list(range(10, 20))
    assert [e.at for e in fresh_store.reader.events()] == [T0 + 15]
    assert fresh_store.reader.search("message") != []
    fresh_store._conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
    # Host counters are history, not retention's business.
    assert fresh_store.reader.hosts(now=T0)[0].records == 20


def test_age_retention_with_nothing_old_deletes_nothing(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.retention = Retention(max_age=3600.0)
    fresh_store.apply([record(i) for i in range(5)])
    assert fresh_store.enforce_retention(now=T0 + 10).records == 0
    assert len(_seqs(fresh_store)) == 5


def test_no_policy_keeps_everything(fresh_store: SQLiteStore, record: MakeRecord) -> None:
    fresh_store.apply([record(i) for i in range(5)])
    assert fresh_store.enforce_retention(now=T0 + 1e9).records == 0


def test_size_retention_deletes_oldest_until_under_the_limit_and_shrinks_the_file(
    db_path: Path, record: MakeRecord
) -> None:
    store = open_store(db_path)
    text = b"x" * 50 + b" filler words for the index " * 8
    for start in range(0, 4000, 500):
        store.apply([record(i, text=text + b"%d" % i) for i in range(start, start + 500)])
    store.close()
    full = os.path.getsize(db_path)
    limit = full // 2

    store = open_store(db_path, retention=Retention(max_bytes=limit, chunk=400))
    result = store.enforce_retention(now=T0)
    kept = _seqs(store)
    assert store.used_bytes() <= limit
    store._conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
    store.close()

    assert result.records > 0
    assert kept == list(range(4000 - len(kept), 4000))  # the newest, without holes
    assert len(kept) > 1000  # not everything: deleted towards the limit, not past it
    assert os.path.getsize(db_path) <= limit


def test_size_retention_under_the_limit_deletes_nothing(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.retention = Retention(max_bytes=10**9)
    fresh_store.apply([record(i) for i in range(5)])
    assert fresh_store.enforce_retention(now=T0).records == 0


def test_size_retention_then_drops_events_older_than_the_oldest_record(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.apply([Gap(sender=WEB1, at=T0 - 5, kind=GapKind.SEQ, first=0, count=1)])
    fresh_store.apply([record(i, text=b"y" * 400) for i in range(200)])
    fresh_store.retention = Retention(max_bytes=fresh_store.used_bytes() // 2)

    result = fresh_store.enforce_retention(now=T0)

    assert result.records > 0
    assert result.events == 1


@pytest.mark.parametrize("bad", [{"max_age": 0}, {"max_bytes": -1}, {"chunk": 0}])
def test_retention_rejects_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Retention(**bad)  # type: ignore[arg-type]


def test_retention_stops_at_its_budget_and_says_there_is_more(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.retention = Retention(max_age=10.0, chunk=4, budget=10)
    fresh_store.apply([record(i, received=T0 + i) for i in range(30)])

    first = fresh_store.enforce_retention(now=T0 + 30)
    second = fresh_store.enforce_retention(now=T0 + 30)
    third = fresh_store.enforce_retention(now=T0 + 30)

    assert (first.records, first.more) == (10, True)
    assert (second.records, second.more) == (10, True)
    assert (third.records, third.more) == (0, False)
    assert _seqs(fresh_store) == list(range(20, 30))
