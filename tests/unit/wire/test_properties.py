"""Property tests: decode(encode(r)) == r, and every datagram fits in 1000 bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netconsole.stream import Record, SenderStream
from netconsole.wire import (
    SYSDATA_ORDER,
    Flag,
    KernelVersion,
    OutgoingRecord,
    encode_extended,
)
from tests.helpers import SENDER, feed_all

_key = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="=/\\"),
               min_size=1, max_size=53).map(str.encode)
# configfs values: stored raw, newline stripped, not escaped on the wire (§3.4),
# so a receiver can only give back what has no backslash or control byte.
_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="\\"),
                 min_size=1, max_size=199).map(str.encode)
_release = st.from_regex(r"\A[0-9]\.[0-9]{1,2}\.[0-9a-z+_.-]{0,40}\Z").filter(
    lambda s: not s.isdigit())


@st.composite
def records(draw: st.DrawFn) -> OutgoingRecord:
    sys_keys = draw(st.lists(st.sampled_from(SYSDATA_ORDER), unique=True))
    sysdata = tuple((k, draw(_value)) for k in SYSDATA_ORDER if k in sys_keys)
    return OutgoingRecord(
        facility=draw(st.integers(0, 23)),
        level=draw(st.integers(0, 7)),
        seq=draw(st.integers(0, 2**63 - 1)),
        ts_usec=draw(st.integers(0, 2**63 - 1)),
        text=draw(st.binary(max_size=3000)),
        flag=draw(st.sampled_from([Flag.NONE, Flag.CONT])),
        caller=draw(st.none() | st.from_regex(r"\A[TC][0-9]{1,7}\Z")),
        release=draw(st.none() | _release),
        dictionary=tuple(draw(st.lists(
            st.tuples(st.sampled_from([b"SUBSYSTEM", b"DEVICE"]), st.binary(min_size=1,
                                                                         max_size=60)),
            max_size=2))),
        userdata=tuple(draw(st.lists(st.tuples(_key, _value), max_size=20))),
        sysdata=sysdata,
    )


def _decode(datagrams: list[bytes]) -> list[Record]:
    events = feed_all(SenderStream(SENDER), datagrams)
    return [e for e in events if isinstance(e, Record)]


@settings(max_examples=300, deadline=None)
@given(records())
def test_decode_of_encode_is_identity(r: OutgoingRecord) -> None:
    datagrams = encode_extended(r, KernelVersion(7, 2))
    assert all(len(d) <= 1000 for d in datagrams)
    [got] = _decode(datagrams)
    assert got.complete
    assert (got.facility, got.level, got.seq, got.ts_usec, got.flag, got.caller, got.release) == (
        r.facility, r.level, r.seq, r.ts_usec, r.flag, r.caller, r.release)
    assert got.text == r.text
    assert got.fields == r.dictionary + r.userdata + r.sysdata


@settings(max_examples=150, deadline=None)
@given(records(), st.randoms(use_true_random=False))
def test_fragments_in_any_order_and_twice_give_the_same_record(r: OutgoingRecord,
                                                               rnd: object) -> None:
    datagrams = encode_extended(r)
    shuffled = datagrams + datagrams[:1]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    got = _decode(shuffled)
    assert len(got) == 1
    assert got[0].text == r.text
    assert got[0].fields == r.dictionary + r.userdata + r.sysdata
