"""Migrations: from an empty file, from v1, and refusing what is too new or too old."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from netconsole.store import StoreError, open_reader, open_store
from netconsole.store import _schema as schema


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_migrate_from_empty_applies_all_in_order(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path)
    names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [m.name for m in schema.MIGRATIONS]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST
    assert {"hosts", "records", "events", "records_fts", "_migrations"} <= _tables(conn)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental


def test_migrate_is_idempotent(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    assert schema.migrate(conn) == []


def test_migrate_from_v1_indexes_existing_records(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    assert schema.migrate(conn, upto=1) == ["m001_initial"]
    assert "records_fts" not in _tables(conn)
    conn.execute("INSERT INTO hosts (address, port, local_port) VALUES ('192.0.2.1', 6665, 6666)")
    conn.execute(
        "INSERT INTO records (host_id, received, mode, flag, text, complete, boot)"
        " VALUES (1, 1.0, 'extended', '-', 'e1000e eth0: NIC Link is Down', 1, 0)"
    )
    conn.close()

    store = open_store(db_path)
    found = store.reader.search("link down")
    store.close()

    assert [s.record.text for s in found] == [b"e1000e eth0: NIC Link is Down"]


def test_migration_from_v7_rebuilds_the_index_without_column_sizes(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    schema.migrate(conn, upto=7)
    assert "records_fts_docsize" in _tables(conn)
    conn.execute("INSERT INTO hosts (address, port, local_port) VALUES ('192.0.2.1', 6665, 6666)")
    conn.execute(
        "INSERT INTO records (host_id, received, mode, flag, text, fields, complete, boot)"
        " VALUES (1, 1.0, 'extended', '-', 'nvme0 timeout', '[[\"hostname\", \"db-3\"]]', 1, 0)")
    conn.execute("INSERT INTO records_fts (rowid, text, fields)"
                 " SELECT id, text, fields FROM records_fts_source")
    conn.close()
    store = open_store(db_path)
    try:
        assert "records_fts_docsize" not in _tables(store._conn)
        assert [s.record.text for s in store.reader.search("timeout db-3")] == [b"nvme0 timeout"]
        store._conn.execute("DELETE FROM records WHERE id = 1")  # the delete trigger still works
        store._conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
        assert store.reader.search("timeout") == []
    finally:
        store.close()


def test_migrate_failure_rolls_back_that_migration(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    steps = [*schema.MIGRATIONS, schema.Migration(name="m999_broken", apply=broken)]
    monkeypatch.setattr(schema, "MIGRATIONS", steps)
    conn = sqlite3.connect(db_path, isolation_level=None)
    with pytest.raises(RuntimeError):
        schema.migrate(conn)

    assert "half_done" not in _tables(conn)
    assert schema.applied(conn) == [m.name for m in steps[:-1]]


def test_open_refuses_a_newer_schema(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("INSERT INTO _migrations VALUES ('m999_future', 0)")
    conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    conn.close()

    with pytest.raises(StoreError, match="newer"):
        open_store(db_path)
    with pytest.raises(StoreError, match="newer"):
        open_reader(db_path)


def test_reader_refuses_an_unmigrated_database(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    schema.migrate(conn, upto=1)
    conn.close()

    with pytest.raises(StoreError, match="older"):
        open_reader(db_path)


def test_open_reports_a_file_that_is_not_a_database(db_path: Path) -> None:
    db_path.write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(StoreError, match="not a database"):
        open_store(db_path)


def test_open_reports_a_directory_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")

    with pytest.raises(StoreError, match="cannot create"):
        open_store(tmp_path / "file" / "sub" / "netconsole.db")


def test_open_refuses_a_newer_user_version_alone(db_path: Path) -> None:
    """A newer netconsole's database, even one whose migrations this code knows
    by name, is refused by the writer (`listen`) as by the readers."""
    open_store(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {schema.LATEST + 1}")
    conn.close()

    with pytest.raises(StoreError, match=f"^{db_path}: schema v{schema.LATEST + 1} is newer"):
        open_store(db_path)
    with pytest.raises(StoreError, match="newer"):
        open_reader(db_path)
    conn = sqlite3.connect(db_path, isolation_level=None)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.LATEST + 1  # untouched
    conn.close()


def test_full_text_search_merges_8_segments_at_a_time(db_path: Path) -> None:
    open_store(db_path).close()
    conn = sqlite3.connect(db_path)
    config = dict(conn.execute("SELECT k, v FROM records_fts_config").fetchall())
    assert config["automerge"] == 8
