"""Record-fact filters (cpu, task, msgid, release, boot, any field) and search over
field values (m006)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from netconsole.store import RecordFilter, SQLiteStore, open_store
from netconsole.store import _schema as schema
from netconsole.stream import Reboot
from netconsole.stream.events import RebootReason
from tests.unit.store.conftest import DB1, WEB1, MakeRecord


def _fill(store: SQLiteStore, record: MakeRecord) -> None:
    store.apply([
        record(1, text=b"one", fields=((b"hostname", b"web-1"), (b"rack", b"b12"),
                                        (b"cpu", b"0"), (b"taskname", b"swapper/0"),
                                        (b"msgid", b"1"))),
        record(2, text=b"two", release="6.12.0", fields=((b"rack", b"b13 east"),
                                                         (b"cpu", b"3"),
                                                         (b"taskname", b"kworker/3:1"),
                                                         (b"msgid", b"2"))),
        record(3, sender=DB1, text=b"three", fields=((b"cpu", b"3"),
                                                      (b"release", b"6.1.0-18-amd64"),
                                                      (b"msgid", b"3"))),
        Reboot(sender=WEB1, at=5.0, reason=RebootReason.SEQ_BACK, previous_seq=2, seq=1,
               previous_release=None, release=None),
        record(1, text=b"after reboot", fields=((b"rack", b"B12"), (b"cpu", b"0"))),
    ])


def _texts(store: SQLiteStore, **match: object) -> list[bytes]:
    f = RecordFilter(**match)  # type: ignore[arg-type]
    return [s.record.text for s in store.reader.tail(match=f)]


def test_each_filter(fresh_store: SQLiteStore, record: MakeRecord) -> None:
    _fill(fresh_store, record)
    assert _texts(fresh_store, cpu=3) == [b"two", b"three"]
    assert _texts(fresh_store, task="kworker/3:1") == [b"two"]
    assert _texts(fresh_store, msgid=3) == [b"three"]
    assert _texts(fresh_store, release="6.12.0") == [b"two"]  # the release prefix
    assert _texts(fresh_store, release="6.1.0-18-amd64") == [b"three"]  # release= sysdata
    assert _texts(fresh_store, boot=1) == [b"after reboot"]
    assert _texts(fresh_store, boot=0, cpu=0) == [b"one"]
    assert _texts(fresh_store, fields=(("rack", "b12"),)) == [b"one"]  # exact, case too
    assert _texts(fresh_store, fields=(("rack", "b12"), ("hostname", "web-1"))) == [b"one"]
    assert _texts(fresh_store, fields=(("rack", "b1"),)) == []  # no prefix match
    assert _texts(fresh_store, fields=(("taskname", "swapper/0"),)) == [b"one"]
    assert _texts(fresh_store, cpu=7) == []
    exported = [s.record.text for s in fresh_store.reader.export(match=RecordFilter(cpu=3))]
    assert exported == [b"two", b"three"]


def test_search_finds_userdata_values(fresh_store: SQLiteStore, record: MakeRecord) -> None:
    _fill(fresh_store, record)
    reader = fresh_store.reader
    assert [s.record.text for s in reader.search("b12")] == [b"one", b"after reboot"]
    assert [s.record.text for s in reader.search("east")] == [b"two"]
    assert [s.record.text for s in reader.search("web-1 one")] == [b"one"]
    # Keys and sysdata are not words of a record: nothing matches them.
    assert reader.search("rack") == [] and reader.search("kworker") == []
    assert [s.record.text for s in reader.search("b12", match=RecordFilter(boot=1))] == [
        b"after reboot"]
    # Retention's deletes keep the index whole.
    fresh_store._conn.execute("DELETE FROM records WHERE text = 'one'")
    fresh_store._conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
    assert [s.record.text for s in reader.search("b12")] == [b"after reboot"]


def test_migration_from_v5_indexes_field_values(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    schema.migrate(conn, upto=5)
    conn.execute("INSERT INTO hosts (address, port, local_port) VALUES ('192.0.2.1', 6665, 6666)")
    conn.execute(
        "INSERT INTO records (host_id, received, mode, flag, text, fields, complete, boot)"
        " VALUES (1, 1.0, 'extended', '-', 'old record', '[[\"rack\", \"b99\"]]', 1, 0)")
    conn.execute("INSERT INTO records_fts (rowid, text) SELECT id, text FROM records")
    conn.close()
    store = open_store(db_path)
    try:
        assert [s.record.text for s in store.reader.search("b99")] == [b"old record"]
        assert [s.record.text for s in store.reader.search("old")] == [b"old record"]
        store._conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
        store._conn.execute("INSERT INTO records_fts (records_fts) VALUES ('rebuild')")
    finally:
        store.close()
