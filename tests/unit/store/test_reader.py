"""Queries on the read-only connection: tail, follow, export, hosts, events."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from netconsole.store import SQLiteStore, StoreError, follow, open_reader, open_store
from tests.unit.store.conftest import DB1, WEB1, MakeRecord

T0 = 1_700_000_000.0


@pytest.fixture
def filled(file_store: SQLiteStore, record: MakeRecord) -> SQLiteStore:
    file_store.apply(
        [
            record(0, level=6, hostname=b"web-1", text=b"boot ok"),
            record(1, level=3, sender=DB1, text=b"sda: I/O error"),
            record(2, level=4, hostname=b"web-1", text=b"eth0: link down"),
            record(3, level=7, sender=DB1, text=b"debug noise"),
            record(4, level=None, text=b"basic line without level"),
            record(5, level=0, hostname=b"web-1", text=b"Kernel panic"),
        ]
    )
    return file_store


def _seqs(records: list) -> list[int | None]:  # type: ignore[type-arg]
    return [s.record.seq for s in records]


def test_tail_returns_the_newest_oldest_first(filled: SQLiteStore) -> None:
    assert _seqs(filled.reader.tail(limit=3)) == [3, 4, 5]
    assert _seqs(filled.reader.tail(limit=0)) == []


@pytest.mark.parametrize(
    ("kwargs", "seqs"),
    [
        ({"host": "web-1"}, [0, 2, 4, 5]),
        ({"host": DB1.host}, [1, 3]),
        ({"host": f"[{DB1.host}]:{DB1.port}"}, [1, 3]),
        ({"host": f"{WEB1.host}:{WEB1.port}"}, [0, 2, 4, 5]),
        ({"host": "unknown"}, []),
        ({"level": 4}, [1, 2, 5]),
        ({"level": 0}, [5]),
        ({"since": T0 + 4}, [4, 5]),
        ({"grep": r"^(eth0|sda):"}, [1, 2]),
        ({"grep": "PANIC"}, []),
        ({"after_id": 4}, [4, 5]),
        ({"after_id": 1, "limit": 2}, [1, 2]),
        ({"host": "web-1", "level": 4, "since": T0 + 1}, [2, 5]),
    ],
)
def test_tail_filters(filled: SQLiteStore, kwargs: dict, seqs: list[int]) -> None:  # type: ignore[type-arg]
    assert _seqs(filled.reader.tail(**kwargs)) == seqs


def test_tail_rejects_a_bad_regex(filled: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="bad --grep"):
        filled.reader.tail(grep="(")


def test_follow_yields_what_arrives_after_the_start(
    filled: SQLiteStore, record: MakeRecord
) -> None:
    sleeps: list[float] = []
    later = [[record(6, text=b"new 6")], [record(7, level=3, text=b"new 7")]]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if not later:
            raise KeyboardInterrupt
        filled.apply(later.pop(0))

    seen = []
    with pytest.raises(KeyboardInterrupt):
        for stored in follow(filled.reader, after_id=filled.reader.last_id(), sleep=sleep, level=3):
            seen.append(stored.record.seq)
    assert seen == [7]
    assert sleeps == [0.5, 0.5, 0.5]


def test_export_streams_every_record_in_chunks(filled: SQLiteStore) -> None:
    assert _seqs(list(filled.reader.export(chunk=2))) == [0, 1, 2, 3, 4, 5]
    assert _seqs(list(filled.reader.export(host="web-1", since=T0 + 1, until=T0 + 5))) == [2, 4]
    assert list(filled.reader.export(host="unknown")) == []


def test_hosts_reports_live_and_silent(filled: SQLiteStore) -> None:
    hosts = filled.reader.hosts(now=T0 + 5 + 60, silent_after=61)
    assert [(h.label, h.status, h.records) for h in hosts] == [
        ("2001:db8::7", "silent", 2),
        ("web-1", "live", 4),
    ]
    assert hosts[1].sender == WEB1
    assert all(h.status == "silent" for h in filled.reader.hosts(now=T0 + 3600))


def test_host_that_never_sent_a_record_is_silent(fresh_store: SQLiteStore) -> None:
    fresh_store.save_stream_states({WEB1: {}})
    (host,) = fresh_store.reader.hosts(now=0)
    assert (host.status, host.last_record, host.first_seen) == ("silent", None, None)


def test_events_filter_by_host_kind_since(fresh_store: SQLiteStore) -> None:
    from netconsole.stream.events import Gap, GapKind

    fresh_store.apply(
        [
            Gap(sender=WEB1, at=1.0, kind=GapKind.SEQ, first=1, count=1),
            Gap(sender=DB1, at=2.0, kind=GapKind.MSGID, first=5, count=2),
        ]
    )
    reader = fresh_store.reader
    assert [e.sender for e in reader.events(host=DB1.host)] == [DB1]
    assert [e.at for e in reader.events(since=1.5)] == [2.0]
    assert reader.events(kind="reboot") == []
    assert [e.at for e in reader.events(after_id=1)] == [2.0]
    assert reader.events(host="nobody") == []


def test_reader_sees_each_new_commit(filled: SQLiteStore, record: MakeRecord) -> None:
    reader = filled.reader
    before = reader.last_id()
    filled.apply([record(9)])
    assert reader.last_id() == before + 1


def test_reader_cannot_write(filled: SQLiteStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        filled.reader.conn.execute("DELETE FROM records")


def test_open_reader_without_a_database_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database at"):
        open_reader(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_open_store_creates_directories_and_default_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    store = open_store()
    store.close()
    assert store.path == tmp_path / "xdg" / "netconsole" / "netconsole.db"
    assert store.path.is_file()
    open_reader().close()
