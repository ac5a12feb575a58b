"""What one netconsole datagram is, once decoded.

A datagram is exactly one of:

* `BasicChunk`: basic mode sends printk's console text cut into 1000-byte
  pieces with no framing (kernel-netconsole.md §4.2). A chunk is only bytes; the
  stream layer rebuilds lines from consecutive chunks.
* `ExtendedMessage`: an extended-mode record that fits in one datagram (§4.3).
* `Fragment`: one `ncfrag=<off>/<total>` piece of a longer extended record
  (§4.7); the stream layer reassembles the body before it is parsed.

All payloads are `bytes`; text is escaped on the wire and unescaped here
(`netconsole.wire.unescape`) so the exact bytes the kernel logged come back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# §4.1: netconsole never puts more than MAX_PRINT_CHUNK bytes in one datagram.
MAX_PRINT_CHUNK = 1000


class Mode(enum.Enum):
    """The two output formats of a netconsole target."""

    BASIC = "basic"
    EXTENDED = "extended"


class Flag(enum.Enum):
    """The continuation flag of an extended header (§4.3).

    `+` exists only in 4.2–4.8 kernels; from 4.9 only `c` and `-` are sent.
    """

    NONE = "-"
    CONT = "c"
    CONT_FRAGMENT = "+"


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """The part of an extended message before the first `;`.

    `release` is the `r` prefix (6.6+), None when absent. `extra` keeps every
    unknown comma-separated field, in wire order, exactly as sent: the kernel
    asks receivers to ignore such fields, and we keep them so nothing is lost.
    """

    release: str | None
    facility: int
    level: int
    seq: int
    ts_usec: int
    flag: Flag
    caller: str | None = None
    extra: tuple[str, ...] = ()

    @property
    def prefix(self) -> int:
        """The `<facility << 3 | level>` number that opens the header."""
        return (self.facility << 3) | self.level


@dataclass(frozen=True, slots=True, kw_only=True)
class Body:
    """An extended record's body, parsed: the message text and its ` KEY=value` lines.

    `fields` holds dictionary (`SUBSYSTEM`, `DEVICE`, pre-5.10 free-form),
    userdata and sysdata lines together, in wire order: nothing on the wire
    separates them (§4.6). Keys and values are unescaped bytes.
    `terminated` is False when the text line had no `\\n` (a record cut short).
    """

    text: bytes
    fields: tuple[tuple[bytes, bytes], ...] = ()
    terminated: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtendedMessage:
    """A whole extended record from one datagram."""

    header: Header
    body: Body


@dataclass(frozen=True, slots=True, kw_only=True)
class Fragment:
    """One `ncfrag` piece: `data` is `body[offset:offset+len(data)]`, still escaped."""

    header: Header
    offset: int
    total: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class BasicChunk:
    """A basic-mode datagram: raw console text, no framing."""

    data: bytes


Datagram = ExtendedMessage | Fragment | BasicChunk


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingRecord:
    """Everything an extended target formats for one printk record (encoder input).

    `dictionary` are the record's own ` KEY=value` lines (dev_printk's
    SUBSYSTEM/DEVICE, or the pre-5.10 free-form dictionary); `userdata` the
    configfs `userdata/<key>/value` entries in order; `sysdata` the kernel's
    own `cpu`, `taskname`, `release`, `msgid` lines, in that order. Values are
    raw bytes; the encoder escapes what the kernel escapes.
    """

    facility: int
    level: int
    seq: int
    ts_usec: int
    text: bytes
    flag: Flag = Flag.NONE
    caller: str | None = None
    release: str | None = None
    dictionary: tuple[tuple[bytes, bytes], ...] = ()
    userdata: tuple[tuple[bytes, bytes], ...] = ()
    sysdata: tuple[tuple[bytes, bytes], ...] = field(default=())
