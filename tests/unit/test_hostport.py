"""`HOST[:PORT]`: the one parser `setup`, `send`, `forward`, `listen --http` and the
receiver API share, and its printer."""

from __future__ import annotations

import pytest

from netconsole._hostport import HostPort, HostPortError, format_hostport, parse_hostport


@pytest.mark.parametrize(("text", "want"), [
    ("10.0.0.5", HostPort(host="10.0.0.5", port=6666)),
    ("10.0.0.5:7000", HostPort(host="10.0.0.5", port=7000)),
    (" 10.0.0.5:7000 ", HostPort(host="10.0.0.5", port=7000)),
    ("logs.example:514", HostPort(host="logs.example", port=514)),
    ("log_sink:514", HostPort(host="log_sink", port=514)),
    ("2001:db8::5", HostPort(host="2001:db8::5", port=6666)),
    ("::1", HostPort(host="::1", port=6666)),
    ("[::1]", HostPort(host="::1", port=6666)),
    ("[2001:db8::5]:7000", HostPort(host="2001:db8::5", port=7000)),
    ("fe80::5%eth0", HostPort(host="fe80::5", port=6666, zone="eth0")),
    ("[fe80::5%eth0]:7000", HostPort(host="fe80::5", port=7000, zone="eth0")),
])
def test_forms_with_a_default_port(text: str, want: HostPort) -> None:
    assert parse_hostport(text, default_port=6666) == want


@pytest.mark.parametrize(("text", "message"), [
    ("", "no host"),
    (":6666", "no host"),
    ("10.0.0.5:0", "port 0 is not between 1 and 65535"),
    ("10.0.0.5:70000", "port 70000 is not between 1 and 65535"),
    ("10.0.0.5:x", "port 'x' is not a number"),
    ("h:port", "port 'port' is not a number"),
    ("h:", "port '' is not a number"),
    ("[::1", "use [IPv6]:PORT"),
    ("[::1]6666", "use [IPv6]:PORT"),
    ("[::1]x", "use [IPv6]:PORT"),
    ("[not-v6]:1", "'not-v6' is not an IPv6 address"),
    ("bad host:80", "'bad host' is not an IP address or host name"),
    ("10.0.0.5%eth0", "only an IPv6 address takes a %zone"),
])
def test_rejects_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(HostPortError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_hostport(text, default_port=6666)


def test_without_a_default_port_the_port_is_required() -> None:
    with pytest.raises(HostPortError, match="is not address:port"):
        parse_hostport("localhost")
    assert parse_hostport("localhost:80") == HostPort(host="localhost", port=80)


def test_a_default_host_fills_an_empty_one() -> None:
    assert parse_hostport(":6680", default_host="127.0.0.1") == HostPort(host="127.0.0.1",
                                                                         port=6680)


def test_an_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_hostport("x:0")


@pytest.mark.parametrize(("host", "port", "text"), [
    ("10.0.0.5", 6666, "10.0.0.5:6666"),
    ("logs", 514, "logs:514"),
    ("2001:db8::5", 7000, "[2001:db8::5]:7000"),
    ("fe80::5%eth0", 1, "[fe80::5%eth0]:1"),
])
def test_format_is_the_inverse(host: str, port: int, text: str) -> None:
    assert format_hostport(host, port) == text
    parsed = parse_hostport(text)
    assert (parsed.scoped, parsed.port) == (host, port)
    assert str(parsed) == text
