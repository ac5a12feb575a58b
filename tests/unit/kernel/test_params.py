"""The netconsole= grammar: every failure point, every era's message (§2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netconsole.kernel.addresses import mac_pton, parse_ip
from netconsole.kernel.cmdline import parse_cmdline
from netconsole.kernel.modprobe import ModprobeKind, parse_modprobe_conf
from netconsole.kernel.netconsole_param import (
    EINVAL,
    EPERM,
    ErrorKind,
    Features,
    ParseEra,
    TargetParams,
    era_for,
    format_param,
    format_target,
    parse_param,
    parse_target,
    suggest_fix,
)
from netconsole.kernel.version import parse_release

V4_4 = parse_release("4.4.0-1072-aws")
V6_8 = parse_release("6.8.0-31-generic")
V6_16 = parse_release("6.16.0")
V2_6 = parse_release("2.6.32")
V4_1 = parse_release("4.1.0")
V3_8 = parse_release("3.8.0")


def test_parse_target_reference_example() -> None:
    t = parse_target("4444@10.0.0.1/eth1,9353@10.0.0.2/12:34:56:78:9a:bc", V4_4)
    assert t.error is None
    assert t.params == TargetParams(local_port=4444, local_ip="10.0.0.1", dev_name="eth1",
                                    remote_port=9353, remote_ip="10.0.0.2",
                                    remote_mac="12:34:56:78:9a:bc")


def test_parse_target_all_defaults() -> None:
    p = parse_target("@/,@10.0.0.2/").params
    assert p is not None
    assert (p.effective_local_port, p.effective_remote_port, p.effective_dev,
            p.effective_remote_mac) == (6665, 6666, "eth0", "ff:ff:ff:ff:ff:ff")


def test_parse_target_ipv6() -> None:
    p = parse_target("@/,@fd00:1:2:3::1/").params
    assert p is not None and p.ipv6


def test_parse_target_extended_and_release() -> None:
    p = parse_target("+r6666@/eth0,6666@10.0.0.2/", V6_8).params
    assert p is not None and p.extended and p.release and p.local_port == 6666


def test_parse_target_dev_by_mac_on_6_15() -> None:
    p = parse_target("4444@10.0.0.1/22:33:44:55:66:77,9353@10.0.0.2/", V6_16).params
    assert p is not None and p.dev_mac == "22:33:44:55:66:77" and p.dev_name is None


def test_parse_target_bad_dev_mac_on_6_15() -> None:
    t = parse_target("@/zz:33:44:55:66:77,@10.0.0.2/", V6_16)
    assert t.error is not None and t.error.kind is ErrorKind.BAD_DEV_MAC
    assert t.error.message == ("netconsole: netconsole: couldn't parse config at "
                               "'zz:33:44:55:66:77'!")


def test_parse_target_dev_mac_before_6_15_is_a_name() -> None:
    t = parse_target("@/22:33:44:55:66:77,@10.0.0.2/", V6_8)
    assert t.params is not None and t.params.dev_name == "22:33:44:55:66:"
    assert any("6.15" in n for n in t.notes)


@pytest.mark.parametrize(
    ("text", "kind", "rest"),
    [
        ("", ErrorKind.EMPTY_TARGET, ""),
        ("6665/eth0,6666/10.0.0.2/", ErrorKind.MISSING_AT, "6665/eth0,6666/10.0.0.2/"),
        ("6665/eth0,6666@10.0.0.2/", ErrorKind.BAD_LOCAL_PORT, "6665/eth0,6666"),
        ("abc@/,@10.0.0.2/", ErrorKind.BAD_LOCAL_PORT, "abc"),
        ("70000@/,@10.0.0.2/", ErrorKind.BAD_LOCAL_PORT, "70000"),
        ("@10.0.0.1", ErrorKind.MISSING_SLASH_AFTER_LOCAL_IP, "10.0.0.1"),
        ("@10.0.0/eth0,@10.0.0.2/", ErrorKind.BAD_LOCAL_IP, "10.0.0"),
        ("@/eth0", ErrorKind.MISSING_COMMA, "eth0"),
        ("@/eth0,6666", ErrorKind.MISSING_AT_REMOTE, "6666"),
        ("@/eth0,66x@10.0.0.2/", ErrorKind.BAD_REMOTE_PORT, "66x"),
        ("@/ens5,6666@10.0.0.5", ErrorKind.MISSING_SLASH_AFTER_REMOTE_IP, "10.0.0.5"),
        ("@/,@/", ErrorKind.MISSING_REMOTE_IP, ""),
        ("@/,@10.0.0.256/", ErrorKind.BAD_REMOTE_IP, "10.0.0.256"),
        ("@10.0.0.1/,@fd00::1/", ErrorKind.FAMILY_MISMATCH, "fd00::1"),
        ("@fd00::2/,@10.0.0.2/", ErrorKind.FAMILY_MISMATCH, "10.0.0.2"),
        ("@/,@10.0.0.2/12:34:56", ErrorKind.BAD_REMOTE_MAC, "12:34:56"),
        ("@/,@10.0.0.2/12-34-56-78-9a-bc", ErrorKind.BAD_REMOTE_MAC, "12-34-56-78-9a-bc"),
    ],
)
def test_parse_target_failure_points(text: str, kind: ErrorKind, rest: str) -> None:
    t = parse_target(text, V4_4)
    assert t.error is not None and t.params is None
    assert (t.error.kind, t.error.rest, t.error.errno) == (kind, rest, EPERM)
    assert t.error.message == f"netpoll: netconsole: couldn't parse config at '{rest}'!"
    assert t.error.explanation


def test_parse_target_message_per_era() -> None:
    text = "@/,@10.0.0.2"
    assert parse_target(text, V2_6).error.message == (  # type: ignore[union-attr]
        "netconsole: couldn't parse config at 10.0.0.2!")
    assert parse_target(text, V4_4).error.message == (  # type: ignore[union-attr]
        "netpoll: netconsole: couldn't parse config at '10.0.0.2'!")
    assert parse_target(text, V6_16).error.message == (  # type: ignore[union-attr]
        "netconsole: netconsole: couldn't parse config at '10.0.0.2'!")
    assert era_for(None) is ParseEra.NETCONSOLE


def test_parse_target_release_without_extended() -> None:
    t = parse_target("r6666@/eth0,6666@10.0.0.2/", V6_8)
    assert t.error is not None
    assert t.error.kind is ErrorKind.RELEASE_NEEDS_EXTENDED and t.error.errno == EINVAL
    assert t.error.message == ("netconsole: Netconsole configuration error. Release feature "
                               "requires extended log message")


def test_parse_target_release_flag_wrong_order() -> None:
    t = parse_target("r+@/,@10.0.0.2/", V6_8)
    assert t.error is not None and t.error.kind is ErrorKind.RELEASE_NEEDS_EXTENDED
    assert suggest_fix(t) == "+r@/,@10.0.0.2/"


def test_parse_target_release_allowed_with_extended_default() -> None:
    feat = Features.for_kernel(V6_8, extended_default=True)
    t = parse_target("r@/,@10.0.0.2/", V6_8, features=feat)
    assert t.params is not None and t.params.release and t.params.extended


def test_parse_target_r_before_6_6_breaks_the_port() -> None:
    t = parse_target("+r6666@/eth0,6666@10.0.0.2/", V4_4)
    assert t.error is not None and t.error.kind is ErrorKind.BAD_LOCAL_PORT
    assert t.error.rest == "r6666"


def test_parse_target_plus_before_4_2_is_part_of_the_port() -> None:
    t = parse_target("+6666@/eth0,6666@10.0.0.2/", V4_1)
    assert t.params is not None and not t.params.extended and t.params.local_port == 6666
    assert t.notes


def test_parse_target_lenient_ports_before_3_9() -> None:
    t = parse_target("66x@/eth0,6666@10.0.0.2/", V3_8)
    assert t.params is not None and t.params.local_port == 66


def test_parse_target_whitespace_warning() -> None:
    t = parse_target("@/eth0, 6666@10.0.0.2/", V4_4)
    assert t.warnings == ("netpoll: netconsole: warning: whitespace is not allowed",)
    assert t.error is not None and t.error.kind is ErrorKind.BAD_REMOTE_PORT


def test_parse_target_ipv6_without_config_ipv6() -> None:
    feat = Features.for_kernel(V4_4, config_ipv6=False)
    t = parse_target("@/,@fd00::1/", V4_4, features=feat)
    assert t.error is not None and t.error.kind is ErrorKind.IPV6_UNSUPPORTED


def test_parse_target_long_dev_name_is_cut() -> None:
    t = parse_target("@/averyveryverylongname,@10.0.0.2/")
    assert t.params is not None and t.params.dev_name == "averyveryverylo"


def test_parse_target_banner_4_x() -> None:
    t = parse_target("@/ens5,6666@10.0.0.5/", V4_4)
    assert t.messages == (
        "netpoll: netconsole: local port 6665",
        "netpoll: netconsole: local IPv4 address 0.0.0.0",
        "netpoll: netconsole: interface 'ens5'",
        "netpoll: netconsole: remote port 6666",
        "netpoll: netconsole: remote IPv4 address 10.0.0.5",
        "netpoll: netconsole: remote ethernet address ff:ff:ff:ff:ff:ff",
    )


def test_parse_target_banner_6_16() -> None:
    t = parse_target("4444@10.0.0.1/eth1,9353@10.0.0.2/12:34:56:78:9a:bc", V6_16)
    assert t.messages[2:4] == ("netconsole: netconsole: interface name 'eth1'",
                               "netconsole: netconsole: local ethernet address "
                               "'ff:ff:ff:ff:ff:ff'")


def test_parse_param_splits_targets() -> None:
    p = parse_param("@/,@10.0.0.2/;@/eth1,6892@10.0.0.3/")
    assert p.ok and [t.params.remote_ip for t in p.targets if t.params] == ["10.0.0.2",
                                                                           "10.0.0.3"]


def test_parse_param_trailing_semicolon_is_an_empty_target() -> None:
    p = parse_param("@/,@10.0.0.2/;")
    assert not p.ok and p.errors[0].kind is ErrorKind.EMPTY_TARGET


def test_parse_param_too_long() -> None:
    value = ";".join(["@/eth0,6666@10.0.0.2/"] * 13)  # 272 bytes
    p = parse_param(value)
    assert p.too_long and len(p.kept) == 255 and not p.ok


def test_parse_param_255_bytes_fit() -> None:
    value = "@/,@10.0.0.2/" + "a" * 0
    value = value + ";" + "@/,@10.0.0.3/"
    p = parse_param(value.ljust(255, "x")[:255])
    assert not p.too_long


def test_parse_param_empty_is_no_targets() -> None:
    assert parse_param("").targets == () and parse_param("").ok


def test_suggest_fix_missing_slash() -> None:
    assert suggest_fix(parse_target("@/ens5,6666@10.0.0.5")) == "@/ens5,6666@10.0.0.5/"


def test_mac_pton() -> None:
    assert mac_pton("AA:bb:cc:dd:ee:ff") == "aa:bb:cc:dd:ee:ff"
    assert mac_pton("aa:bb:cc:dd:ee:ffjunk") == "aa:bb:cc:dd:ee:ff"
    assert mac_pton("aa:bb:cc:dd:ee") is None
    assert mac_pton("aa-bb-cc-dd-ee-ff") is None


def test_parse_ip() -> None:
    assert parse_ip("10.0.0.1") == 0
    assert parse_ip("010.000.000.001") == 0  # in4_pton takes leading zeros
    assert parse_ip("fe80::1") == 1
    assert parse_ip("fe80::1%eth0") == -1
    assert parse_ip("fd00::1", ipv6_supported=False) == -1
    assert parse_ip("host.example") == -1


def test_parse_cmdline_quotes_and_double_dash() -> None:
    args = parse_cmdline('ro quiet netconsole="@/,@10.0.0.2/" "a=b c" -- netconsole=no')
    assert [(a.key, a.value) for a in args] == [("ro", None), ("quiet", None),
                                                ("netconsole", "@/,@10.0.0.2/"),
                                                ("a", "b c")]


def test_parse_modprobe_conf() -> None:
    text = ("# comment\noptions netconsole netconsole=@/eth0,6666@10.0.0.2/ \\\n"
            "  oops_only=1\nblacklist netconsole\ninstall netconsole /bin/true\n"
            "options e1000e IntMode=1\n")
    found = parse_modprobe_conf(text)
    assert [d.kind for d in found] == [ModprobeKind.OPTIONS, ModprobeKind.BLACKLIST,
                                       ModprobeKind.INSTALL]
    assert found[0].line == 2
    assert dict(found[0].options) == {"netconsole": "@/eth0,6666@10.0.0.2/", "oops_only": "1"}


# --- round trip -------------------------------------------------------------------

_octet = st.integers(0, 255).map(str)
_ipv4 = st.tuples(_octet, _octet, _octet, _octet).map(".".join)
_ipv6 = st.ip_addresses(v=6).map(str)
_mac = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda b: ":".join(f"{x:02x}" for x in b))
_port = st.none() | st.integers(0, 65535)
_dev = st.none() | st.from_regex(r"[a-z][a-z0-9]{0,14}", fullmatch=True)


@st.composite
def _targets(draw: st.DrawFn) -> TargetParams:
    v6 = draw(st.booleans())
    ip = _ipv6 if v6 else _ipv4
    extended = draw(st.booleans())
    return TargetParams(
        extended=extended, release=extended and draw(st.booleans()),
        local_port=draw(_port), local_ip=draw(st.none() | ip), dev_name=draw(_dev),
        remote_port=draw(_port), remote_ip=draw(ip), remote_mac=draw(st.none() | _mac))


@given(st.lists(_targets(), min_size=1, max_size=4))
def test_format_parse_round_trip(targets: list[TargetParams]) -> None:
    text = format_param(targets)
    parsed = parse_param(text)
    if parsed.too_long:
        return
    assert parsed.ok
    assert [t.params for t in parsed.targets] == targets
    assert format_param([t.params for t in parsed.targets if t.params]) == text


@given(_targets())
def test_format_target_parse_round_trip_per_target(t: TargetParams) -> None:
    assert parse_target(format_target(t)).params == t


@given(st.text(max_size=80))
def test_parse_param_never_raises(text: str) -> None:
    p = parse_param(text)
    for t in p.targets:
        assert (t.params is None) != (t.error is None)
