"""The express lane's rows in the store: `prebuilt_row` and `PrebuiltRecords`.

The receiver's express lane builds a record's INSERT row itself (in C, with
`prebuilt_row` as its reference) and hands the writer `PrebuiltRecords` among
the stream events. Whatever took that way must be stored exactly as the same
`Record` through the ordinary path: every column, the host's counters, FTS,
and the order of the batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from netconsole.incidents import Incident, IncidentTable
from netconsole.store import (
    LaneHostCount,
    PrebuiltRecords,
    PrebuiltRow,
    SQLiteStore,
    open_reader,
    open_store,
)
from netconsole.store._codec import prebuilt_row, record_to_row
from netconsole.stream.events import Event, Record, Sender
from netconsole.wire import Flag, Mode
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import lines_to_records
from tests.unit.store.conftest import DB1, WEB1

T0 = 1_700_000_000.0

Batch = list[Any]  # Record / other events / PrebuiltRecords


def rec(seq: int, *, sender: Sender = WEB1, received: float | None = None,
        text: bytes | None = None, fields: tuple[tuple[bytes, bytes], ...] = (),
        **kw: Any) -> Record:
    """An extended record: by default no release, caller or fields."""
    return Record(sender=sender, mode=Mode.EXTENDED,
                  received=T0 + seq / 8 if received is None else received,
                  text=b"message %d" % seq if text is None else text,
                  facility=kw.pop("facility", 0), level=kw.pop("level", 6), seq=seq,
                  ts_usec=kw.pop("ts_usec", seq * 1000), fields=fields, **kw)


SYSDATA = ((b"cpu", b"3"), (b"taskname", b"kworker"), (b"msgid", b"7"), (b"hostname", b"h1"))


def _hosts(records: Sequence[Record]) -> list[LaneHostCount]:
    """What `records` add to each host, in `PrebuiltRecords.hosts` form."""
    out: dict[Sender, LaneHostCount] = {}
    for r in records:
        h = out.get(r.sender) or LaneHostCount(
            sender=r.sender, records=0, first_received=r.received, last_received=r.received,
            name=None, release=None)
        name = r.field(b"hostname")
        out[r.sender] = replace(
            h, records=h.records + 1, first_received=min(h.first_received, r.received),
            last_received=max(h.last_received, r.received),
            name=name if name is not None else h.name,
            release=r.kernel_release if r.kernel_release is not None else h.release)
    return list(out.values())


def prebuilt(records: Sequence[Record], known: dict[Sender, tuple[int, int]]) -> PrebuiltRecords:
    rows = []
    for r in records:
        row = prebuilt_row(r, *known[r.sender])
        assert row is not None, r
        rows.append(row)
    return PrebuiltRecords(rows=rows, hosts=_hosts(records))


def express(batch: Sequence[Any], take: Sequence[bool],
            known: dict[Sender, tuple[int, int]]) -> Batch:
    """`batch` with each run of records that `take` marks and that can be
    prebuilt replaced by one `PrebuiltRecords`, in place."""
    out: Batch = []
    run: list[Record] = []
    for item, wanted in zip(batch, take, strict=True):
        if (wanted and isinstance(item, Record) and item.sender in known
                and prebuilt_row(item, *known[item.sender]) is not None):
            run.append(item)
            continue
        if run:
            out.append(prebuilt(run, known))
            run = []
        out.append(item)
    if run:
        out.append(prebuilt(run, known))
    return out


def seeded(store: SQLiteStore, senders: Sequence[Sender]) -> dict[Sender, tuple[int, int]]:
    """One ordinary record per sender, so that each has a committed host id and boot."""
    store.apply([rec(0, sender=s, received=T0 - 100 + i) for i, s in enumerate(senders)])
    known = {}
    for s in senders:
        host = store.committed_host(s)
        assert host is not None
        known[s] = host
    return known


def dump(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the batches can touch, all columns."""
    conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
    return {table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("records", "hosts", "events", "incidents")}


@contextmanager
def two_stores() -> Iterator[tuple[SQLiteStore, SQLiteStore]]:
    a, b = open_store(":memory:"), open_store(":memory:")
    try:
        yield a, b
    finally:
        a.close()
        b.close()


# -- prebuilt_row -----------------------------------------------------------------------

