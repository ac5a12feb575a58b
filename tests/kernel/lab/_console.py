"""The guest's serial console, parsed: the reference a decoder's output is compared with.

A kernel line is `[ sss.uuuuuu] text`; every line of a multi-line record carries
the record's timestamp. Anything else (firmware output, `LAB:` lines, shell
output, 6.12's `** N printk messages dropped **` marker) is not a kernel line;
drop markers are counted on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(rb"^\[\s*(\d+)\.(\d{6})\] (.*)$", re.S)
_DROPPED = re.compile(rb"\*\* (\d+) printk messages dropped \*\*")
_FIRST_STAMP = re.compile(rb"\[\s*\d+\.\d{6}\] ")


@dataclass(frozen=True, slots=True)
class ConsoleLine:
    """One kernel console line: its record's timestamp (usec) and its text."""

    ts_usec: int
    text: bytes

    @property
    def key(self) -> tuple[int, bytes]:
        return (self.ts_usec, self.text)


@dataclass(slots=True)
class Console:
    """A parsed console log."""

    lines: list[ConsoleLine] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    other: list[bytes] = field(default_factory=list)

    def find(self, needle: bytes) -> list[ConsoleLine]:
        """Kernel lines containing `needle`."""
        return [line for line in self.lines if needle in line.text]

    def first(self, needle: bytes) -> ConsoleLine:
        found = self.find(needle)
        if not found:
            raise AssertionError(f"{needle!r} is not on the guest console")
        return found[0]

    def since(self, ts_usec: int) -> list[ConsoleLine]:
        return [line for line in self.lines if line.ts_usec >= ts_usec]


def parse_console(raw: bytes) -> Console:
    """Split a serial console log into kernel lines and the rest.

    Before the first kernel line the firmware leaves its own output on the same line,
    in front of `[    0.000000] Linux version`: terminal escape sequences
    (`ok ESC c ESC[?7l ESC[2J`) or just a carriage return (`ok\\r`); it is cut.
    """
    console = Console()
    seen_kernel = False
    for raw_line in raw.split(b"\n"):
        line = raw_line.removesuffix(b"\r")
        if not seen_kernel and (stamp := _FIRST_STAMP.search(line)) is not None:
            line = line[stamp.start():]
        m = _LINE.match(line)
        if m is None:
            dm = _DROPPED.search(line)
            if dm is not None:
                console.dropped.append(int(dm.group(1)))
            if line:
                console.other.append(line)
            continue
        seen_kernel = True
        console.lines.append(ConsoleLine(int(m.group(1)) * 1_000_000 + int(m.group(2)),
                                         m.group(3)))
    return console
