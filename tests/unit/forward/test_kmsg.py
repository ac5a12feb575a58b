"""`/dev/kmsg` parsing and the one-record-per-read reader."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netconsole.forward.kmsg import (
    MAX_RECORD,
    KmsgError,
    KmsgReader,
    KmsgRecord,
    ReadStatus,
    parse_kmsg,
)
from netconsole.wire import Flag, OutgoingRecord, format_message


def kmsg_line(rec: KmsgRecord) -> bytes:
    """The record as /dev/kmsg prints it (printk's ext header and body)."""
    return format_message(OutgoingRecord(
        facility=rec.facility, level=rec.level, seq=rec.seq, ts_usec=rec.ts_usec,
        text=rec.text, flag=rec.flag, caller=rec.caller, dictionary=rec.dictionary))


def reads(*chunks: bytes | BaseException) -> Callable[[int], bytes]:
    """A `read(n)` double returning (or raising) each item in turn, then EAGAIN."""
    items = list(chunks)

    def read(n: int) -> bytes:
        if not items:
            raise BlockingIOError(errno.EAGAIN, "again")
        item = items.pop(0)
        if isinstance(item, BaseException):
            raise item
        assert len(item) <= n
        return item

    return read


def test_parse_kmsg_plain_record() -> None:
    rec = parse_kmsg(b"6,339,5140900,-;NET: Registered protocol family 10\n")
    assert rec == KmsgRecord(facility=0, level=6, seq=339, ts_usec=5140900,
                             text=b"NET: Registered protocol family 10")


def test_parse_kmsg_facility_from_prefix() -> None:
    rec = parse_kmsg(b"30,7,1,-;daemon info\n")
    assert (rec.facility, rec.level) == (3, 6)
    assert parse_kmsg(b"12,8,1,-;x\n").facility == 1


def test_parse_kmsg_continuation_lines_are_the_dictionary() -> None:
    data = (b"6,1234,5678901,-;e1000e 0000:00:19.0 eth0: NIC Link is Up\n"
            b" SUBSYSTEM=pci\n DEVICE=+pci:0000:00:19.0\n")
    rec = parse_kmsg(data)
    assert rec.text == b"e1000e 0000:00:19.0 eth0: NIC Link is Up"
    assert rec.dictionary == ((b"SUBSYSTEM", b"pci"), (b"DEVICE", b"+pci:0000:00:19.0"))


def test_parse_kmsg_unescapes_text_and_dictionary() -> None:
    rec = parse_kmsg(b"4,77,9000001,-;tab\\x09here back\\x5cslash caf\\xc3\\xa9 \\x1b[0m\n"
                     b" DEVICE=a\\x0ab\n")
    assert rec.text == b"tab\there back\\slash caf\xc3\xa9 \x1b[0m"
    assert rec.dictionary == ((b"DEVICE", b"a\nb"),)


def test_parse_kmsg_embedded_newline_stays_one_record() -> None:
    rec = parse_kmsg(b"14,9,1,-;first\\x0asecond\n")
    assert rec.text == b"first\nsecond"


@pytest.mark.parametrize(("flag", "expected"), [("-", Flag.NONE), ("c", Flag.CONT),
                                                ("+", Flag.CONT_FRAGMENT)])
def test_parse_kmsg_flags(flag: str, expected: Flag) -> None:
    assert parse_kmsg(b"4,1,2,%s;x\n" % flag.encode()).flag is expected


def test_parse_kmsg_caller_and_unknown_fields() -> None:
    rec = parse_kmsg(b"6,5,6,-,caller=T42,future=1;hello\n")
    assert rec.caller == "T42"
    assert rec.extra == ("future=1",)


def test_parse_kmsg_missing_final_newline_is_accepted() -> None:
    assert parse_kmsg(b"6,5,6,-;cut").text == b"cut"


def test_parse_kmsg_empty_text() -> None:
    assert parse_kmsg(b"6,5,6,-;\n").text == b""


@pytest.mark.parametrize("data", [
    b"no header at all\n",
    b"6,5,6;too few fields\n",
    b"x,5,6,-;not numeric\n",
    b"6,5,6,?;bad flag\n",
    b"6,5,6,-;text\nnot a continuation\n",
    b"6,5,6,-;text\n noequals\n",
    b"6,-5,6,-;negative seq\n",
])
def test_parse_kmsg_rejects_what_is_not_kmsg(data: bytes) -> None:
    with pytest.raises(KmsgError):
        parse_kmsg(data)


def test_parse_kmsg_large_prefix_is_facility_and_level() -> None:
    assert (parse_kmsg(b"99,5,6,-;x\n").facility, parse_kmsg(b"99,5,6,-;x\n").level) == (12, 3)


@pytest.mark.parametrize("line", [
    b"6,339,5140900,-;NET: Registered protocol family 10\n",
    b"4,77,9000001,c,caller=C1;tab\\x09here back\\x5cslash caf\\xc3\\xa9\n SUBSYSTEM=pci\n",
])
def test_parse_kmsg_round_trips_byte_for_byte(line: bytes) -> None:
    assert kmsg_line(parse_kmsg(line)) == line


def test_reader_chardev_one_record_per_read() -> None:
    r = KmsgReader(reads(b"6,0,1,-;a\n", b"6,1,2,-;b\n SUBSYSTEM=x\n"), whole_records=True)
    recs, status = r.read_available()
    assert [x.text for x in recs] == [b"a", b"b"]
    assert recs[1].dictionary == ((b"SUBSYSTEM", b"x"),)
    assert status is ReadStatus.AGAIN


def test_reader_epipe_counts_overrun_and_the_seq_jump_as_loss() -> None:
    r = KmsgReader(reads(b"6,10,1,-;a\n", BrokenPipeError(errno.EPIPE, "overrun"),
                         b"6,15,2,-;b\n"), whole_records=True)
    recs, _ = r.read_available()
    assert [x.seq for x in recs] == [10, 15]
    assert r.counters.overruns == 1
    assert r.counters.lost == 4


def test_reader_skips_up_to_the_resume_point_and_counts_what_was_overwritten() -> None:
    r = KmsgReader(reads(b"6,3,1,-;old\n", b"6,8,2,-;new\n"), whole_records=True,
                   after_seq=5)
    recs, _ = r.read_available()
    assert [x.seq for x in recs] == [8]
    assert r.counters.skipped == 1
    assert r.counters.lost == 2  # 6 and 7 were overwritten while we were away


def test_reader_file_mode_splits_records_across_chunks() -> None:
    data = b"6,0,1,-;alpha\n SUBSYSTEM=net\n DEVICE=n2\n6,1,2,-;beta\n6,2,3,-;gamma\n"
    chunks = [data[i : i + 7] for i in range(0, len(data), 7)]
    r = KmsgReader(reads(*chunks, b""), whole_records=False)
    recs, status = r.read_available()
    assert [x.text for x in recs] == [b"alpha", b"beta", b"gamma"]
    assert recs[0].dictionary == ((b"SUBSYSTEM", b"net"), (b"DEVICE", b"n2"))
    assert status is ReadStatus.EOF


def test_reader_file_mode_waits_for_continuation_lines() -> None:
    # The header line alone may be followed by dictionary lines in the next read.
    r = KmsgReader(reads(b"6,0,1,-;alpha\n"), whole_records=False)
    recs, status = r.read_available()
    assert recs == [] and status is ReadStatus.AGAIN


def test_reader_counts_unparsable_records_and_goes_on() -> None:
    r = KmsgReader(reads(b"garbage\n", b"6,1,2,-;ok\n"), whole_records=True)
    recs, _ = r.read_available()
    assert [x.text for x in recs] == [b"ok"]
    assert r.counters.unparsable == 1


def test_reader_gives_up_on_a_runaway_record() -> None:
    big = b"6,0,1,-;" + b"x" * (MAX_RECORD + 100)
    chunks = [big[i : i + 10_000] for i in range(0, len(big), 10_000)]
    r = KmsgReader(reads(*chunks, b"xx\n6,1,2,-;ok\n", b""), whole_records=False)
    recs, _ = r.read_available()
    assert r.counters.unparsable == 1
    assert [x.text for x in recs] == [b"ok"]


def test_reader_limit_stops_early() -> None:
    r = KmsgReader(reads(*(b"6,%d,1,-;r\n" % i for i in range(5))), whole_records=True)
    recs, status = r.read_available(limit=3)
    assert len(recs) == 3 and status is None


def test_reader_other_errors_propagate() -> None:
    r = KmsgReader(reads(PermissionError(errno.EPERM, "no")), whole_records=True)
    with pytest.raises(PermissionError):
        r.read_available()


_KEY = st.binary(min_size=1, max_size=20).filter(lambda k: b"=" not in k)


@settings(max_examples=300, deadline=None)
@given(text=st.binary(max_size=300), level=st.integers(0, 7), facility=st.integers(0, 23),
       seq=st.integers(0, 2**64 - 1), ts=st.integers(0, 2**63), flag=st.sampled_from(Flag),
       caller=st.none() | st.from_regex(r"[TC][0-9]{1,7}", fullmatch=True),
       dictionary=st.lists(st.tuples(_KEY, st.binary(max_size=40)), max_size=3))
def test_parse_kmsg_inverts_the_kernel_format(
        text: bytes, level: int, facility: int, seq: int, ts: int, flag: Flag,
        caller: str | None, dictionary: list[tuple[bytes, bytes]]) -> None:
    rec = KmsgRecord(facility=facility, level=level, seq=seq, ts_usec=ts, text=text, flag=flag,
                     caller=caller, dictionary=tuple(dictionary))
    assert parse_kmsg(kmsg_line(rec)) == rec
