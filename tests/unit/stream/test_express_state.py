"""The express lane's hooks in the stream: `SeqTracker.advance_to`,
`SenderStream.express_state` and `SenderStream.express_advance`.

The receiver's express lane takes the next in-order records of a sender without
its SenderStream and catches the stream up afterwards; the stream must then be
exactly where feeding those records one by one would have left it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from netconsole.stream import Gap, Record, Sender, SenderStream
from netconsole.stream._sender import _NO_EVENTS, TS_BACK_TOLERANCE_USEC, ExpressGap
from netconsole.stream._tracker import _NO_HOLES, REORDER_WAIT, WINDOW, SeqTracker
from netconsole.wire import OutgoingRecord, encode_extended

SENDER = Sender(host="192.0.2.1", port=6665, local_port=6666)
MSGID_MOD = 1 << 32


# -- SeqTracker.advance_to ------------------------------------------------------------

def _history(start: int, steps: list[tuple[int, int]], flush: bool = True) -> SeqTracker:
    """A tracker after `observe(start)` and then, per step, a jump above the top
    (1: the next number) and optionally a late number below it; then (`flush`)
    every hole reported, so the tracker has a top and no hole but a bitmap with
    the numbers that never came; else its holes stay open."""
    t = SeqTracker()
    now = 100.0
    t.observe(start, now)
    for jump, late in steps:
        now += 0.001
        assert t.top is not None
        t.observe(t.top + jump, now)
        if late:
            t.observe(t.top - late, now)
    if flush:
        t.flush()
    return t


def _state(t: SeqTracker) -> tuple[int | None, int, list[list[float]], int]:
    return t.top, t.seen, [list(h) for h in t.holes], t.reordered


_steps = st.lists(
    st.tuples(st.one_of(st.just(1), st.integers(1, 40), st.integers(1, 2 * WINDOW)),
              st.one_of(st.just(0), st.integers(1, WINDOW + 8))),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(start=st.integers(0, 1 << 40), steps=_steps, k=st.integers(0, 3 * WINDOW),
       flush=st.booleans())
def test_advance_to_is_observe_of_each_next_number(start: int, steps: list[tuple[int, int]],
                                                   k: int, flush: bool) -> None:
    """Up to the horizon, with holes open or not."""
    one_by_one = _history(start, steps, flush)
    at_once = _history(start, steps, flush)
    assert _state(one_by_one) == _state(at_once)
    assert at_once.top is not None
    top = at_once.top
    horizon = at_once.horizon()
    assert (horizon is None) == (not at_once.holes)
    if horizon is not None:
        k = min(k, horizon - top)
    now = 200.0
    for n in range(top + 1, top + k + 1):
        assert one_by_one.observe(n, now) == []
    at_once.advance_to(top + k)
    assert _state(at_once) == _state(one_by_one)
    assert at_once.top == top + k
    if horizon is not None and top + k == horizon:
        assert one_by_one.observe(horizon + 1, now)  # one past it: a hole reported at once


def test_the_horizon_is_where_the_lowest_hole_leaves_the_window() -> None:
    t = SeqTracker()
    t.observe(1, 0.0)
    t.observe(5, 0.0)  # 2..4 wait
    t.observe(9, 0.0)  # 6..8 wait
    assert t.horizon() == 2 + WINDOW - 1
    t.advance_to(t.horizon() or 0)
    assert t.holes and t.expire(0.1) == []
    assert t.observe(2 + WINDOW, 0.1) == [(2, 3)]  # the next number reports it
    assert t.horizon() == 6 + WINDOW - 1
    t.flush()
    assert t.horizon() is None


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 1 << 40), steps=_steps, back=st.integers(0, 3 * WINDOW))
def test_advance_to_at_or_below_the_top_changes_nothing(start: int,
                                                        steps: list[tuple[int, int]],
                                                        back: int) -> None:
    t = _history(start, steps)
    before = _state(t)
    assert t.top is not None
    t.advance_to(t.top - back)
    assert _state(t) == before


def test_advance_to_fills_the_window_from_an_empty_bitmap_part() -> None:
    t = SeqTracker()
    t.observe(10, 0.0)
    t.observe(20, 0.0)  # 11..19 never come
    t.flush()
    assert t.seen == 0b1_0000_0000_01
    t.advance_to(23)
    assert (t.top, t.seen) == (23, 0b1_0000_0000_01_111)
    t.advance_to(23 + WINDOW)
    assert (t.top, t.seen) == (23 + WINDOW, (1 << WINDOW) - 1)


# -- SenderStream.express_state / express_advance ---------------------------------------

@dataclass(frozen=True)
class Rec:
    """One record to send: what varies between records of one sender."""

    seq: int
    ts: int
    text: bytes
    msgid: int | None
    release: str | None
    caller: str | None
    cpu: int | None


def _datagrams(r: Rec) -> list[bytes]:
    sysdata: list[tuple[bytes, bytes]] = []
    if r.cpu is not None:
        sysdata += [(b"cpu", b"%d" % r.cpu), (b"taskname", b"kworker/%d:1" % r.cpu)]
    if r.msgid is not None:
        sysdata.append((b"msgid", b"%d" % r.msgid))
    return encode_extended(OutgoingRecord(
        facility=0, level=6, seq=r.seq, ts_usec=r.ts, text=r.text, release=r.release,
        caller=r.caller, sysdata=tuple(sysdata)))


def _feed(stream: SenderStream, r: Rec, now: float) -> None:
    for dg in _datagrams(r):
        stream.feed(dg, now)


@st.composite
def _prefix(draw: st.DrawFn) -> tuple[list[Rec], bool]:
    """Records of one boot: seq (and msgid) mostly +1, some jumps (holes that
    `expire` then reports), some fragmented; msgid maybe across its u32 wrap.
    Returns the records and whether the stream must be expired after them."""
    n = draw(st.integers(1, 12))
    seq = draw(st.integers(0, 1 << 40))
    ts = draw(st.integers(0, 1 << 40))
    with_msgid = draw(st.booleans())
    msgid = draw(st.one_of(st.integers(0, 1000), st.integers(MSGID_MOD - 2 * n, MSGID_MOD - 1)))
    release = draw(st.sampled_from([None, "6.17.0-rc1"]))
    caller = draw(st.sampled_from([None, "T1", "C0"]))
    out, holes = [], False
    for i in range(n):
        if i:
            jump = draw(st.sampled_from([1, 1, 1, 2, 7]))
            msgid_jump = draw(st.sampled_from([1, 1, 1, 3]))
            holes = holes or jump > 1 or (with_msgid and msgid_jump > 1)
            seq += jump
            msgid = (msgid + msgid_jump) % MSGID_MOD
            ts += draw(st.integers(0, 2_000_000))
        text = b"x" * draw(st.sampled_from([5, 5, 1500]))  # 1500: fragmented
        out.append(Rec(seq=seq, ts=ts, text=b"line %d " % i + text,
                       msgid=msgid if with_msgid else None, release=release, caller=caller,
                       cpu=draw(st.sampled_from([None, 0, 3]))))
    return out, holes


def _twins(records: list[Rec], expire: bool) -> tuple[SenderStream, SenderStream, float, float]:
    """Two streams fed `records` alike, their events drained; with `expire`, their
    holes reported first (else still open). Returns them, when the last record
    was fed, and now."""
    a, b = SenderStream(SENDER), SenderStream(SENDER)
    now = 1_000.0
    for r in records:
        now += 0.001
        _feed(a, r, now)
        _feed(b, r, now)
    fed = now
    if expire:
        now += REORDER_WAIT + 1
        a.expire(now)
        b.expire(now)
    a.events()
    b.events()
    return a, b, fed, now


@settings(max_examples=200, deadline=None)
@given(
    prefix=_prefix(),
    k=st.integers(0, 3 * WINDOW),
    ts_steps=st.lists(st.integers(-TS_BACK_TOLERANCE_USEC, 3_000_000), min_size=1, max_size=8),
    drop_release=st.booleans(),
    now_step=st.sampled_from([0.0, 0.0001, 0.5, 3.0]),
    wait=st.booleans(),
)
def test_express_advance_is_feeding_the_next_records(
    prefix: tuple[list[Rec], bool], k: int, ts_steps: list[int], drop_release: bool,
    now_step: float, wait: bool,
) -> None:
    records, expire = prefix
    a, b, fed, now = _twins(records, expire and wait)
    assert a.snapshot() == b.snapshot()

    state = b.express_state()
    assert state is not None
    last = records[-1]
    seq_top, top_ts, release, msgid_top, msgid_base, last_seen = state[:6]
    assert (seq_top, top_ts, release, last_seen) == (last.seq, last.ts, last.release, fed)
    # An open hole: the lane stops at its horizon.
    if state.seq_horizon is not None:
        k = min(k, state.seq_horizon - seq_top)
    if state.msgid_horizon is not None:
        k = min(k, state.msgid_horizon - msgid_top)
    if last.msgid is None:
        assert msgid_top == -1
    else:
        assert msgid_top == last.msgid + msgid_base
        # The lane takes msgid + base == top + 1 only: no u32 wrap in the run.
        k = min(k, MSGID_MOD - 1 - last.msgid)

    # Stream A gets k more records the ordinary way.
    ts = last.ts
    taken: list[Rec] = []
    for i in range(k):
        ts = max(0, ts + ts_steps[i % len(ts_steps)])
        now += now_step
        r = Rec(seq=last.seq + 1 + i, ts=ts, text=b"express %d" % i,
                msgid=None if last.msgid is None else last.msgid + 1 + i,
                release=None if drop_release else last.release, caller=last.caller,
                cpu=last.cpu)
        taken.append(r)
        _feed(a, r, now)
        fed = now
    events = a.events()
    assert [type(e) for e in events] == [Record] * k  # nothing but the records: the lane's case
    assert [e.seq for e in events if isinstance(e, Record)] == [r.seq for r in taken]

    # Stream B is caught up in one step.
    end = taken[-1] if taken else last
    b.express_advance(end.seq, end.ts, -1 if end.msgid is None else msgid_top + k, fed)
    assert b.events() == []
    assert b.snapshot() == a.snapshot()
    assert b.last_seen == a.last_seen
    assert b.next_deadline() == a.next_deadline()
    assert b.express_state() == a.express_state()

    # And both go on the same way: a gap after the run, then the next record.
    after = Rec(seq=end.seq + 2, ts=end.ts + 1, text=b"after", msgid=None if end.msgid is None
                else end.msgid + 2, release=end.release, caller=None, cpu=None)
    for s in (a, b):
        _feed(s, after, now + 0.25)
        s.expire(now + 10)
        s.flush(now + 10)
    assert a.events() == b.events()
    assert a.snapshot() == b.snapshot()


@settings(max_examples=200, deadline=None)
@given(
    prefix=_prefix(),
    jumps=st.lists(st.tuples(st.sampled_from([1, 1, 1, 2, 5, WINDOW]),
                             st.sampled_from([1, 1, 1, 2, 7])), max_size=60),
    wait=st.booleans(),
)
def test_express_advance_with_the_lanes_gaps_is_feeding_the_records(
    prefix: tuple[list[Rec], bool], jumps: list[tuple[int, int]], wait: bool,
) -> None:
    """The lane takes forward jumps (each within the window and the horizons, as C
    checks) and hands them over as `ExpressGap`s: the stream then opens the same
    holes with the same deadlines, and reports the same gaps, as feeding them."""
    records, expire = prefix
    a, b, fed, now = _twins(records, expire and wait)
    state = b.express_state()
    assert state is not None
    last = records[-1]
    seq, msgid = state.seq, state.msgid
    seq_limit = state.seq_horizon if state.seq_horizon is not None else 1 << 62
    msgid_limit = state.msgid_horizon if state.msgid_horizon is not None else 1 << 62
    gaps: list[ExpressGap] = []
    ts = state.ts_usec
    for i, (jump, msgid_jump) in enumerate(jumps):
        if last.msgid is None:
            msgid_jump = 0
        new_seq, new_msgid = seq + jump, msgid + msgid_jump
        if new_seq > seq_limit or (msgid_jump and new_msgid > msgid_limit):
            break  # C hands this one to Python
        if last.msgid is not None and new_msgid - state.msgid_base >= MSGID_MOD:
            break  # a u32 wrap: Python's
        now += 0.01
        if jump > 1 or msgid_jump > 1:
            gaps.append(ExpressGap(seq, new_seq, msgid if msgid_jump else -1,
                                   new_msgid if msgid_jump else -1, now))
            if jump > 1:
                seq_limit = min(seq_limit, seq + WINDOW)
            if msgid_jump > 1:
                msgid_limit = min(msgid_limit, msgid + WINDOW)
        ts = last.ts + i
        r = Rec(seq=new_seq, ts=ts, text=b"express %d" % i,
                msgid=None if last.msgid is None else new_msgid - state.msgid_base,
                release=last.release, caller=last.caller, cpu=last.cpu)
        _feed(a, r, now)
        fed = now
        seq, msgid = new_seq, new_msgid
    b.express_advance(seq, ts, msgid if last.msgid is not None else -1, fed, gaps)
    a_events = [e for e in a.events() if not isinstance(e, Record)]
    assert b.events() == a_events  # holes pushed out of the window at once, if any
    assert b.snapshot() == a.snapshot()
    assert b.next_deadline() == a.next_deadline()
    assert b.express_state() == a.express_state()
    for s in (a, b):
        s.expire(now + REORDER_WAIT + 1)
    assert a.events() == b.events()
    assert _NO_HOLES == [] and _NO_EVENTS == []  # the shared empties stay empty


def test_an_idle_stream_holds_no_list_of_its_own() -> None:
    """Issue 14: an idle sender costs at most 2 KiB; its stream shares the empty
    event list and its trackers the empty hole list until something is pending."""
    s = SenderStream(SENDER)
    _feed(s, _rec(1, msgid=1), 1.0)
    _feed(s, _rec(4, msgid=4), 1.1)  # a hole in each tracker
    assert s.events() and s.seq.holes is not _NO_HOLES
    s.expire(1.1 + REORDER_WAIT)
    assert [type(e) for e in s.events()] == [Gap, Gap]
    assert s._events is _NO_EVENTS
    assert s.seq.holes is _NO_HOLES and s._msgid is not None and s._msgid.holes is _NO_HOLES
    assert _NO_HOLES == [] and _NO_EVENTS == []


def _rec(seq: int, **kw: object) -> Rec:
    base: dict[str, object] = {"ts": 1000 + seq, "text": b"hello", "msgid": None,
                               "release": None, "caller": None, "cpu": None}
    base.update(kw)
    return Rec(seq=seq, **base)  # type: ignore[arg-type]


def test_express_state_of_a_plain_stream() -> None:
    s = SenderStream(SENDER)
    _feed(s, _rec(41, msgid=9, release="6.17.0"), 5.0)
    _feed(s, _rec(42, msgid=10, release="6.17.0"), 6.0)
    assert s.express_state() == (42, 1042, "6.17.0", 10, 0, 6.0, None, None)


def test_express_state_without_msgid() -> None:
    s = SenderStream(SENDER)
    _feed(s, _rec(7), 5.0)
    assert s.express_state() == (7, 1007, None, -1, 0, 5.0, None, None)


def test_express_state_none_without_a_record() -> None:
    s = SenderStream(SENDER)
    assert s.express_state() is None
    s.feed(b"", 1.0)  # rejected: no record, no mode
    assert s.express_state() is None


def test_express_state_none_in_basic_mode() -> None:
    s = SenderStream(SENDER)
    s.feed(b"[    1.000000] hello\n", 1.0)
    assert [type(e) for e in s.events()] == [Record]
    assert s.express_state() is None


def test_express_state_with_a_seq_hole_stops_at_its_horizon_until_it_is_reported() -> None:
    s = SenderStream(SENDER)
    _feed(s, _rec(1), 1.0)
    _feed(s, _rec(3), 1.1)  # 2 is missing
    assert s.express_state() == (3, 1003, None, -1, 0, 1.1, 2 + WINDOW - 1, None)
    s.expire(1.1 + REORDER_WAIT)
    assert [(type(e), getattr(e, "first", None)) for e in s.events()][-1] == (Gap, 2)
    assert s.express_state() == (3, 1003, None, -1, 0, 1.1, None, None)


def test_express_state_with_a_msgid_hole() -> None:
    s = SenderStream(SENDER)
    _feed(s, _rec(1, msgid=5), 1.0)
    _feed(s, _rec(2, msgid=7), 1.1)  # msgid 6 is missing, seq is not
    assert s.express_state() == (2, 1002, None, 7, 0, 1.1, None, 6 + WINDOW - 1)
    s.expire(1.1 + REORDER_WAIT)
    assert s.express_state() == (2, 1002, None, 7, 0, 1.1, None, None)


def test_express_state_none_while_a_fragmented_record_is_partial() -> None:
    s = SenderStream(SENDER)
    _feed(s, _rec(1), 1.0)
    assert s.express_state() is not None
    first, *rest = _datagrams(_rec(2, text=b"y" * 1500))
    assert rest
    s.feed(first, 1.1)
    assert s.express_state() is None
    for dg in rest:
        s.feed(dg, 1.2)
    assert s.express_state() == (2, 1002, None, -1, 0, 1.2, None, None)


def test_express_advance_to_the_current_top_changes_nothing_but_last_seen() -> None:
    s = SenderStream(SENDER)
    _feed(s, _rec(5, msgid=3), 1.0)
    before = s.snapshot()
    s.express_advance(5, 1005, 3, 0.5)  # an older time does not move last_seen back
    assert s.snapshot() == before
    s.express_advance(5, 1005, 3, 2.0)
    assert s.snapshot() == {**before, "last_seen": 2.0}


def test_express_state_none_while_basic_text_is_buffered() -> None:
    """A console chunk without its end waits in the stream: not the lane's case."""
    s = SenderStream(SENDER)
    _feed(s, _rec(1), 1.0)
    s.feed(b"[    1.000000] " + b"z" * 985, 1.1)  # exactly 1000 bytes: more may follow
    assert s.express_state() is None
