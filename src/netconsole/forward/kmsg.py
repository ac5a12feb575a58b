"""`/dev/kmsg` records: parsing them, and reading them one `read()` at a time.

A `/dev/kmsg` record is exactly what printk hands an extended console
(kernel-netconsole.md §4.3–§4.4), so parsing it and re-encoding it with
`netconsole.wire.encode_extended` gives the kernel's own datagrams:

    <prefix>,<seq>,<ts_usec>,<flag>[,caller=T<pid>|C<cpu>][,<more>];<escaped text>\\n
    [ <KEY>=<value>\\n]...

The text and the dictionary lines are `\\xHH`-escaped exactly as on the wire,
so they are unescaped with `netconsole.wire.unescape` and escaped again by the
encoder, byte for byte.

`KmsgReader` wraps a `read(n)` callable, so tests drive it without a device:

* a character device (the real `/dev/kmsg`) returns one whole record per
  `read()`; `EPIPE` means the ring overwrote records this reader had not read
  yet: the kernel moves the reader to the oldest record still there, and the
  gap shows as a jump in `seq`, counted as loss;
* a file or FIFO (tests, `--kmsg` replay) returns arbitrary chunks; records are
  cut at lines that do not start with a space.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field

from netconsole.wire import Flag, unescape

# devkmsg_read() fails with EINVAL when the buffer is shorter than the record;
# the longest formatted record is CONSOLE_EXT_LOG_MAX = 8192 bytes (§4.4).
READ_SIZE = 16384
# A record longer than this in a file or FIFO is not a kmsg record: give up on it.
MAX_RECORD = 64 * 1024

_FLAGS = {f.value: f for f in Flag}


class KmsgError(ValueError):
    """A record that does not follow the `/dev/kmsg` format."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KmsgRecord:
    """One `/dev/kmsg` record, unescaped.

    Attributes:
        facility, level: from `<prefix>` = facility << 3 | level.
        seq: printk's sequence number, from 0 at boot.
        ts_usec: microseconds since boot.
        flag: `-`, `c` (LOG_CONT) or, from 4.2–4.8 kernels, `+`.
        caller: `T<pid>` or `C<cpu>` with CONFIG_PRINTK_CALLER, else None.
        text: the message bytes as printk logged them.
        dictionary: the ` KEY=value` lines (SUBSYSTEM/DEVICE from 5.10).
        extra: unknown header fields, kept in order (the kernel asks readers
            to ignore them, §4.3).
    """

    facility: int
    level: int
    seq: int
    ts_usec: int
    text: bytes
    flag: Flag = Flag.NONE
    caller: str | None = None
    dictionary: tuple[tuple[bytes, bytes], ...] = ()
    extra: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not 0 <= self.level <= 7:
            raise KmsgError(f"level {self.level} outside 0..7")
        if self.facility < 0 or self.seq < 0 or self.ts_usec < 0:
            raise KmsgError("facility, seq and ts_usec are never negative")


def parse_kmsg(data: bytes) -> KmsgRecord:
    """Parse one record as a `read()` of `/dev/kmsg` returns it.

    Args:
        data: the header line and its continuation lines; the final `\\n`
            may be missing (the last record of a truncated file).

    Raises:
        KmsgError: not a `/dev/kmsg` record.
    """
    head, sep, rest = data.partition(b";")
    if not sep:
        raise KmsgError("no ';' after the header")
    fields = head.split(b",")
    if len(fields) < 4:
        raise KmsgError(f"header has {len(fields)} fields, needs 4")
    try:
        prefix, seq, ts_usec = (int(f) for f in fields[:3])
    except ValueError as exc:
        raise KmsgError(f"header is not numeric: {head[:40]!r}") from exc
    flag = _FLAGS.get(fields[3].decode("latin-1"))
    if flag is None:
        raise KmsgError(f"unknown flag {fields[3]!r}")
    caller: str | None = None
    extra: list[str] = []
    for f in fields[4:]:
        text = f.decode("latin-1")
        if text.startswith("caller=") and caller is None:
            caller = text[len("caller="):]
        else:
            extra.append(text)
    lines = rest.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if not lines:
        lines = [b""]
    dictionary = []
    for line in lines[1:]:
        if not line.startswith(b" "):
            raise KmsgError(f"continuation line without a leading space: {line[:40]!r}")
        key, eq, value = line[1:].partition(b"=")
        if not eq:
            raise KmsgError(f"continuation line without '=': {line[:40]!r}")
        dictionary.append((unescape(key), unescape(value)))
    return KmsgRecord(
        facility=prefix >> 3, level=prefix & 7, seq=seq, ts_usec=ts_usec,
        text=unescape(lines[0]), flag=flag, caller=caller,
        dictionary=tuple(dictionary), extra=tuple(extra),
    )


