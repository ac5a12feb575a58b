"""The C express lane (`collector/_lane.c`) against the Python path, datagram by datagram.

A real UDP socket pair on loopback. A sender's stream is set up by the
Python path; its lane is made from `SenderStream.express_state`; then one more
datagram is sent. Whenever C takes it, the row must be exactly
`store._codec.prebuilt_row` (a `PrebuiltRow`, class and all) of the Record the
Python path makes of the same datagram, and the Python path must have made
that Record and nothing else. C may refuse anything (the Python path then
decides), but it must take the plain next record.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netconsole.collector._express import HandedOut, _lane
from netconsole.incidents._patterns import TRIGGER_BYTES, TRIGGER_LITERALS
from netconsole.store._codec import PrebuiltRow, prebuilt_row
from netconsole.stream import Record, Sender, SenderStream
from netconsole.stream._sender import ExpressGap
from netconsole.wire import Flag, OutgoingRecord, encode_extended

pytestmark = pytest.mark.skipif(_lane is None, reason="the C express lane is not built")

HOST_ID, BOOT = 7, 3


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("127.0.0.1", 0))
    yield rx, tx
    rx.close()
    tx.close()


def _sender(tx: socket.socket, rx: socket.socket) -> Sender:
    return Sender(host="127.0.0.1", port=tx.getsockname()[1], local_port=rx.getsockname()[1])


def _lane_for(stream: SenderStream, key: bytes) -> object:
    assert _lane is not None
    state = stream.express_state()
    assert state is not None
    lane = _lane.Lane()
    lane.sender, lane.key, lane.host_id, lane.boot = stream.sender, key, HOST_ID, BOOT
    lane.seq, lane.ts, lane.release = state.seq, state.ts_usec, state.release
    lane.msgid, lane.msgid_base, lane.last = state.msgid, state.msgid_base, state.last_seen
    lane.active = 1
    return lane


def _step(receiver: object, now: float) -> object:
    deadline = time.monotonic() + 2
    while True:
        item = receiver.step(now, True)  # type: ignore[attr-defined]
        if item is not None:
            return item
        assert time.monotonic() < deadline, "nothing received"
        time.sleep(0.001)


def _key(pair: tuple[socket.socket, socket.socket]) -> bytes:
    """The raw sockaddr C keys lanes by: learnt from one slow datagram."""
    assert _lane is not None
    rx, tx = pair
    receiver = _lane.Receiver(rx.fileno(), {}, TRIGGER_BYTES.search, row_type=PrebuiltRow)
    tx.sendto(b"hello", rx.getsockname())
    item = _step(receiver, 1.0)
    assert isinstance(item, tuple)
    return item[4]


printable = st.binary(min_size=0, max_size=60).map(
    lambda b: bytes(0x20 + (c % 95) for c in b))  # ASCII 0x20..0x7e, backslash included
anything = st.binary(max_size=40)


@st.composite
def records(draw: st.DrawFn) -> tuple[OutgoingRecord, OutgoingRecord]:
    """A first record, and a next one that is often (not always) the lane's case."""
    release = draw(st.sampled_from([None, "6.12.0", "7.2.0-rc1"]))
    msgid = draw(st.sampled_from([None, 10, 4294967295]))
    seq = draw(st.integers(0, 10**12))
    ts = draw(st.integers(0, 10**11))

    def sysdata(m: int | None, extra: bool) -> tuple[tuple[bytes, bytes], ...]:
        out: list[tuple[bytes, bytes]] = []
        if extra:
            out += [(b"cpu", draw(st.sampled_from([b"0", b"17", b"x", b""]))),
                    (b"taskname", draw(st.sampled_from([b"swapper/0", b"", b"a=b"])))]
        if m is not None:
            out.append((b"msgid", b"%d" % m))
        return tuple(out)

    first = OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=ts, text=b"first",
                           release=release, sysdata=sysdata(msgid, False))
    step = draw(st.sampled_from([1, 1, 1, 1, 0, 2, -1]))
    next_msgid = None if msgid is None else (msgid + draw(st.sampled_from([1, 1, 1, 2, 0])))
    # Around a trigger literal or a near miss: C's literal scan must ask the regex
    # exactly when it could match (EXT4-fs mount lines pass, their errors do not).
    near = st.sampled_from([*TRIGGER_LITERALS, b"-fs (sda1): mounted", b"-fs (x): Remounting",
                            b"-fs error", b"BTRFS info", b"BTRFS: error", b"BTRFS critical",
                            b"XFS", b"ut of memor", b" error, de"])
    around = st.builds(lambda a, lit, b: a + lit + b, printable, near, printable)
    text = draw(st.one_of(printable, anything, around, st.sampled_from([
        b"BUG: soft lockup - CPU#0 stuck", b"a\\b", b"", b"x" * 1500])))
    userdata = draw(st.lists(st.tuples(st.sampled_from([b"hostname", b"role", b"pstore",
                                                        b"release", b"k\"q"]),
                                       st.one_of(printable, anything)), max_size=3))
    second = OutgoingRecord(
        facility=draw(st.integers(0, 23)), level=draw(st.integers(0, 7)), seq=max(0, seq + step),
        ts_usec=draw(st.sampled_from([ts, ts + 5, max(0, ts - 31_000_000)])), text=text,
        flag=draw(st.sampled_from([Flag.NONE, Flag.CONT])),  # "+" is 4.2-4.8 only
        caller=draw(st.sampled_from([None, "T1", "C0", ""])),
        release=draw(st.sampled_from([release, release, "9.9.9"])),
        userdata=tuple(userdata),
        sysdata=sysdata(next_msgid, draw(st.booleans())))
    return first, second


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records())
def test_lane_row_is_the_python_paths_record(pair: tuple[socket.socket, socket.socket],
                                             case: tuple[OutgoingRecord, OutgoingRecord]) -> None:
    assert _lane is not None
    rx, tx = pair
    key = _key(pair)
    first, second = case
    stream = SenderStream(_sender(tx, rx))
    for d in encode_extended(first):
        stream.feed(d, 1.0)
    stream.events()
    lane = _lane_for(stream, key)
    receiver = _lane.Receiver(rx.fileno(), {key: lane}, TRIGGER_BYTES.search, TRIGGER_LITERALS,
                              row_type=PrebuiltRow)
    datagrams = encode_extended(second)
    tx.sendto(datagrams[0], rx.getsockname())
    item = _step(receiver, 2.0)
    for d in datagrams:
        stream.feed(d, 2.0)
    events = stream.events()
    if isinstance(item, list):  # C took it
        assert len(datagrams) == 1
        assert len(events) == 1 and type(events[0]) is Record, events
        record = events[0]
        assert TRIGGER_BYTES.search(record.text) is None
        assert item == [prebuilt_row(record, HOST_ID, BOOT)]
        assert type(item[0]) is PrebuiltRow
        # The lane now stands where the stream stands.
        assert (lane.seq, lane.ts, lane.msgid) == (  # type: ignore[attr-defined]
            stream.seq.top, stream.top_ts, stream._msgid.top if stream._msgid else -1)
        assert receiver.touched() == [lane]
    else:
        assert isinstance(item, tuple)
        payload, host, port, truncated, got_key, got_lane = item
        assert (payload, host, port, truncated) == (
            datagrams[0], "127.0.0.1", tx.getsockname()[1], False)
        assert got_key == key and got_lane is lane
        assert lane.active == 0  # type: ignore[attr-defined]
        plain = (len(datagrams) == 1 and second.seq == first.seq + 1
                 and second.release in (None, first.release) and not second.userdata
                 and second.caller != "" and b"\\" not in second.text
                 and all(0x20 <= c < 0x7f for c in second.text)
                 and TRIGGER_BYTES.search(second.text) is None
                 and second.ts_usec >= first.ts_usec
                 and (first.release is not None or second.release is None)
                 and (second.sysdata == () or (first.sysdata and second.sysdata == (
                     (b"msgid", b"%d" % (int(first.sysdata[-1][1]) + 1)),))))
        assert not plain, f"C refused the plain next record {second}"


