"""SenderStream: reassembly and accounting, one behaviour per test."""

from __future__ import annotations

from netconsole.stream import (
    Duplicate,
    Event,
    Gap,
    GapKind,
    Incomplete,
    Reboot,
    RebootReason,
    Record,
    Rejected,
    SenderStream,
)
from netconsole.stream._fragments import FRAGMENT_TIMEOUT, MAX_PENDING_RECORDS
from netconsole.stream._tracker import REORDER_WAIT, WINDOW
from netconsole.wire import Mode, OutgoingRecord, RejectReason, encode_extended
from tests.helpers import SENDER, feed_all


def ext(seq: int, text: bytes = b"hello", ts: int | None = None, **kw: object) -> list[bytes]:
    return encode_extended(OutgoingRecord(facility=0, level=6, seq=seq,
                                          ts_usec=ts if ts is not None else 1000 + seq,
                                          text=text, **kw))  # type: ignore[arg-type]


def only(events: list[Event], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


# -- basic mode ------------------------------------------------------------------

def test_basic_line_cut_across_datagrams() -> None:
    line = b"[    4.562887] lab[basic]: LEN975 " + b"x" * 974 + b"\n"
    events = feed_all(SenderStream(SENDER), [line[:1000], line[1000:]])
    [r] = only(events, Record)
    assert r.mode is Mode.BASIC and r.complete
    assert r.ts_usec == 4_562_887
    assert r.text == b"lab[basic]: LEN975 " + b"x" * 974


def test_basic_record_of_exactly_1000_bytes_then_another() -> None:
    first = b"[    1.000000] " + b"a" * 984 + b"\n"
    assert len(first) == 1000
    events = feed_all(SenderStream(SENDER), [first, b"[    1.000001] next\n"])
    assert [r.text for r in only(events, Record)] == [b"a" * 984, b"next"]


def test_basic_multi_line_record_strips_repeated_prefix() -> None:
    dg = (b"[    4.976442] labtrig: multi line A\n[    4.976442] labtrig: multi line B\n"
          b"[    4.976442] labtrig: multi line C\n")
    [r] = only(feed_all(SenderStream(SENDER), [dg]), Record)
    assert r.text == b"labtrig: multi line A\nlabtrig: multi line B\nlabtrig: multi line C"


def test_basic_dropped_messages_line_is_loss() -> None:
    events = feed_all(SenderStream(SENDER),
                      [b"** 17 printk messages dropped **\n[   12.000000] after\n"])
    [g] = only(events, Gap)
    assert (g.kind, g.count) == (GapKind.DROPPED, 17)
    [r] = only(events, Record)
    assert r.text == b"after"


def test_basic_syslog_and_caller_prefixes() -> None:
    [r] = only(feed_all(SenderStream(SENDER), [b"<30>[    1.500000][  T123] daemon\n"]), Record)
    assert (r.facility, r.level, r.ts_usec, r.caller, r.text) == (3, 6, 1_500_000, "T123",
                                                                  b"daemon")


def test_basic_without_time_prefix() -> None:
    [r] = only(feed_all(SenderStream(SENDER), [b"[drm] no time here\n"]), Record)
    assert (r.ts_usec, r.text) == (None, b"[drm] no time here")


def test_basic_missing_continuation_times_out_incomplete() -> None:
    s = SenderStream(SENDER)
    s.feed(b"[    1.000000] " + b"z" * 985, 10.0)
    assert s.next_deadline() == 10.0 + FRAGMENT_TIMEOUT
    s.expire(10.0 + FRAGMENT_TIMEOUT)
    [r] = only(s.events(), Record)
    assert not r.complete and r.text.startswith(b"zzz")


def test_basic_random_bytes_are_rejected_with_a_reason() -> None:
    events = feed_all(SenderStream(SENDER), [b"\x00\x17\xff garbage", b"no newline here"])
    assert [e.reason for e in only(events, Rejected)] == [RejectReason.NOT_NETCONSOLE] * 2
    assert not only(events, Record)


def test_basic_kern_cont_pieces_join_into_one_record() -> None:
    """Older kernels send KERN_CONT pieces as their own datagrams, no newline, no
    prefix after the first: never rejected, one record."""
    s = SenderStream(SENDER)
    for i, piece in enumerate([b"[    1.000000] cont test: piece A ", b"piece B ",
                               b"piece C end\n", b"[    1.100000] next line\n"]):
        s.feed(piece, 5.0 + i * 0.001)
    events = s.events()
    assert not only(events, Rejected)
    assert [(r.text, r.complete) for r in only(events, Record)] == [
        (b"cont test: piece A piece B piece C end", True), (b"next line", True)]


def test_basic_pieces_never_ended_are_one_incomplete_record() -> None:
    s = SenderStream(SENDER)
    s.feed(b"[    2.000000] started ", 1.0)
    s.feed(b"and then ", 1.001)
    s.feed(b"[    2.500000] a new record\n", 1.2)  # the held line never got its newline
    s.feed(b"[    3.000000] trailing piece ", 1.3)
    s.expire(1.3 + FRAGMENT_TIMEOUT)
    assert [(r.text, r.complete) for r in only(s.events(), Record)] == [
        (b"started and then ", False), (b"a new record", True), (b"trailing piece ", False)]


# -- extended reassembly ---------------------------------------------------------

def test_fragments_reversed_and_duplicated() -> None:
    text = b"\x01\\" * 700  # escapes make it 5600 bytes on the wire
    dgs = ext(5, text)
    assert len(dgs) > 3
    events = feed_all(SenderStream(SENDER), list(reversed(dgs)) + dgs[1:2])
    [r] = only(events, Record)
    assert r.text == text and r.complete
    assert [e.reason for e in only(events, Rejected)] == [RejectReason.DUPLICATE_FRAGMENT]


def test_fragment_cut_inside_escape() -> None:
    dgs = ext(9, b"\x1b" * 300)
    assert dgs[0].endswith(b"\\x1")  # the first fragment ends inside a \xHH escape
    [r] = only(feed_all(SenderStream(SENDER), dgs), Record)
    assert r.text == b"\x1b" * 300


def test_fragment_cut_inside_key_value_line() -> None:
    dgs = ext(9, b"t" * 900, userdata=((b"key", b"v" * 150),))
    assert b" key=v" in dgs[0] and dgs[1].split(b";", 1)[1].startswith(b"v")
    [r] = only(feed_all(SenderStream(SENDER), list(reversed(dgs))), Record)
    assert r.text == b"t" * 900 and r.fields == ((b"key", b"v" * 150),)


def test_missing_middle_fragment_gives_incomplete_record_with_holes() -> None:
    dgs = ext(7, b"m" * 2500)
    s = SenderStream(SENDER)
    for d in (dgs[0], dgs[2]):
        s.feed(d, 1.0)
    s.expire(1.0 + FRAGMENT_TIMEOUT)
    events = s.events()
    [inc] = only(events, Incomplete)
    [r] = only(events, Record)
    assert not r.complete and r.missing == inc.missing
    [(start, end)] = inc.missing
    assert end - start == len(dgs[1].split(b";", 1)[1])
    assert len(r.text) == 2500 - (end - start)


def test_pending_fragments_are_bounded_per_sender() -> None:
    s = SenderStream(SENDER)
    for seq in range(MAX_PENDING_RECORDS + 5):
        s.feed(ext(seq, b"q" * 1500)[0], 1.0 + seq / 1000)
    events = s.events()
    assert len(only(events, Incomplete)) == 5
    assert s.buffered_bytes <= MAX_PENDING_RECORDS * 1000


def test_fragment_total_disagreement_is_rejected() -> None:
    s = SenderStream(SENDER)
    s.feed(b"6,1,2,-,ncfrag=0/2000;" + b"a" * 900, 0.0)
    s.feed(b"6,1,2,-,ncfrag=900/3000;" + b"a" * 900, 0.0)
    assert [e.reason for e in only(s.events(), Rejected)] == [RejectReason.FRAGMENT_MISMATCH]


# -- accounting ------------------------------------------------------------------

def test_seq_gap_reported_after_reorder_wait() -> None:
    s = SenderStream(SENDER)
    for seq in (1, 2, 6):
        s.feed(ext(seq)[0], 0.0)
    s.expire(REORDER_WAIT / 2)
    assert not only(s.events(), Gap)
    s.expire(REORDER_WAIT)
    [g] = only(s.events(), Gap)
    assert (g.kind, g.first, g.count) == (GapKind.SEQ, 3, 3)


def test_reordered_records_are_not_loss() -> None:
    s = SenderStream(SENDER)
    for seq in (1, 3, 2, 4):
        s.feed(ext(seq)[0], 0.0)
    s.flush(1.0)
    events = s.events()
    assert [r.seq for r in only(events, Record)] == [1, 3, 2, 4]
    assert not only(events, Gap)
    assert s.seq.reordered == 1


def test_duplicate_record_from_two_targets() -> None:
    events = feed_all(SenderStream(SENDER), ext(1) + ext(1) + ext(2))
    assert [r.seq for r in only(events, Record)] == [1, 2]
    assert [d.seq for d in only(events, Duplicate)] == [1]


def test_reboot_when_seq_comes_back_after_silence() -> None:
    s = SenderStream(SENDER)
    for seq in range(5):
        s.feed(ext(seq, ts=seq * 10)[0], seq * 0.01)
    s.feed(ext(0, ts=0)[0], 30.0)
    events = s.events()
    [rb] = only(events, Reboot)
    assert (rb.reason, rb.previous_seq, rb.seq) == (RebootReason.SEQ_BACK, 4, 0)
    assert [r.seq for r in only(events, Record)] == [0, 1, 2, 3, 4, 0]


def test_reboot_when_seq_falls_below_window() -> None:
    s = SenderStream(SENDER)
    s.feed(ext(WINDOW + 100)[0], 0.0)
    s.feed(ext(3)[0], 0.0)
    assert [e.reason for e in only(s.events(), Reboot)] == [RebootReason.SEQ_BACK]


def test_reboot_when_time_goes_back_with_higher_seq() -> None:
    s = SenderStream(SENDER)
    s.feed(ext(10, ts=50_000_000)[0], 0.0)
    s.feed(ext(400, ts=2_000_000)[0], 0.1)
    events = s.events()
    assert [e.reason for e in only(events, Reboot)] == [RebootReason.TIME_BACK]
    assert not only(events, Gap)


def test_reboot_when_release_changes() -> None:
    s = SenderStream(SENDER)
    s.feed(ext(10, release="6.12.1")[0], 0.0)
    s.feed(ext(11, release="6.13.0")[0], 0.1)
    [rb] = only(s.events(), Reboot)
    assert (rb.reason, rb.previous_release, rb.release) == (RebootReason.NEW_RELEASE, "6.12.1",
                                                           "6.13.0")


def test_release_appearing_is_not_a_reboot() -> None:
    events = feed_all(SenderStream(SENDER), ext(1) + ext(2, release="6.12.1"))
    assert not only(events, Reboot)


def test_msgid_gap_counted_separately_from_seq() -> None:
    dgs = [ext(seq, sysdata=((b"msgid", str(m).encode()),))[0]
           for seq, m in ((10, 1), (11, 2), (12, 4))]
    events = feed_all(SenderStream(SENDER), dgs)
    gaps = only(events, Gap)
    assert [(g.kind, g.first, g.count) for g in gaps] == [(GapKind.MSGID, 3, 1)]


def test_msgid_restart_after_reenable_is_not_loss() -> None:
    dgs = [ext(seq, sysdata=((b"msgid", str(m).encode()),))[0]
           for seq, m in ((10, 1), (11, 2), (12, 3), (20, 1), (21, 2))]
    gaps = only(feed_all(SenderStream(SENDER), dgs), Gap)
    assert [(g.kind, g.first, g.count) for g in gaps] == [(GapKind.SEQ, 13, 7)]


def test_msgid_wraps_at_2_32() -> None:
    dgs = [ext(seq, sysdata=((b"msgid", str(m).encode()),))[0]
           for seq, m in ((1, 2**32 - 2), (2, 2**32 - 1), (3, 0), (4, 1), (5, 3))]
    gaps = only(feed_all(SenderStream(SENDER), dgs), Gap)
    assert [(g.kind, g.first, g.count) for g in gaps] == [(GapKind.MSGID, 2, 1)]


def test_snapshot_restore_gives_no_false_gap_or_reboot() -> None:
    s = SenderStream(SENDER)
    for seq in range(100, 110):
        s.feed(ext(seq)[0], 1.0)
    s.flush(1.0)
    s.events()
    restored = SenderStream.restore(SENDER, s.snapshot())
    restored.feed(ext(109)[0], 1.2)  # the last record again: a duplicate, not a reboot
    restored.feed(ext(110)[0], 1.3)
    restored.flush(2.0)
    events = restored.events()
    assert [r.seq for r in only(events, Record)] == [110]
    assert not only(events, Gap) and not only(events, Reboot)


def test_replay_catches_a_restored_snapshot_up_with_later_records() -> None:
    """A snapshot taken at seq 104, then records to 109 stored, then a crash:
    the restart replays 105..109 (with their msgids), silently."""
    s = SenderStream(SENDER)
    for seq in range(100, 105):
        s.feed(ext(seq, sysdata=((b"msgid", b"%d" % seq),))[0], 1.0)
    snapshot = s.snapshot()
    for seq in (105, 107, 108, 109):  # 106 was lost
        s.feed(ext(seq, sysdata=((b"msgid", b"%d" % seq),))[0], 1.1)
    s.flush(1.1)
    stored = only(s.events(), Record)
    restored = SenderStream.restore(SENDER, snapshot)
    restored.replay(stored)
    assert restored.events() == [] and restored.next_deadline() is None
    restored.feed(ext(109)[0], 1.2)  # the last record again: a duplicate
    restored.feed(ext(106, sysdata=((b"msgid", b"106"),))[0], 1.2)  # the lost one, late
    restored.feed(ext(110, sysdata=((b"msgid", b"110"),))[0], 1.3)
    restored.flush(2.0)
    events = restored.events()
    assert [r.seq for r in only(events, Record)] == [106, 110]
    assert len(only(events, Duplicate)) == 1
    assert not only(events, Gap) and not only(events, Reboot)


def test_mode_switch_restarts_accounting() -> None:
    events = feed_all(SenderStream(SENDER), [*ext(50), b"[    1.000000] basic now\n", *ext(1)])
    assert [r.mode for r in only(events, Record)] == [Mode.EXTENDED, Mode.BASIC, Mode.EXTENDED]
    assert not only(events, Reboot) and not only(events, Gap)


def test_pstore_records_are_not_accounted() -> None:
    s = SenderStream(SENDER)
    for seq in (500, 501):
        s.feed(ext(seq)[0], 0.0)
    # the previous boot's panic, replayed by netconsole forward from pstore
    for seq in (3, 9):
        s.feed(ext(seq, userdata=((b"pstore", b"dmesg-ramoops-0"),))[0], 0.1)
    s.feed(ext(502)[0], 0.2)
    s.flush(5.0)
    events = s.events()
    assert [r.seq for r in only(events, Record)] == [500, 501, 3, 9, 502]
    assert not only(events, Reboot) and not only(events, Gap) and not only(events, Duplicate)


# -- numbers a store cannot hold ------------------------------------------------

def test_msgid_and_cpu_past_int64_stay_text_and_count_as_no_number() -> None:
    s = SenderStream(SENDER)
    big = b"18446744073709551616"
    events = feed_all(s, [*ext(1, sysdata=((b"cpu", big), (b"msgid", big))),
                          *ext(2, sysdata=((b"msgid", b"9" * 5000),))])
    r1, r2 = only(events, Record)
    assert (r1.field(b"cpu"), r1.field(b"msgid")) == (big, big)  # kept as sent
    assert (r1.cpu, r1.msgid, r2.msgid) == (None, None, None)
    assert not only(events, Gap)  # no msgid accounting on them
    assert s.snapshot()["msgid"] is None


def test_header_number_past_int64_is_rejected_by_reason() -> None:
    events = feed_all(SenderStream(SENDER), [b"6,18446744073709551616,1000,-;x"])
    [rej] = events
    assert isinstance(rej, Rejected) and rej.reason is RejectReason.NUMBER_TOO_LARGE


def test_msgid_of_19_digits_is_not_accounted() -> None:
    """netconsole's msgid is a u32 (§3.5): one of 19 digits is a foreign sender's.
    Counted, a jump to 2**63 - 1 after a wrap would put the tracker past what the
    express lane's int64 holds."""
    s = SenderStream(SENDER)
    events = feed_all(s, [*ext(1, sysdata=((b"msgid", b"4294967295"),)),
                          *ext(2, sysdata=((b"msgid", b"0"),)),  # the u32 wrapped
                          *ext(3, sysdata=((b"msgid", b"9223372036854775807"),)),
                          *ext(4, sysdata=((b"msgid", b"1"),))])
    s.flush(10_000.0)
    events += s.events()
    assert not only(events, Gap)
    assert [r.msgid for r in only(events, Record)] == [4294967295, 0, 2**63 - 1, 1]
    state = s.express_state()
    assert state is not None and state.msgid < 2**63


def test_a_fast_reboot_is_a_reboot_not_duplicates() -> None:
    """A host that reboots within a second of its last datagram replays its log
    from seq 0: those seqs were seen in the old boot, but they are new records."""
    s = SenderStream(SENDER)
    for seq in range(408):
        s.feed(ext(seq, ts=1_000_000 + seq * 1000)[0], seq * 0.001)
    for seq in range(408):  # 0.2 s later, the new boot's log replayed
        s.feed(ext(seq, ts=500 + seq * 900)[0], 0.6 + seq * 0.001)
    events = s.events()
    assert [(r.reason, r.previous_seq, r.seq) for r in only(events, Reboot)] == [
        (RebootReason.SEQ_BACK, 407, 0)]
    assert not only(events, Duplicate)
    assert len(only(events, Record)) == 2 * 408


def test_a_duplicate_is_the_newest_records_again() -> None:
    s = SenderStream(SENDER)
    for seq in range(100):
        s.feed(ext(seq, ts=seq * 1000)[0], seq * 0.001)
    s.feed(ext(90, ts=90_000)[0], 0.2)  # a late copy, close to the newest
    s.feed(ext(99, ts=99_000)[0], 0.2)
    events = s.events()
    assert [d.seq for d in only(events, Duplicate)] == [90, 99]
    assert not only(events, Reboot)
