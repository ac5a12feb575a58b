"""`HOST[:PORT]`, the one way every command reads and prints an address with a port.

HOST is an IP address or a host name. An IPv6 address goes in brackets when a
port follows (`[fd00::5]:6666`) and may stand bare without one (`fd00::5`); an
IPv6 address may name its interface (`fe80::5%eth0`). Errors are `HostPortError`
(a ValueError) whose message starts with the text as given; callers add what it
was for (`--to`, `receiver`, `http:`).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# Labels of letters, digits, '-' and '_' ('_' is not DNS hostname syntax, but
# /etc/hosts and container networks resolve such names).
_HOSTNAME = re.compile(r"(?!-)[\w-]{1,63}(?<!-)(\.(?!-)[\w-]{1,63}(?<!-))*\.?", re.ASCII)


class HostPortError(ValueError):
    """Text that is not `HOST[:PORT]`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HostPort:
    host: str
    """An IP address or a host name, without brackets or zone."""
    port: int
    zone: str | None = None
    """The interface of an IPv6 address (`eth0` of `fe80::5%eth0`)."""

    @property
    def scoped(self) -> str:
        """The host with its zone, as getaddrinfo and bind take it."""
        return f"{self.host}%{self.zone}" if self.zone else self.host

    def __str__(self) -> str:
        return format_hostport(self.scoped, self.port)


def format_hostport(host: str, port: int) -> str:
    """`host:port`, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_hostport(text: str, *, default_port: int | None = None,
                   default_host: str | None = None) -> HostPort:
    """Read `HOST[:PORT]`.

    Args:
        default_port: the port when the text has none (None: a port is required).
        default_host: the host when the text is `:PORT` (None: a host is required).

    Raises:
        HostPortError: bad brackets, no host, no or a bad port, a host that is
            neither an IP address nor a host name.
    """
    text = text.strip()
    port_text: str | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise HostPortError(f"{text!r}: use [IPv6]:PORT")
        if _ip_version(host) != 6:
            raise HostPortError(f"{text!r}: {host!r} is not an IPv6 address")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text  # a name, an IPv4 address, or a bare IPv6 one
    host, _, zone = host.partition("%")
    host = host or default_host or ""
    if not host:
        raise HostPortError(f"{text!r}: no host")
    if zone and _ip_version(host) != 6:
        raise HostPortError(f"{text!r}: only an IPv6 address takes a %zone")
    if _ip_version(host) is None and not (len(host) <= 253 and _HOSTNAME.fullmatch(host)):
        raise HostPortError(f"{text!r}: {host!r} is not an IP address or host name")
    return HostPort(host=host, port=_port(text, port_text, default_port), zone=zone or None)


def _port(text: str, port_text: str | None, default: int | None) -> int:
    if port_text is None:
        if default is None:
            raise HostPortError(f"{text!r} is not address:port (e.g. 127.0.0.1:6680)")
        return default
    if not (port_text.isascii() and port_text.isdigit()):
        raise HostPortError(f"{text!r}: port {port_text!r} is not a number from 1 to 65535")
    number = int(port_text)
    if not 1 <= number <= 65535:
        raise HostPortError(f"{text!r}: port {number} is not between 1 and 65535")
    return number


def _ip_version(host: str) -> int | None:
    """4 or 6 for an IP address (an IPv6 one may carry its %zone), None otherwise."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None
