"""Full-text search: triggers keep the external-content index current; queries are safe."""

from __future__ import annotations

import pytest

from netconsole.store import SQLiteStore, StoreError, fts_query
from tests.unit.store.conftest import DB1, WEB1, MakeRecord

TEXTS = [
    b"e1000e 0000:00:19.0 eth0: NIC Link is Down",
    b"INFO: rcu_sched self-detected stall on CPU",
    b"blk_update_request: I/O error, dev sda, sector 2048 op 0x0:(READ) -EIO",
    b'audit: apparmor="DENIED" operation="open"',
]


def _ids(store: SQLiteStore, query: str, **kwargs: object) -> list[int]:
    return [s.id for s in store.reader.search(query, **kwargs)]  # type: ignore[arg-type]


def _integrity(store: SQLiteStore) -> None:
    store._conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")


@pytest.fixture
def searchable(fresh_store: SQLiteStore, record: MakeRecord) -> SQLiteStore:
    fresh_store.apply([record(i, text=text) for i, text in enumerate(TEXTS)])
    return fresh_store


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("link down", [1]),
        ("LINK", [1]),
        ("eth0:", [1]),
        ("rcu_sched", [2]),
        ("-EIO", [3]),
        ('apparmor="DENIED"', [4]),
        ("AND", []),
        ("error OR link", []),
        ("0x0:(READ)", [3]),
    ],
)
def test_search_treats_user_words_literally(
    searchable: SQLiteStore, query: str, ids: list[int]
) -> None:
    assert _ids(searchable, query) == ids


def test_search_with_fts_syntax(searchable: SQLiteStore) -> None:
    assert _ids(searchable, "error OR link", fts_syntax=True) == [1, 3]
    assert _ids(searchable, "stal*", fts_syntax=True) == [2]
    with pytest.raises(StoreError):
        searchable.reader.search('"unbalanced', fts_syntax=True)


def test_search_rejects_an_empty_query(searchable: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="nothing to search"):
        searchable.reader.search(" :: ")


def test_fts_query_quotes_each_word() -> None:
    assert fts_query('say "hi" -x') == '"say" """hi""" "-x"'


def test_batch_insert_is_indexed(searchable: SQLiteStore) -> None:
    _integrity(searchable)


def test_rows_inserted_by_hand_are_searchable_after_a_rebuild(searchable: SQLiteStore) -> None:
    """m004: the writer indexes its own batches; there is no insert trigger
    (its savepoint on every insert cost a tenth of the receiver's time)."""
    conn = searchable._conn
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'records_fts_insert'"
                        ).fetchone() is None
    conn.execute(
        "INSERT INTO records (host_id, received, mode, flag, text, complete, boot)"
        " VALUES (1, 1.0, 'basic', '-', 'Kernel panic - not syncing', 1, 0)"
    )
    assert _ids(searchable, "panic") == []
    conn.execute("INSERT INTO records_fts (records_fts) VALUES ('rebuild')")
    assert _ids(searchable, "panic") == [5]
    _integrity(searchable)


def test_delete_and_update_triggers_keep_the_index_current(searchable: SQLiteStore) -> None:
    conn = searchable._conn
    conn.execute("DELETE FROM records WHERE id = 1")
    conn.execute("UPDATE records SET text = 'replaced words' WHERE id = 2")

    assert _ids(searchable, "link") == []
    assert _ids(searchable, "rcu_sched") == []
    assert _ids(searchable, "replaced") == [2]
    _integrity(searchable)


def test_search_filters_by_host_since_and_limit(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.apply(
        [record(i, text=b"oom-kill happened", sender=DB1 if i % 2 else WEB1) for i in range(6)]
    )
    assert _ids(fresh_store, "oom-kill", host=DB1.host) == [2, 4, 6]
    assert _ids(fresh_store, "oom-kill", since=1_700_000_004.0) == [5, 6]
    assert _ids(fresh_store, "oom-kill", limit=2) == [5, 6]
    assert _ids(fresh_store, "oom-kill", host="nobody") == []


def test_seen_nonce_needs_the_exact_string(searchable: SQLiteStore, record: MakeRecord) -> None:
    searchable.apply([record(9, text=b"netconsole: setup check nc-7f3a9b2e delivered")])

    assert searchable.reader.seen_nonce("nc-7f3a9b2e")
    assert not searchable.reader.seen_nonce("nc-7f3a9b2f")
    assert not searchable.reader.seen_nonce("7f3a9b2e-nc")
    assert not searchable.reader.seen_nonce("nc-7f3a9b2e", since=1_700_000_010.0)
    assert not searchable.reader.seen_nonce("::")