def test_prebuilt_row_is_the_insert_row_with_sentinels_for_null() -> None:
    full = rec(5, release="6.12.0", caller="T12", flag=Flag.CONT, fields=SYSDATA)
    row = prebuilt_row(full, 3, 2)
    assert type(row) is PrebuiltRow
    assert row == PrebuiltRow(3, *record_to_row(full)[:10], record_to_row(full).fields, 7, 3,
                              "kworker", 2)
    assert row[1:10] == (full.received, "extended", "6.12.0", 0, 6, 5, 5000, "c", "T12")
    bare = rec(6, text=b"")
    assert prebuilt_row(bare, 1, 0) == PrebuiltRow(
        host_id=1, received=bare.received, mode="extended", release="", facility=0, level=6,
        seq=6, ts_usec=6000, flag="-", caller="", text="", fields="", msgid=-1, cpu=-1,
        taskname="", boot=0)


@pytest.mark.parametrize("record", [
    rec(1), rec(2, release="6.1.0", caller="C0", fields=SYSDATA),
    rec(3, fields=((b"cpu", b"x"), (b"msgid", b""), (b"hostname", b"h"))),
])
def test_prebuilt_row_binds_only_exact_int_float_and_str(record: Record) -> None:
    row = prebuilt_row(record, 9, 4)
    assert row is not None
    assert {type(v) for v in row} <= {int, float, str}


@pytest.mark.parametrize("record", [
    rec(1, text=b"bad \xff byte"),
    rec(2, text=b"nul \x00 inside"),
    rec(3, header_extra=("foo=1",)),
    rec(4, complete=False),
    rec(5, complete=False, missing=((10, 20),)),
    rec(6, caller=""),
    rec(7, fields=((b"taskname", b""),)),
    Record(sender=WEB1, mode=Mode.BASIC, received=T0, text=b"basic line"),
    Record(sender=WEB1, mode=Mode.BASIC, received=T0, text=b"<6>x", facility=0, level=6),
], ids=["not-utf8", "nul", "header-extra", "incomplete", "missing", "empty-caller",
        "empty-taskname", "basic", "basic-with-level"])
def test_prebuilt_row_refuses_what_it_cannot_store_exactly(record: Record) -> None:
    assert prebuilt_row(record, 1, 0) is None


def test_prebuilt_row_refuses_an_empty_release() -> None:
    """'' stands for NULL in the row, like an empty caller or taskname; the wire
    never gives an empty release, but a Record may have one."""
    assert prebuilt_row(rec(1, release=""), 1, 0) is None


# -- SQLiteStore.apply with PrebuiltRecords ---------------------------------------------

def _mixed_batch() -> list[Record]:
    """Records with every optional column NULL and with values, of two hosts."""
    return [
        rec(1),
        rec(2, release="6.12.0", caller="T12", fields=SYSDATA),
        rec(3, fields=((b"cpu", b"3"),)),
        rec(4, fields=((b"taskname", b"kworker"), (b"msgid", b"8"))),
        rec(5, fields=((b"release", b"6.12.1"), (b"hostname", b"h2"))),
        rec(1, sender=DB1, caller="C1", flag=Flag.CONT, fields=((b"hostname", b"db"),)),
        rec(6, text="übung 🐧 \"quoted\"".encode(), fields=((b"k\xff", b"v\x80"),)),
        rec(7, text=b"", level=3, facility=4),
        rec(8, text=b"bad \xff byte", fields=SYSDATA),  # ordinary path only
        rec(9, release="6.12.0", fields=((b"cpu", b"user"), (b"msgid", b"x"))),
        rec(2, sender=DB1),
    ]


