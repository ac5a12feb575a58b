"""How the kernel reads and prints addresses: `in4_pton`, `in6_pton`, `mac_pton`,
`netpoll_parse_ip_addr`, `%pI4`/`%pI6c` (kernel-netconsole.md §2.1).

Shared by the `netconsole=` grammar and the configfs model: both hand their
address text to the same kernel helpers.
"""

from __future__ import annotations

import ipaddress
import re

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
"""netconsole's `remote_mac` when none is given (§2.1)."""


def in4_pton(text: str) -> bool:
    """`in4_pton`: four decimal octets 0-255 (leading zeros allowed)."""
    parts = text.split(".")
    return len(parts) == 4 and all(
        re.fullmatch(r"[0-9]{1,3}", p) is not None and int(p) <= 255 for p in parts
    )


def in6_pton(text: str) -> bool:
    """`in6_pton`: an IPv6 address without a zone (the kernel knows no `%eth0`)."""
    if "%" in text or not text:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def parse_ip(text: str, *, ipv6_supported: bool = True) -> int:
    """`netpoll_parse_ip_addr`: 0 for IPv4, 1 for IPv6, -1 when invalid.

    A string without ':' that `in4_pton` accepts is IPv4; anything else must be
    IPv6, and IPv6 fails on kernels without CONFIG_IPV6 (§2.1).
    """
    if ":" not in text and in4_pton(text):
        return 0
    if in6_pton(text):
        return 1 if ipv6_supported else -1
    return -1


def canonical_ip(text: str) -> str:
    """The address as the kernel prints it (`%pI4` / `%pI6c`)."""
    if ":" in text:
        return str(ipaddress.IPv6Address(text))
    return ".".join(str(int(p)) for p in text.split("."))


def mac_pton(text: str) -> str | None:
    """`mac_pton`: `xx:xx:xx:xx:xx:xx` at the start of `text`, lower-cased.

    Like the kernel, anything after the 17th character is not looked at (§2.1).
    """
    if len(text) < 17:
        return None
    for i in range(6):
        pair = text[i * 3 : i * 3 + 2]
        if re.fullmatch(r"[0-9A-Fa-f]{2}", pair) is None:
            return None
        if i != 5 and text[i * 3 + 2] != ":":
            return None
    return text[:17].lower()
