"""decode_datagram: the header grammar, bodies, fragments and what it rejects."""

from __future__ import annotations

import pytest

from netconsole.wire import (
    BasicChunk,
    ExtendedMessage,
    Flag,
    Fragment,
    RejectReason,
    WireError,
    decode_datagram,
    escape,
    parse_body,
    unescape,
)


def test_decode_plain_extended_record() -> None:
    d = decode_datagram(b"6,416,1758426,-;the first chunk, the 2nd chunk.\n")
    assert isinstance(d, ExtendedMessage)
    h = d.header
    assert (h.release, h.facility, h.level, h.seq, h.ts_usec, h.flag) == (
        None, 0, 6, 416, 1758426, Flag.NONE)
    assert d.body.text == b"the first chunk, the 2nd chunk."
    assert d.body.fields == ()


def test_decode_user_facility_prefix() -> None:
    d = decode_datagram(b"30,383,2385135,-;lab: daemon info\n")
    assert isinstance(d, ExtendedMessage)
    assert (d.header.facility, d.header.level, d.header.prefix) == (3, 6, 30)


def test_decode_release_prefix() -> None:
    d = decode_datagram(b"6.12.117+deb12-amd64,14,381,4160074,-;x\n")
    assert isinstance(d, ExtendedMessage)
    assert d.header.release == "6.12.117+deb12-amd64"
    assert d.header.seq == 381


def test_decode_release_that_starts_with_digits_and_has_no_dot() -> None:
    d = decode_datagram(b"6abc,6,1,2,-;x\n")
    assert isinstance(d, ExtendedMessage)
    assert d.header.release == "6abc"


def test_decode_caller_and_unknown_fields_are_kept_in_order() -> None:
    d = decode_datagram(b"4,9,10,c,caller=T42,future=1,flag2;text\n")
    assert isinstance(d, ExtendedMessage)
    assert d.header.caller == "T42"
    assert d.header.flag is Flag.CONT
    assert d.header.extra == ("future=1", "flag2")


def test_decode_pre_4_9_plus_flag() -> None:
    d = decode_datagram(b"6,1,2,+;piece\n")
    assert isinstance(d, ExtendedMessage)
    assert d.header.flag is Flag.CONT_FRAGMENT


def test_decode_dictionary_lines_in_wire_order() -> None:
    d = decode_datagram(
        b"6,407,2495658,-;platform labtrig: hi\n SUBSYSTEM=platform\n DEVICE=+platform:labtrig\n"
        b" key1=value1\n host=labguest\n cpu=0\n")
    assert isinstance(d, ExtendedMessage)
    assert d.body.fields == ((b"SUBSYSTEM", b"platform"), (b"DEVICE", b"+platform:labtrig"),
                             (b"key1", b"value1"), (b"host", b"labguest"), (b"cpu", b"0"))


def test_decode_unescapes_text_exactly() -> None:
    d = decode_datagram(b"14,383,1,-;tab[\\x09] backslash[\\x5c] utf8[caf\\xc3\\xa9] "
                        b"del[\\x7f] esc[\\x1b]\n")
    assert isinstance(d, ExtendedMessage)
    assert d.body.text == "tab[\t] backslash[\\] utf8[café] del[\x7f] esc[\x1b]".encode()


def test_decode_embedded_newline_is_one_record() -> None:
    d = decode_datagram(b"14,384,1,-;first\\x0asecond\n")
    assert isinstance(d, ExtendedMessage)
    assert d.body.text == b"first\nsecond"


def test_decode_fragment() -> None:
    d = decode_datagram(b"6.12.117+deb12-amd64,14,387,4251343,-,ncfrag=949/993;930:abcd")
    assert isinstance(d, Fragment)
    assert (d.offset, d.total, d.data) == (949, 993, b"930:abcd")
    assert d.header.release == "6.12.117+deb12-amd64"
    assert d.header.extra == ()


@pytest.mark.parametrize(
    "payload",
    [
        b"6,1,2,-,ncfrag=abc;x",
        b"6,1,2,-,ncfrag=1/2/3;x",
        b"6,1,2,-,ncfrag=0/4;12345",
        b"6,1,2,-,ncfrag=0/10;",
        b"6,1,2,-,ncfrag=0/10,ncfrag=0/10;x",
    ],
)
def test_decode_rejects_malformed_ncfrag(payload: bytes) -> None:
    with pytest.raises(WireError) as exc:
        decode_datagram(payload)
    assert exc.value.reason is RejectReason.BAD_NCFRAG


def test_decode_rejects_huge_ncfrag_total() -> None:
    with pytest.raises(WireError) as exc:
        decode_datagram(b"6,1,2,-,ncfrag=0/999999999;x")
    assert exc.value.reason is RejectReason.FRAGMENT_TOO_LARGE


def test_decode_rejects_header_without_semicolon() -> None:
    with pytest.raises(WireError) as exc:
        decode_datagram(b"6,1,2,-,caller=T1 and no end")
    assert exc.value.reason is RejectReason.BAD_HEADER


def test_decode_rejects_empty() -> None:
    with pytest.raises(WireError) as exc:
        decode_datagram(b"")
    assert exc.value.reason is RejectReason.EMPTY


@pytest.mark.parametrize(
    "payload",
    [
        b"[    4.463138] lab[basic]: level0 emerg via /dev/kmsg\n",
        b"<6>[    1.000000] hi\n",
        b"8139too 0000:00:03.0 eth0: link up, 100Mbps; full duplex\n",
        b"abcd|0970\n",
        b"12,34 not a header;\n",
    ],
)
def test_decode_console_text_is_basic(payload: bytes) -> None:
    assert decode_datagram(payload) == BasicChunk(data=payload)


def test_parse_body_unterminated_and_odd_lines() -> None:
    assert parse_body(b"cut sh").terminated is False
    body = parse_body(b"t\n k=v\nodd line\n noequals\n")
    assert body.fields == ((b"k", b"v"), (b"", b"odd line"), (b"", b" noequals"))


def test_escape_round_trip_all_bytes() -> None:
    every = bytes(range(256))
    assert unescape(escape(every)) == every
    assert escape(b"\\") == b"\\x5c"
    assert escape(b"plain text") == b"plain text"


def test_unescape_keeps_foreign_backslashes() -> None:
    assert unescape(b"a\\qb\\x4") == b"a\\qb\\x4"


@pytest.mark.parametrize("payload", [
    b"6,18446744073709551616,1000,-;x",  # seq 2**64
    b"6,9223372036854775808,1000,-;x",  # seq 2**63
    b"9223372036854775808,1,1000,-;x",  # the prefix
    b"6,1,18446744073709551616,-;x",  # ts_usec
    b"6.1.0,6,1," + b"9" * 5000 + b",-;x",  # far past what int() takes at once
    b"6,1," + b"1" * 25 + b",-,ncfrag=0/10;0123456789",
], ids=["seq", "seq-2**63", "prefix", "ts_usec", "5000-digits", "fragment"])
def test_decode_rejects_header_numbers_a_store_cannot_hold(payload: bytes) -> None:
    with pytest.raises(WireError) as exc:
        decode_datagram(payload)
    assert exc.value.reason is RejectReason.NUMBER_TOO_LARGE


def test_decode_takes_the_largest_header_numbers_a_store_holds() -> None:
    d = decode_datagram(b"9223372036854775807,9223372036854775807,9223372036854775807,-;x")
    assert isinstance(d, ExtendedMessage)
    assert d.header.prefix == d.header.seq == d.header.ts_usec == 2**63 - 1
