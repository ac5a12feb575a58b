"""Basic-mode console text -> records (kernel-netconsole.md §4.2).

A basic target sends printk's console text for one record at a time, cut into
1000-byte datagrams with no marker. So a datagram that ends in `\\n` ends a
record; one of exactly 1000 bytes without it continues in the next datagram;
anything shorter without it is a record cut short. Each line of a record
carries the same prefix `[<N>][[ sss.uuuuuu]][[caller]] `, which is parsed
from the first line and removed from the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# `record_print_text`: optional syslog `<N>`, time `[%5lu.%06lu]`, caller `[%6s]`,
# and one space when time or caller is present.
_PREFIX = re.compile(rb"(?:<(\d{1,3})>)?(?:\[\s*(\d{1,10})\.(\d{6})\])?(?:\[\s*([TC]\d{1,10})\])?")
_DROPPED = re.compile(rb"\*\* (\d{1,19}) printk messages dropped \*\*")
# A basic record is at most PRINTK_MESSAGE_MAX text plus a prefix on each
# line (§4.2); 16 KiB is far above anything a kernel sends.
MAX_BASIC_RECORD = 16 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class BasicLine:
    """One record parsed from console text."""

    text: bytes
    ts_usec: int | None
    caller: str | None
    syslog: int | None


def looks_like_console_text(data: bytes) -> bool:
    """Whether a datagram that does not continue a record can start one.

    Console text has no NUL bytes, and a record either starts with a printk
    prefix, ends with its newline, or fills a whole 1000-byte datagram.
    """
    if b"\x00" in data:
        return False
    return data[:1] in (b"[", b"<") or data.endswith(b"\n") or len(data) == 1000


def parse_console_text(buf: bytes) -> tuple[list[BasicLine], list[int]]:
    """Split the console text of one (or, rarely, several) records.

    Returns:
        (records, dropped): `dropped` lists the N of every
        `** N printk messages dropped **` line, which is loss, not a record.
    """
    lines = buf.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    records: list[BasicLine] = []
    dropped: list[int] = []
    current: list[bytes] = []
    prefix = b""
    head: BasicLine | None = None
    for line in lines:
        dm = _DROPPED.fullmatch(line)
        if dm is not None:
            dropped.append(int(dm.group(1)))
            continue
        m = _PREFIX.match(line)
        assert m is not None  # every group is optional
        this_prefix = line[: m.end()]
        shown = m.group(2) is not None or m.group(4) is not None
        if shown and line[m.end() : m.end() + 1] == b" ":
            this_prefix += b" "
        if head is not None and (this_prefix == prefix or not this_prefix):
            current.append(line[len(this_prefix) :])
            continue
        if head is not None:
            records.append(_finish(head, current))
        prefix = this_prefix
        current = [line[len(this_prefix) :]]
        syslog, sec, usec, caller = m.groups()
        head = BasicLine(
            text=b"",
            ts_usec=int(sec) * 1_000_000 + int(usec) if sec is not None else None,
            caller=caller.decode("ascii") if caller is not None else None,
            syslog=int(syslog) if syslog is not None else None,
        )
    if head is not None:
        records.append(_finish(head, current))
    return records, dropped


def _finish(head: BasicLine, lines: list[bytes]) -> BasicLine:
    return BasicLine(text=b"\n".join(lines), ts_usec=head.ts_usec, caller=head.caller,
                     syslog=head.syslog)
