"""What a sender's stream emits: records, and the accounting events beside them.

Every event names its `Sender` and the time (`at`, seconds, whatever clock the
caller feeds in) at which the stream decided it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from netconsole.wire import Flag, Mode, RejectReason

MAX_FIELD_NUMBER = (1 << 63) - 1
"""The largest `msgid=`/`cpu=` value used as a number, as `wire`'s header
numbers: what a store's signed 64-bit integer holds."""


def field_number(value: bytes | None) -> int | None:
    """A sysdata number (`msgid=`, `cpu=`) as an int; None when absent, not
    plain digits, or past `MAX_FIELD_NUMBER` (a foreign sender's: the field
    stays in the record's `fields` as sent, it only counts as no number)."""
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    n = int(value)
    return n if n <= MAX_FIELD_NUMBER else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sender:
    """One netconsole stream: the source address and port, and the local port it
    arrived on (one host's basic and extended targets on two ports are two streams)."""

    host: str
    port: int
    local_port: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """One printk record, reassembled.

    Attributes:
        sender: where it came from.
        mode: basic or extended.
        received: time of the first datagram of this record.
        release: the release prefix (6.6+ `r`) exactly as sent; see `kernel_release`.
        facility, level: from the extended prefix or a basic `<N>` prefix.
        seq: the printk sequence number (extended only).
        ts_usec: microseconds since boot (extended header, or the basic
            `[ sss.uuuuuu]` prefix when printk.time is on).
        flag: the extended continuation flag.
        caller: `T<pid>`/`C<cpu>` when CONFIG_PRINTK_CALLER is on.
        text: the message, unescaped: the exact bytes printk logged. A basic
            record of several lines has them joined with `\\n`, prefixes removed.
        fields: every ` KEY=value` line after the text, in wire order
            (dictionary, userdata, sysdata), unescaped.
        header_extra: unknown header fields, kept as sent.
        complete: False when fragments or chunks never all arrived.
        missing: the byte ranges `[start, end)` of the body that never arrived.
    """

    sender: Sender
    mode: Mode
    received: float
    text: bytes
    release: str | None = None
    facility: int | None = None
    level: int | None = None
    seq: int | None = None
    ts_usec: int | None = None
    flag: Flag = Flag.NONE
    caller: str | None = None
    fields: tuple[tuple[bytes, bytes], ...] = ()
    header_extra: tuple[str, ...] = ()
    complete: bool = True
    missing: tuple[tuple[int, int], ...] = ()

    def field(self, key: bytes) -> bytes | None:
        """The last value of `key` (sysdata comes after a user key of the same name, §4.6)."""
        for k, v in reversed(self.fields):
            if k == key:
                return v
        return None

    @property
    def kernel_release(self) -> str | None:
        """The sender's `uname -r`: the release prefix, or else the `release=` sysdata."""
        if self.release is not None:
            return self.release
        value = self.field(b"release")
        return value.decode("latin-1") if value is not None else None

    @property
    def msgid(self) -> int | None:
        return field_number(self.field(b"msgid"))

    @property
    def cpu(self) -> int | None:
        return field_number(self.field(b"cpu"))

    @property
    def taskname(self) -> str | None:
        value = self.field(b"taskname")
        return value.decode("utf-8", "replace") if value is not None else None


class GapKind(enum.Enum):
    """What a gap counts."""

    SEQ = "seq"  # printk records never seen: loglevel filter, ring overrun, or network
    MSGID = "msgid"  # messages netconsole sent that never arrived: network or sender loss
    DROPPED = "dropped"  # `** N printk messages dropped **` on a basic target


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """`count` numbers starting at `first` were never seen (first is None for DROPPED)."""

    sender: Sender
    at: float
    kind: GapKind
    first: int | None
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Duplicate:
    """A record (or fragment) seen again: two targets to one receiver, or the network."""

    sender: Sender
    at: float
    seq: int


class RebootReason(enum.Enum):
    SEQ_BACK = "seq_back"  # seq went back after a silence, or far below the window
    TIME_BACK = "time_back"  # a newer seq with a timestamp well before the last one
    NEW_RELEASE = "new_release"  # the release string changed


@dataclass(frozen=True, slots=True, kw_only=True)
class Reboot:
    """The sender's kernel restarted (or replayed its log after a module reload)."""

    sender: Sender
    at: float
    reason: RebootReason
    previous_seq: int | None
    seq: int | None
    previous_release: str | None
    release: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Incomplete:
    """A record emitted without all its fragments; the Record itself follows."""

    sender: Sender
    at: float
    seq: int | None
    total: int
    missing: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """A datagram that became no part of any record, and why."""

    sender: Sender
    at: float
    reason: RejectReason
    detail: str
    size: int


Event = Record | Gap | Duplicate | Reboot | Incomplete | Rejected