def test_lane_hands_over_in_arrival_order(pair: tuple[socket.socket, socket.socket]) -> None:
    """A run of taken rows comes out before the datagram that broke it; the lane
    is then inactive, so the same sender's next datagrams come out one by one."""
    assert _lane is not None
    rx, tx = pair
    key = _key(pair)
    stream = SenderStream(_sender(tx, rx))
    for d in encode_extended(OutgoingRecord(facility=0, level=6, seq=1, ts_usec=1, text=b"a")):
        stream.feed(d, 1.0)
    lane = _lane_for(stream, key)
    receiver = _lane.Receiver(rx.fileno(), {key: lane}, TRIGGER_BYTES.search,
                              row_type=PrebuiltRow, handed_type=HandedOut)
    seqs = [2, 3, 4, 6, 7]  # 5 is missing
    for s in seqs:
        for d in encode_extended(OutgoingRecord(facility=0, level=6, seq=s, ts_usec=s, text=b"x")):
            tx.sendto(d, rx.getsockname())
    run = _step(receiver, 2.0)
    assert isinstance(run, list) and [row.seq for row in run] == [2, 3, 4]
    for s in (6, 7):
        item = _step(receiver, 2.0)
        assert isinstance(item, HandedOut) and item.payload.startswith(b"6,%d," % s)
        assert (item.host, item.port, item.truncated, item.key) == (
            "127.0.0.1", tx.getsockname()[1], False, key)
        assert item.lane is (lane if s == 6 else None)  # C made it inactive at 6
    assert receiver.step(2.0, True) is None
    assert receiver.counts() == (5, sum(len(d) for s in seqs for d in encode_extended(
        OutgoingRecord(facility=0, level=6, seq=s, ts_usec=s, text=b"x"))))
    assert lane.seq == 4 and lane.fresh == 3 and lane.batch == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("limit", ["seq_limit", "msgid_limit"])