def test_prebuilt_records_are_stored_as_the_records_they_replace(tmp_path: Path) -> None:
    path_a, path_b = tmp_path / "a.db", tmp_path / "b.db"
    a, b = open_store(path_a), open_store(path_b)
    try:
        known = seeded(a, [WEB1, DB1])
        assert seeded(b, [WEB1, DB1]) == known
        batch = _mixed_batch()
        a.apply(batch)
        # Records 2..9 (the web host's and db's run) go the express way, the rest not.
        express_batch: Batch = [batch[0], prebuilt(batch[1:8], known), *batch[8:]]
        assert sum(isinstance(e, PrebuiltRecords) for e in express_batch) == 1
        b.apply(express_batch)
        assert b.committed_host(WEB1) == a.committed_host(WEB1) == known[WEB1]
        assert dump(b._conn) == dump(a._conn)
    finally:
        a.close()
        b.close()
    with open_reader(path_a) as ra, open_reader(path_b) as rb:
        got_a, got_b = list(ra.export()), list(rb.export())
        assert got_b == got_a
        assert [s.record for s in got_b] == [rec(0, received=T0 - 100),
                                             rec(0, sender=DB1, received=T0 - 99), *batch]
        hosts_a = {h.address: h for h in ra.hosts(now=T0)}
        hosts_b = {h.address: h for h in rb.hosts(now=T0)}
    assert hosts_b == hosts_a
    web = hosts_b[WEB1.host]
    assert (web.records, web.name, web.release) == (10, "h1", "6.12.0")  # rec(8)'s
    assert (web.first_seen, web.last_record) == (T0 - 100, T0 + 9 / 8)
    assert (hosts_b[DB1.host].records, hosts_b[DB1.host].name) == (3, "db")


def test_prebuilt_rows_null_columns_are_null() -> None:
    with two_stores() as (store, _):
        known = seeded(store, [WEB1])
        store.apply([prebuilt([rec(1), rec(2, caller="T1", release="6.1.0",
                                                fields=SYSDATA)], known)])
        rows = store._conn.execute(
            "SELECT release, caller, fields, msgid, cpu, taskname, text_raw, header_extra,"
            " complete, missing, host_id, boot FROM records WHERE id > 1 ORDER BY id").fetchall()
    assert rows[0] == (None, None, None, None, None, None, None, None, 1, None, *known[WEB1])
    assert rows[1][:6] == ("6.1.0", "T1", '[["cpu", "3"], ["taskname", "kworker"], '
                           '["msgid", "7"], ["hostname", "h1"]]', 7, 3, "kworker")


def test_fts_finds_prebuilt_rows() -> None:
    with two_stores() as (store, _):
        known = seeded(store, [WEB1])
        store.apply([rec(1, text=b"ordinary aardvark"),
                     prebuilt([rec(2, text=b"express zebrafish"),
                               rec(3, text=b"express aardvark")], known),
                     rec(4, text=b"ordinary zebrafish")])

        def match(q: str) -> list[int]:
            return sorted(r[0] for r in store._conn.execute(
                "SELECT rowid FROM records_fts WHERE records_fts MATCH ?", (q,)))

        ids = dict(store._conn.execute("SELECT seq, id FROM records WHERE id > 1"))
        assert match("zebrafish") == [ids[2], ids[4]]
        assert match("aardvark") == [ids[1], ids[3]]
        assert match("express") == [ids[2], ids[3]]
        assert [s.record.seq for s in store.reader.search("zebrafish")] in ([4, 2], [2, 4])


def test_interleaved_batch_is_stored_in_batch_order() -> None:
    with two_stores() as (store, _):
        known = seeded(store, [WEB1, DB1])
        # seq and received deliberately out of order: only the batch order counts
        store.apply([
            rec(50),
            prebuilt([rec(10), rec(11, sender=DB1)], known),
            rec(40, sender=DB1),
            prebuilt([rec(20)], known),
            rec(30),
            prebuilt([rec(5, sender=DB1), rec(6)], known),
        ])
        got = store._conn.execute(
            "SELECT id, host_id, seq FROM records WHERE id > 2 ORDER BY id").fetchall()
    web, db = known[WEB1][0], known[DB1][0]
    assert [(h, s) for _, h, s in got] == [(web, 50), (web, 10), (db, 11), (db, 40), (web, 20),
                                           (web, 30), (db, 5), (web, 6)]
    assert [i for i, _, _ in got] == list(range(3, 11))