class ReadStatus(enum.Enum):
    """Why `KmsgReader.read_available` stopped."""

    AGAIN = "again"  # nothing more for now (a non-blocking read said EAGAIN)
    EOF = "eof"  # a file or FIFO ended; /dev/kmsg never ends


@dataclass(slots=True, kw_only=True)
class ReaderCounters:
    """What the reader saw, beside the records it returned."""

    overruns: int = 0  # EPIPE: the ring overwrote records before we read them
    lost: int = 0  # records known lost from seq jumps between consecutive reads
    unparsable: int = 0  # records that were not in the /dev/kmsg format
    skipped: int = 0  # records at or below the resume point, not returned


class KmsgReader:
    """Records from a `read(n)` callable, resuming after a given seq.

    Args:
        read: `os.read` bound to a file descriptor, or a test double. It may
            raise BlockingIOError (no data yet) or BrokenPipeError (EPIPE).
        whole_records: True for a character device, where every read returns
            exactly one record; False for files and FIFOs.
        after_seq: skip records with seq <= this (the state file's last sent
            seq for this boot); None reads from the first record.
    """

    __slots__ = ("_buf", "_discard", "_last_seq", "_read", "_whole", "after_seq", "counters")

    def __init__(self, read: Callable[[int], bytes], *, whole_records: bool,
                 after_seq: int | None = None) -> None:
        self._read = read
        self._whole = whole_records
        self._buf = bytearray()
        self._discard = False  # dropping the rest of a runaway record
        self._last_seq = after_seq
        self.after_seq = after_seq
        self.counters = ReaderCounters()

    def read_available(self, limit: int = 1024) -> tuple[list[KmsgRecord], ReadStatus | None]:
        """Read until the source has nothing more, or `limit` records.

        Returns:
            The records (seq order as the kernel gives them) and why reading
            stopped: AGAIN, EOF, or None when `limit` was reached first.
        """
        out: list[KmsgRecord] = []
        while len(out) < limit:
            try:
                chunk = self._read(READ_SIZE)
            except BlockingIOError:
                return out, ReadStatus.AGAIN
            except BrokenPipeError:
                self.counters.overruns += 1
                continue
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    self.counters.overruns += 1
                    continue
                raise
            if not chunk:
                if self._buf:
                    self._take(bytes(self._buf), out)
                    self._buf.clear()
                return out, ReadStatus.EOF
            if self._whole:
                self._take(chunk, out)
            else:
                self._split(chunk, out)
        return out, None

    def _split(self, chunk: bytes, out: list[KmsgRecord]) -> None:
        self._buf += chunk
        if self._discard:
            nl = self._buf.find(b"\n")
            if nl == -1:
                self._buf.clear()
                return
            del self._buf[: nl + 1]
            self._discard = False
        start = 0
        while True:
            nl = self._buf.find(b"\n", start)
            # A record ends at the newline that is followed by a non-space line.
            while nl != -1 and nl + 1 < len(self._buf) and self._buf[nl + 1] == 0x20:
                nl = self._buf.find(b"\n", nl + 1)
            if nl == -1 or nl + 1 >= len(self._buf):
                break
            self._take(bytes(self._buf[start : nl + 1]), out)
            start = nl + 1
        del self._buf[:start]
        if len(self._buf) > MAX_RECORD:
            self.counters.unparsable += 1
            self._buf.clear()
            self._discard = True

    def _take(self, data: bytes, out: list[KmsgRecord]) -> None:
        try:
            rec = parse_kmsg(data)
        except KmsgError:
            self.counters.unparsable += 1
            return
        if self.after_seq is not None and rec.seq <= self.after_seq:
            self.counters.skipped += 1
            return
        if self._last_seq is not None and rec.seq > self._last_seq + 1:
            self.counters.lost += rec.seq - self._last_seq - 1
        self._last_seq = rec.seq
        out.append(rec)


def open_kmsg(path: str) -> tuple[int, bool]:
    """Open `/dev/kmsg` (or a stand-in) non-blocking for reading.

    Returns:
        The file descriptor, and whether it is a character device (one record
        per read) rather than a file or FIFO.

    Raises:
        PermissionError: reading /dev/kmsg needs root or CAP_SYSLOG (when
            kernel.dmesg_restrict is set), the caller turns it into advice.
    """
    # A FIFO opened non-blocking with no writer yet reads as EOF at once: open
    # it blocking (wait for the writer), then switch to non-blocking.
    fifo = stat.S_ISFIFO(os.stat(path).st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (0 if fifo else os.O_NONBLOCK))
    os.set_blocking(fd, False)
    return fd, stat.S_ISCHR(os.fstat(fd).st_mode)