def test_lane_stops_at_an_open_holes_horizon(pair: tuple[socket.socket, socket.socket],
                                              limit: str) -> None:
    """While a hole waits for late arrivals in Python, the lane goes on taking the
    next records, up to its limit; the one past it is Python's (it reports the hole)."""
    assert _lane is not None
    rx, tx = pair
    key = _key(pair)

    def datagrams(seq: int) -> list[bytes]:
        return encode_extended(OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=seq,
                                              text=b"x", sysdata=((b"msgid", b"%d" % seq),)))

    stream = SenderStream(_sender(tx, rx))
    for seq in (1, 3):  # 2 is missing: a seq and a msgid hole
        for d in datagrams(seq):
            stream.feed(d, 1.0)
    lane = _lane_for(stream, key)
    assert (lane.seq_limit, lane.msgid_limit) == (2**63 - 1,) * 2  # type: ignore[attr-defined]
    setattr(lane, limit, 5)
    receiver = _lane.Receiver(rx.fileno(), {key: lane}, TRIGGER_BYTES.search,
                              row_type=PrebuiltRow)
    for seq in (4, 5, 6):
        for d in datagrams(seq):
            tx.sendto(d, rx.getsockname())
    run = _step(receiver, 2.0)
    assert isinstance(run, list) and [row.seq for row in run] == [4, 5]
    item = _step(receiver, 2.0)
    assert isinstance(item, tuple) and item[0].startswith(b"6,6,")
    assert lane.seq == 5 and not lane.active  # type: ignore[attr-defined]


