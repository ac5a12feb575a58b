"""The encoder against the worked examples of kernel-netconsole.md §4.6–§4.7."""

from __future__ import annotations

import pytest

from netconsole.wire import (
    EncodeError,
    Flag,
    KernelVersion,
    OutgoingRecord,
    encode_basic,
    encode_extended,
    format_console_text,
)


def rec(**kw: object) -> OutgoingRecord:
    base: dict[str, object] = dict(facility=0, level=6, seq=1000, ts_usec=123456789, text=b"")
    base.update(kw)
    return OutgoingRecord(**base)  # type: ignore[arg-type]


def test_encode_extended_exactly_1000_bytes_is_not_fragmented() -> None:
    out = encode_extended(rec(text=b"A" * 980))
    assert out == [b"6,1000,123456789,-;" + b"A" * 980 + b"\n"]
    assert len(out[0]) == 1000


def test_encode_extended_1001_bytes_is_fragmented() -> None:
    out = encode_extended(rec(text=b"A" * 981))
    assert len(out) == 2
    assert out[0].startswith(b"6,1000,123456789,-,ncfrag=0/982;")
    assert all(len(d) <= 1000 for d in out)


def test_encode_extended_release_and_userdata_example() -> None:
    out = encode_extended(
        rec(text=b"A" * 980, release="6.9.0", userdata=((b"k", b"v"),)), KernelVersion(6, 9)
    )
    assert out == [
        b"6.9.0,6,1000,123456789,-,ncfrag=0/986;" + b"A" * 962,
        b"6.9.0,6,1000,123456789,-,ncfrag=962/986;" + b"A" * 18 + b"\n k=v\n",
    ]
    assert [len(d) for d in out] == [1000, 64]


def test_encode_extended_split_inside_sysdata_line() -> None:
    out = encode_extended(rec(
        text=b"B" * 900, caller="T4242",
        userdata=((b"datacenter", b"dc1"), (b"rack", b"r42")),
        sysdata=((b"cpu", b"17"), (b"taskname", b"kworker/17:1"), (b"msgid", b"123456")),
    ))
    assert [len(d) for d in out] == [1000, 64]
    assert out[0].startswith(b"6,1000,123456789,-,caller=T4242,ncfrag=0/972;")
    assert out[0].endswith(b"rack=r42\n cpu=17\n taskname=kworker/17")
    assert out[1] == b"6,1000,123456789,-,caller=T4242,ncfrag=955/972;:1\n msgid=123456\n"


def test_encode_extended_single_datagram_with_userdata_and_sysdata() -> None:
    out = encode_extended(OutgoingRecord(
        facility=1, level=4, seq=607, ts_usec=22085407756, text=b"This is a message",
        userdata=((b"foo", b"bar"), (b"qux", b"baz")),
        sysdata=((b"cpu", b"3"), (b"taskname", b"echo"), (b"release", b"6.17.0"),
                 (b"msgid", b"1")),
    ))
    assert out == [b"12,607,22085407756,-;This is a message\n foo=bar\n qux=baz\n cpu=3\n"
                   b" taskname=echo\n release=6.17.0\n msgid=1\n"]
    assert len(out[0]) == 104


def test_encode_extended_escapes_like_printk() -> None:
    out = encode_extended(OutgoingRecord(facility=0, level=4, seq=77, ts_usec=9000001,
                                         text="tab\there back\\slash café \x1b[0m".encode()))
    assert out == [b"4,77,9000001,-;tab\\x09here back\\x5cslash caf\\xc3\\xa9 \\x1b[0m\n"]


def test_encode_extended_dictionary_is_escaped_userdata_is_not() -> None:
    out = encode_extended(rec(text=b"x", dictionary=((b"DEVICE", b"+pci:0000:00:19.0\x01"),),
                              userdata=((b"k", b"a\\b"),)))
    assert out == [b"6,1000,123456789,-;x\n DEVICE=+pci:0000:00:19.0\\x01\n k=a\\b\n"]


def test_encode_extended_empty_userdata_value_is_left_out() -> None:
    assert encode_extended(rec(text=b"x", userdata=((b"k", b""), (b"j", b"1")))) == [
        b"6,1000,123456789,-;x\n j=1\n"
    ]


@pytest.mark.parametrize(
    ("kernel", "kw", "message"),
    [
        ("4.1", {}, "4.2"),
        ("4.9", {"flag": Flag.CONT_FRAGMENT}, "4.2-4.8"),
        ("5.0", {"caller": "T1"}, "caller"),
        ("6.5", {"release": "6.5.0"}, "release"),
        ("6.8", {"userdata": ((b"k", b"v"),)}, "userdata"),
        ("6.14", {"sysdata": ((b"cpu", b"1"),)}, "cpu"),
        ("6.16", {"sysdata": ((b"msgid", b"1"),)}, "msgid"),
        ("6.12", {"dictionary": ((b"FOO", b"1"),)}, "SUBSYSTEM"),
        ("7.0", {"sysdata": ((b"msgid", b"1"), (b"cpu", b"1"))}, "order"),
    ],
)
def test_encode_extended_refuses_what_the_era_cannot_send(
    kernel: str, kw: dict[str, object], message: str
) -> None:
    with pytest.raises(EncodeError, match=message):
        encode_extended(rec(text=b"x", **kw), KernelVersion.parse(kernel))


def test_encode_extended_old_eras_allow_their_own_features() -> None:
    assert encode_extended(rec(text=b"x", flag=Flag.CONT_FRAGMENT,
                               dictionary=((b"FOO", b"1"),)), KernelVersion(4, 4)) == [
        b"6,1000,123456789,+;x\n FOO=1\n"
    ]


def test_kernel_version_parse_distro_strings() -> None:
    assert KernelVersion.parse("6.12.117+deb12-amd64") == KernelVersion(6, 12)
    assert KernelVersion.parse("4.4.0-1072-aws") == KernelVersion(4, 4)
    with pytest.raises(EncodeError):
        KernelVersion.parse("banana")


def test_format_console_text_and_basic_chunking() -> None:
    text = format_console_text(b"B" * 1100, ts_usec=12_345_678)
    assert text.startswith(b"[   12.345678] BBB")
    assert len(text) == 15 + 1100 + 1
    chunks = encode_basic(text)
    assert [len(c) for c in chunks] == [1000, 116]
    assert chunks[1].endswith(b"\n")


def test_format_console_text_multi_line_and_prefixes() -> None:
    assert format_console_text(b"a\nb", ts_usec=1, caller="T12", syslog_prefix=6) == (
        b"<6>[    0.000001][   T12] a\n<6>[    0.000001][   T12] b\n"
    )
    assert format_console_text(b"plain") == b"plain\n"
