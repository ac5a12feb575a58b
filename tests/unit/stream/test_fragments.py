"""ncfrag reassembly against a hostile sender: conflicting copies of a byte range are
counted and the first copy wins; overlaps never cost more memory than the record."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netconsole.stream import Rejected, SenderStream, Tally
from netconsole.stream._fragments import MAX_PIECES, Reassembler
from netconsole.wire import Flag, Fragment, Header, RejectReason, WireError
from tests.helpers import SENDER

HEADER = Header(release=None, facility=0, level=6, seq=7, ts_usec=1000, flag=Flag.NONE)


def frag(offset: int, data: bytes, total: int, header: Header = HEADER) -> Fragment:
    return Fragment(header=header, offset=offset, total=total, data=data)


def wire(offset: int, data: bytes, total: int, seq: int = 7) -> bytes:
    return b"6,%d,1000,-,ncfrag=%d/%d;" % (seq, offset, total) + data


def test_conflicting_copy_is_counted_and_the_first_wins() -> None:
    s = SenderStream(SENDER)
    s.feed(wire(0, b"hello ", 12), 0.0)
    s.feed(wire(3, b"LO WO", 12), 0.0)  # bytes 3..6 again, but different
    s.feed(wire(6, b"world\n", 12), 0.0)
    events = s.events()
    [rej] = [e for e in events if isinstance(e, Rejected)]
    assert rej.reason is RejectReason.FRAGMENT_MISMATCH and "differ" in rej.detail
    tally = Tally()
    tally.count(events)
    assert tally.rejected == {"fragment_mismatch": 1} and tally.records == 1
    [record] = [e for e in events if not isinstance(e, Rejected)]
    assert record.text == b"hello world" and record.complete  # type: ignore[union-attr]


def test_same_bytes_again_are_no_conflict() -> None:
    s = SenderStream(SENDER)
    for off, data in ((0, b"hello "), (3, b"lo wo"), (0, b"hello "), (6, b"world\n")):
        s.feed(wire(off, data, 12), 0.0)
    events = s.events()
    assert not [e for e in events if isinstance(e, Rejected)]
    assert [e.text for e in events] == [b"hello world"]  # type: ignore[union-attr]


def test_conflicting_header_is_counted() -> None:
    r = Reassembler()
    r.add(frag(0, b"ab", 4), 0.0)
    other = Header(release="6.6.6", facility=0, level=0, seq=7, ts_usec=1000, flag=Flag.NONE)
    try:
        r.add(frag(2, b"cd", 4, other), 0.0)
    except WireError as exc:
        assert exc.reason is RejectReason.FRAGMENT_MISMATCH
    else:
        raise AssertionError("a fragment with another header was merged")


def test_overlapping_bomb_holds_at_most_the_record() -> None:
    r = Reassembler()
    total = 100_000
    refused = 0
    for off in range(1, 2000):  # every piece overlaps the previous; offset 0 never comes
        try:
            r.add(frag(off, b"x" * 60_000, total), 0.0)
        except WireError as exc:
            assert exc.reason is RejectReason.TOO_MANY_PENDING
            refused += 1
    assert refused == 1999 - MAX_PIECES
    [part] = r.pending.values()
    assert part.received == r.buffered_bytes <= total
    assert sum(len(p) for p in part.pieces.values()) == part.received


def test_pieces_per_record_are_bounded() -> None:
    s = SenderStream(SENDER)
    for i in range(MAX_PIECES + 10):
        s.feed(wire(2 * i, b"x", 100_000), 0.0)  # disjoint one-byte pieces
    rejected = [e for e in s.events() if isinstance(e, Rejected)]
    assert [e.reason for e in rejected] == [RejectReason.TOO_MANY_PENDING] * 10


# -- the model: first writer wins per byte, a contradicting fragment is dropped whole --

pieces = st.lists(
    st.tuples(st.integers(0, 63), st.integers(1, 32), st.booleans()), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=64, max_size=64), pieces)
def test_reassembly_matches_first_copy_wins_model(body: bytes,
                                                  plan: list[tuple[int, int, bool]]) -> None:
    total = len(body)
    r = Reassembler()
    model: dict[int, int] = {}  # offset -> the byte the first copy brought
    for off, size, corrupt in plan:
        data = bytearray(body[off : off + size])
        if corrupt:
            data[0] ^= 0xFF
        expect_conflict = any(model.get(off + i, b) != b for i, b in enumerate(data))
        try:
            got, _ = r.add(frag(off, bytes(data), total), 0.0)
        except WireError as exc:
            assert exc.reason is RejectReason.FRAGMENT_MISMATCH and expect_conflict
            continue
        assert not expect_conflict
        for i, b in enumerate(data):
            model.setdefault(off + i, b)
        if got is not None:
            assert len(model) == total
            assert got.assemble() == (bytes(model[i] for i in range(total)), ())
            model = {}  # the next piece of this key starts a new record
    if model:
        [part] = r.flush()
        held, missing = part.assemble()
        assert held == bytes(model[i] for i in sorted(model))
        assert part.received == len(model)
        assert sum(e - s for s, e in missing) == total - len(model)