def test_lane_takes_forward_gaps_within_the_window_and_keeps_them_for_python(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """A record after lost ones is taken, its gap kept as an ExpressGap (the
    stream opens the hole when Python syncs); the lane stops at the new hole's
    horizon; a jump past the window, or past the gaps a lane keeps, is Python's."""
    assert _lane is not None
    rx, tx = pair
    key = _key(pair)

    def send(seq: int, msgid: int) -> None:
        for d in encode_extended(OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=seq,
                                                text=b"x", sysdata=((b"msgid", b"%d" % msgid),))):
            tx.sendto(d, rx.getsockname())

    stream = SenderStream(_sender(tx, rx))
    for d in encode_extended(OutgoingRecord(facility=0, level=6, seq=10, ts_usec=10, text=b"a",
                                            sysdata=((b"msgid", b"100"),))):
        stream.feed(d, 1.0)
    lane = _lane_for(stream, key)
    receiver = _lane.Receiver(rx.fileno(), {key: lane}, TRIGGER_BYTES.search,
                              row_type=PrebuiltRow, gap_type=ExpressGap)
    receiver.window = 50
    send(11, 101)
    send(14, 104)  # 12, 13 lost: seq and msgid gaps
    send(15, 106)  # msgid 105 lost only (a fragment's datagram, say)
    send(16, 107)
    run = _step(receiver, 2.0)
    assert isinstance(run, list) and [row.seq for row in run] == [11, 14, 15, 16]
    assert lane.gaps == [ExpressGap(11, 14, 101, 104, 2.0),  # type: ignore[attr-defined]
                         ExpressGap(14, 15, 104, 106, 2.0)]
    assert (lane.seq_limit, lane.msgid_limit) == (11 + 50, 101 + 50)  # type: ignore[attr-defined]
    send(16 + 51, 108)  # past the window: Python's
    item = _step(receiver, 3.0)
    assert isinstance(item, tuple) and item[0].startswith(b"6,67,")
    assert not lane.active  # type: ignore[attr-defined]

    # Python catches the stream up: the same holes as feeding would open.
    fed = SenderStream(_sender(tx, rx))
    for seq, msgid in ((10, 100), (11, 101), (14, 104), (15, 106), (16, 107)):
        for d in encode_extended(OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=seq,
                                                text=b"x", sysdata=((b"msgid", b"%d" % msgid),))):
            fed.feed(d, 1.0 if seq == 10 else 2.0)
    stream.express_advance(lane.seq, lane.ts, lane.msgid, lane.last,  # type: ignore[attr-defined]
                           lane.gaps)  # type: ignore[attr-defined]
    assert stream.snapshot() == {**fed.snapshot(), "last_seen": stream.last_seen}
    assert stream.next_deadline() == fed.next_deadline()

    # A lane keeps MAX_LANE_GAPS gaps at most; the next one is Python's.
    lane = _lane_for(fed, key)
    receiver = _lane.Receiver(rx.fileno(), {key: lane}, TRIGGER_BYTES.search,
                              row_type=PrebuiltRow, gap_type=ExpressGap)
    receiver.window = 1024
    seq, msgid = 16, 107
    for _ in range(17):
        seq, msgid = seq + 2, msgid + 2
        send(seq, msgid)
    run = _step(receiver, 4.0)
    assert isinstance(run, list) and len(run) == 16
    assert len(lane.gaps) == 16  # type: ignore[attr-defined]
    item = _step(receiver, 4.0)
    assert isinstance(item, tuple) and item[0].startswith(b"6,%d," % seq)


