"""Rows keep records exactly; JSON output follows the record schema."""

from __future__ import annotations

import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netconsole.records_json import record_to_json
from netconsole.store import SQLiteStore, open_store, stored_to_json
from netconsole.stream.events import Record, Sender
from netconsole.wire import Flag, Mode
from tests.unit.store.conftest import MakeRecord

RECORD_KEYS = {
    "host", "port", "local_port", "mode", "release", "facility", "level", "seq", "ts_usec",
    "cont", "flag", "caller", "text", "fields", "msgid", "cpu", "taskname", "complete",
    "missing", "received",
}  # fmt: skip


def test_non_utf8_text_is_kept_byte_for_byte(fresh_store: SQLiteStore, record: MakeRecord) -> None:
    raw = b"bad \xff\xfe bytes \xc3( and a NUL \x00 end"
    fresh_store.apply([record(1, text=raw), record(2, text=b"nul\x00inside")])

    stored = fresh_store.reader.tail()
    assert [s.record.text for s in stored] == [raw, b"nul\x00inside"]
    row = fresh_store._conn.execute("SELECT text, text_raw FROM records WHERE id = 1").fetchone()
    assert row == (raw.decode("utf-8", "replace"), raw)


def test_utf8_text_has_no_raw_copy(fresh_store: SQLiteStore, record: MakeRecord) -> None:
    fresh_store.apply([record(1, text="übung 🐧".encode())])
    assert fresh_store._conn.execute("SELECT text_raw FROM records").fetchone() == (None,)


def test_fields_round_trip_with_invalid_bytes(fresh_store: SQLiteStore, record: MakeRecord) -> None:
    fields = ((b"SUBSYSTEM", b"net"), (b"k\xff", b"v\x80\x00\n"), (b"msgid", b"12"))
    fresh_store.apply([record(1, fields=fields)])

    (stored,) = fresh_store.reader.tail()
    assert stored.record.fields == fields
    assert stored.record.msgid == 12
    row = fresh_store._conn.execute("SELECT msgid, cpu, taskname FROM records").fetchone()
    assert row == (12, None, None)


def test_sysdata_columns_take_the_last_value_like_record(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fields = ((b"cpu", b"user"), (b"taskname", b"a"), (b"cpu", b"3"), (b"taskname", b"b\xff"))
    rec = record(1, fields=fields)
    fresh_store.apply([rec])

    row = fresh_store._conn.execute("SELECT msgid, cpu, taskname FROM records").fetchone()
    assert row == (rec.msgid, rec.cpu, rec.taskname) == (None, 3, "b\ufffd")


def test_json_is_the_record_schema_plus_store_keys(
    fresh_store: SQLiteStore, record: MakeRecord
) -> None:
    fresh_store.apply([record(1, hostname=b"web-1"), record(2, text=b"\xff")])

    first, second = fresh_store.reader.tail()
    assert stored_to_json(first) == {
        **record_to_json(first.record),
        "id": 1,
        "name": "web-1",
        "boot": 0,
    }
    assert set(stored_to_json(first)) >= RECORD_KEYS
    assert stored_to_json(first)["text"] == "message 1"
    assert "raw" not in stored_to_json(first)
    assert stored_to_json(second)["raw"] == "\\xff"


_bytes = st.binary(max_size=40)
_records = st.builds(
    Record,
    sender=st.builds(
        Sender,
        host=st.sampled_from(["192.0.2.1", "2001:db8::1"]),
        port=st.integers(1, 65535),
        local_port=st.just(6666),
    ),
    mode=st.sampled_from(Mode),
    received=st.floats(0, 2e9),
    text=_bytes,
    release=st.none() | st.text(max_size=10),
    facility=st.none() | st.integers(0, 23),
    level=st.none() | st.integers(0, 7),
    seq=st.none() | st.integers(0, 2**63 - 1),
    ts_usec=st.none() | st.integers(0, 2**63 - 1),
    flag=st.sampled_from(Flag),
    caller=st.none() | st.sampled_from(["T1", "C0"]),
    fields=st.lists(st.tuples(_bytes, _bytes), max_size=4).map(tuple),
    header_extra=st.lists(st.text(max_size=5), max_size=2).map(tuple),
    complete=st.booleans(),
    missing=st.lists(st.tuples(st.integers(0, 99), st.integers(100, 999)), max_size=2).map(tuple),
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_records, min_size=1, max_size=5))
def test_any_record_comes_back_exactly(records: list[Record]) -> None:
    store = open_store(":memory:")
    try:
        store.apply(records)
        assert [s.record for s in store.reader.tail()] == records
        store._conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
    except sqlite3.Error:  # pragma: no cover - shown by hypothesis
        raise
    finally:
        store.close()