def test_incidents_link_to_their_records_after_prebuilt_rows() -> None:
    """The ids the writer works out for an incident's records count the
    prebuilt rows before them in the batch."""
    table = IncidentTable()
    records = lines_to_records("before\n" + reports.KERNEL_BUG + "\nafter", seq=100)
    sender = records[0].sender
    with two_stores() as (a, b):
        known = seeded(a, [sender, WEB1])
        assert seeded(b, [sender, WEB1]) == known
        events = table.process(records, records[-1].received)
        assert any(isinstance(e, Incident) for e in events)
        lead = [rec(1), rec(2), rec(3, sender=sender, received=records[0].received - 1)]
        a.apply([*lead, *events])
        b.apply([prebuilt(lead, known), *events])
        assert dump(b._conn) == dump(a._conn)
        (inc,) = b.reader.incidents()
        linked = b.reader.incident_records(inc.id)
    assert inc.first_seq is not None and inc.last_seq is not None
    assert [r.record.seq for r in linked] == list(range(inc.first_seq, inc.last_seq + 1))
    assert "\n".join(r.record.text.decode() for r in linked) == inc.text


# -- the property: any batch, any choice of what goes the express way ---------------------

_VALUES = [b"0", b"3", b"17", b"007", b"kworker/0:1", b"web-1", b"x\xffy", b'"q"\\',
           b"12345678901234", b"\x7f\x01 \t"]
_KEYS = [b"hostname", b"cpu", b"taskname", b"msgid", b"release", b"SUBSYSTEM", b"k\xff"]
_good_text = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30),
    st.text(alphabet="abc xyz\n\t\"\\", max_size=12),
).map(str.encode)
_odd_text = st.one_of(st.binary(max_size=12), st.just(b"nul\x00"), _good_text)


def _fields(values: list[bytes]) -> st.SearchStrategy[tuple[tuple[bytes, bytes], ...]]:
    pair = st.tuples(st.sampled_from(_KEYS), st.sampled_from(values))
    return st.lists(pair, max_size=5).map(tuple)


@st.composite
def _record(draw: st.DrawFn) -> Record:
    """Any extended record; one in three with something `prebuilt_row` may refuse
    (not UTF-8 or NUL, empty caller or taskname, header_extra, incomplete)."""
    odd = draw(st.integers(0, 2)) == 0
    return Record(
        sender=draw(st.sampled_from([WEB1, DB1])),
        mode=Mode.EXTENDED,
        received=draw(st.floats(T0 - 1e6, T0 + 1e6)),
        text=draw(_odd_text if odd else _good_text),
        release=draw(st.sampled_from([None, "6.12.0", "6.17.0-rc1+"])),
        facility=draw(st.integers(0, 23)),
        level=draw(st.integers(0, 7)),
        seq=draw(st.integers(0, 1 << 40)),
        ts_usec=draw(st.integers(0, 1 << 50)),
        flag=draw(st.sampled_from(list(Flag))),
        caller=draw(st.sampled_from([None, "T1", "C12"] + ([""] if odd else []))),
        fields=draw(_fields([*_VALUES, b""] if odd else _VALUES)),
        header_extra=draw(st.sampled_from([(), ("x=1",)])) if odd else (),
        complete=draw(st.booleans()) if odd else True,
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_record(), st.sampled_from([True, True, False])), min_size=1,
                max_size=14),
       st.integers(0, 14))
def test_express_batches_store_the_same_rows(marked: list[tuple[Record, bool]],
                                             split: int) -> None:
    batch: list[Event] = [r for r, _ in marked]
    take = [t for _, t in marked]
    with two_stores() as (a, b):
        known = seeded(a, [WEB1, DB1])
        assert seeded(b, [WEB1, DB1]) == known
        # two batches: the host rows must add up across them too
        for part in (slice(0, split), slice(split, None)):
            if batch[part]:
                a.apply(batch[part])
                express_part = express(batch[part], take[part], known)
                rows = sum(len(e.rows) for e in express_part if isinstance(e, PrebuiltRecords))
                event(f"prebuilt rows in a batch: {min(rows, 3)}{'+' if rows >= 3 else ''}")
                b.apply(express_part)
        assert dump(b._conn) == dump(a._conn)
        assert list(b.reader.export()) == list(a.reader.export())
        assert [s.record for s in b.reader.export()][2:] == batch


def test_a_plain_batch_sets_an_empty_hostname_as_the_general_update_does() -> None:
    """The lean hosts UPDATE of a records-only batch turns '' into NULL, so a
    batch with an empty name or release takes the general one."""
    with two_stores() as (a, _):
        a.apply([rec(1, fields=((b"hostname", b"web"),))])
        a.apply([rec(2, fields=((b"hostname", b""),))])
        row = a._conn.execute("SELECT name FROM hosts").fetchone()
        assert row == ("",)