def test_lane_names_ipv4_senders_plainly_on_a_dual_stack_socket() -> None:
    assert _lane is not None
    rx = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    rx.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    rx.bind(("::", 0))
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver = _lane.Receiver(rx.fileno(), {}, TRIGGER_BYTES.search, row_type=PrebuiltRow)
        tx.sendto(b"x" * 3000, ("127.0.0.1", rx.getsockname()[1]))
        payload, host, port, truncated, key, lane = _step(receiver, 1.0)  # type: ignore[misc]
        assert (host, port, lane) == ("127.0.0.1", tx.getsockname()[1], None)
        assert len(key) == 28  # the sockaddr_in6 of a v4-mapped address
        assert truncated is True and len(payload) == _lane.DATAGRAM_MAX
    finally:
        rx.close()
        tx.close()


def test_over_its_budget_while_behind_the_lane_sheds_in_order_and_moves_on(
        pair: tuple[socket.socket, socket.socket]) -> None:
    """The C bucket is collector/_budget.py's: a burst, then `rate`; a shed record
    advances the lane (not loss); a crash line is never shed; not behind, no budget."""
    from netconsole.collector._budget import Budgets

    assert _lane is not None
    rx, tx = pair
    key = _key(pair)
    stream = SenderStream(_sender(tx, rx))
    stream.feed(encode_extended(OutgoingRecord(facility=0, level=6, seq=1, ts_usec=10,
                                               text=b"first"))[0], 1.0)
    lane = _lane_for(stream, key)
    receiver = _lane.Receiver(rx.fileno(), {key: lane}, TRIGGER_BYTES.search,
                              row_type=PrebuiltRow)
    receiver.rate, receiver.burst, receiver.hold = 10.0, 3.0, 60.0
    receiver.behind_until = 1e12  # behind: budgets apply
    texts = [b"plain %d" % i for i in range(6)]
    texts.insert(4, b"Kernel panic - not syncing: never shed")
    for i, text in enumerate(texts):
        tx.sendto(encode_extended(OutgoingRecord(facility=0, level=6, seq=2 + i, ts_usec=20 + i,
                                                 text=text))[0], rx.getsockname())
    time.sleep(0.05)
    python = Budgets(rate=10.0, burst=3.0)
    rows: list[PrebuiltRow] = []
    handed: list[object] = []
    while True:
        item = receiver.step(2.0, True)
        if item is None:
            break
        if isinstance(item, list):
            rows.extend(item)
        else:
            handed.append(item)
            lane.seq += 1  # what `settle` does after the Python path took it
            lane.active = 1
    assert [r.text for r in rows] == ["plain 0", "plain 1", "plain 2"]
    assert [python.admit("s", 2.0) for _ in range(4)] == [True, True, True, False]
    assert len(handed) == 1 and b"Kernel panic" in handed[0][0]  # type: ignore[index]
    assert lane.seq == 2 + len(texts) - 1  # past the shed ones: no gap to account
    assert receiver.shedding() == [lane] and lane.shed == len(texts) - 3 - 1
    lane.shed = 0
    receiver.behind_until = 0.0  # caught up: no budget
    tx.sendto(encode_extended(OutgoingRecord(facility=0, level=6, seq=lane.seq + 1,
                                             ts_usec=99, text=b"kept"))[0], rx.getsockname())
    item = _step(receiver, 3.0)
    assert isinstance(item, list) and item[0].text == "kept"
    assert lane.shed == 0


def test_the_receiver_needs_a_tuple_row_type() -> None:
    assert _lane is not None
    for row_type in ({}, {"row_type": list}):
        with pytest.raises(TypeError, match="row_type"):
            _lane.Receiver(0, {}, TRIGGER_BYTES.search, **row_type)


def test_the_c_constants_are_the_python_ones() -> None:
    """Nothing copied by hand: what C fixes at build time, Python checks here."""
    from netconsole.collector import _sockets
    from netconsole.stream import _sender

    assert _lane is not None
    assert _lane.DATAGRAM_MAX == _sockets.DATAGRAM_MAX
    # msgids the Python path accounts are exactly those C can hold (MAX_DIGITS).
    assert _sender._MSGID_ACCOUNTED == 10 ** _lane.MAX_DIGITS
