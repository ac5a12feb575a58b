"""Kernel release strings, parsed into something that can be compared.

`uname -r` on real systems is rarely a bare `4.19.0`: distributions append ABI
numbers and flavours (`4.4.0-1072-aws`, `6.12.117+deb12-amd64`,
`5.14.0-362.8.1.el9_3.x86_64`, `6.8.0-31-generic`). Only the upstream
major.minor.patch decides which netconsole/netpoll code is inside (§1 of
kernel-netconsole.md), so that is what `KernelVersion` compares; the rest is kept
because a distro kernel may carry backports and the findings must say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_RELEASE = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?(\S*)")
# `/proc/version`: "Linux version 4.4.0-1072-aws (buildd@lcy01) (gcc ...) #82-Ubuntu SMP ..."
_PROC_VERSION = re.compile(r"Linux version (\S+)")


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class KernelVersion:
    """An upstream kernel version plus the distribution's suffix.

    Ordering uses (major, minor, patch) only, so `4.4.0-1072-aws < 4.19`.
    """

    major: int
    minor: int
    patch: int = 0
    release: str = field(default="", compare=False)
    """The whole release string as `uname -r` prints it."""

    @property
    def suffix(self) -> str:
        """What follows major.minor.patch (`-1072-aws`, `+deb12-amd64`)."""
        m = _RELEASE.match(self.release)
        return m.group(4) if m else ""

    @property
    def is_distro(self) -> bool:
        """True when the release carries a distribution suffix (backports possible)."""
        return bool(self.suffix.strip("+"))

    def at_least(self, major: int, minor: int, patch: int = 0) -> bool:
        """True when this kernel is `major.minor.patch` or newer."""
        return (self.major, self.minor, self.patch) >= (major, minor, patch)

    def __str__(self) -> str:
        return self.release or f"{self.major}.{self.minor}.{self.patch}"


def parse_release(text: str) -> KernelVersion | None:
    """Parse a `uname -r` string.

    Args:
        text: e.g. `4.4.0-1072-aws`, `6.12.117+deb12-amd64`, `3.10`.

    Returns:
        The version, or None when `text` does not start with `<digits>.<digits>`
        (garbage in a hand-written snapshot is "unknown", never an exception).
    """
    m = _RELEASE.match(text)
    if m is None:
        return None
    return KernelVersion(
        major=int(m.group(1)),
        minor=int(m.group(2)),
        patch=int(m.group(3) or 0),
        release=text.strip().split()[0],
    )


def parse_proc_version(text: str) -> KernelVersion | None:
    """Parse the contents of `/proc/version` (`Linux version <release> ...`)."""
    m = _PROC_VERSION.search(text)
    return parse_release(m.group(1)) if m else None


def parse_version_number(text: str) -> tuple[int, ...] | None:
    """Parse a driver version such as `2.0.1K`, `1.5.0g`, `5.1.0-k` into numbers.

    Only the leading dotted digits count: driver version strings carry letters
    for in-kernel builds (`K`, `-k`, `-NAPI`) that do not change their order.
    """
    m = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    if m is None:
        return None
    return tuple(int(p) for p in m.group(1).split("."))
