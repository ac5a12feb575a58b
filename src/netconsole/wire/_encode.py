"""Record -> datagrams, byte for byte as the kernel's netconsole sends them.

Used by `netconsole forward`, the load generator and the tests. The extended
encoder follows `send_ext_msg_udp` (kernel-netconsole.md §4.5–§4.7):

* the payload is `[release,]` + the `/dev/kmsg`-style message + userdata +
  sysdata; when that is at most 1000 bytes it goes out whole (exactly 1000
  is *not* fragmented);
* otherwise it is split at the first `;`: every datagram repeats the header
  (release included) with `,ncfrag=<offset>/<total>;` appended, and carries the
  next slice of the data after the `;`, cut blindly (inside an escape or a
  `key=value` line if that is where 1000 bytes end).

What `total` counts differs by era only through what a record may carry:
4.2–6.8 the message body alone (no userdata existed), 6.9–6.14 body plus
userdata, 6.15+ body plus userdata plus sysdata. `KernelVersion` therefore
refuses a record with parts its era could not send, and the cut is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from netconsole.wire._escape import escape
from netconsole.wire._model import MAX_PRINT_CHUNK, Flag, OutgoingRecord

# sysdata keys in the fixed order `prepare_sysdata` writes them (§3.5), with the
# kernel version that introduced each toggle.
SYSDATA_ORDER = (b"cpu", b"taskname", b"release", b"msgid")
_SYSDATA_SINCE = {b"cpu": (6, 15), b"taskname": (6, 15), b"release": (6, 16), b"msgid": (6, 17)}


class EncodeError(ValueError):
    """The record asks for something the chosen kernel era cannot send."""


@dataclass(frozen=True, slots=True)
class KernelVersion:
    """The sending kernel's version, which decides what a record may carry."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> KernelVersion:
        """`"6.12.117+deb12-amd64"` -> KernelVersion(6, 12)."""
        parts = text.split(".")
        try:
            return cls(int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0))
        except (IndexError, ValueError) as exc:
            raise EncodeError(f"not a kernel version: {text!r}") from exc

    def at_least(self, major: int, minor: int) -> bool:
        return (self.major, self.minor) >= (major, minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


LATEST = KernelVersion(7, 2)


def _check_era(rec: OutgoingRecord, kernel: KernelVersion) -> None:
    if not kernel.at_least(4, 2):
        raise EncodeError(f"extended netconsole needs 4.2+, not {kernel}")
    if rec.flag is Flag.CONT_FRAGMENT and kernel.at_least(4, 9):
        raise EncodeError("the '+' flag was sent only by 4.2-4.8 kernels")
    if rec.caller is not None and not kernel.at_least(5, 1):
        raise EncodeError("caller= exists from 5.1 (CONFIG_PRINTK_CALLER)")
    if rec.release is not None and not kernel.at_least(6, 6):
        raise EncodeError("the release prefix exists from 6.6")
    if rec.userdata and not kernel.at_least(6, 9):
        raise EncodeError("userdata exists from 6.9")
    if kernel.at_least(5, 10):
        for key, _ in rec.dictionary:
            if key not in (b"SUBSYSTEM", b"DEVICE"):
                raise EncodeError("from 5.10 the dictionary holds only SUBSYSTEM and DEVICE")
    keys = [k for k, _ in rec.sysdata]
    if keys != [k for k in SYSDATA_ORDER if k in keys]:
        raise EncodeError("sysdata goes in the order cpu, taskname, release, msgid, once each")
    for key in keys:
        since = _SYSDATA_SINCE[key]
        if not kernel.at_least(*since):
            raise EncodeError(f"sysdata {key.decode()} exists from {since[0]}.{since[1]}")


def format_message(rec: OutgoingRecord) -> bytes:
    """The `/dev/kmsg`-style message printk hands to extended consoles (§4.3, §4.4)."""
    header = b"%d,%d,%d,%s" % ((rec.facility << 3) | rec.level, rec.seq, rec.ts_usec,
                                rec.flag.value.encode())
    if rec.caller is not None:
        header += b",caller=" + rec.caller.encode("latin-1")
    parts = [header, b";", escape(rec.text), b"\n"]
    for key, value in rec.dictionary:
        parts += [b" ", escape(key), b"=", escape(value), b"\n"]
    return b"".join(parts)


def format_extradata(entries: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """userdata/sysdata lines: ` key=value\\n` each, raw (netconsole does not escape them).

    An entry with an empty value is left out, as the kernel does (§3.4).
    """
    return b"".join(b" %s=%s\n" % (k, v) for k, v in entries if v)


def encode_extended(rec: OutgoingRecord, kernel: KernelVersion = LATEST) -> list[bytes]:
    """Encode one record the way an extended netconsole target of `kernel` sends it.

    Raises:
        EncodeError: the record carries something `kernel` could not send.
    """
    _check_era(rec, kernel)
    msg = format_message(rec)
    extradata = format_extradata(rec.userdata) + format_extradata(rec.sysdata)
    release = rec.release.encode("latin-1") + b"," if rec.release is not None else b""
    if len(release) + len(msg) + len(extradata) <= MAX_PRINT_CHUNK:
        return [release + msg + extradata]
    semi = msg.index(b";")
    header = release + msg[:semi]
    data = msg[semi + 1 :] + extradata
    total = len(data)
    out = []
    offset = 0
    while offset < total:
        prefix = header + b",ncfrag=%d/%d;" % (offset, total)
        room = MAX_PRINT_CHUNK - len(prefix)
        if room <= 0:  # the kernel WARNs and gives up here too
            raise EncodeError("header too long to fragment")
        out.append(prefix + data[offset : offset + room])
        offset += room
    return out


def format_console_text(
    text: bytes,
    *,
    ts_usec: int | None = None,
    caller: str | None = None,
    syslog_prefix: int | None = None,
) -> bytes:
    """printk's console text for one record (`record_print_text`, §4.2).

    Every line of the record gets `[<N>][[ sss.uuuuuu]][[caller]]` and one space
    when time or caller is shown; the record ends with `\\n`.
    """
    prefix = b""
    if syslog_prefix is not None:
        prefix += b"<%d>" % syslog_prefix
    if ts_usec is not None:
        prefix += b"[%5d.%06d]" % divmod(ts_usec, 1_000_000)
    if caller is not None:
        prefix += b"[%6s]" % caller.encode("latin-1")
    if ts_usec is not None or caller is not None:
        prefix += b" "
    return b"".join(prefix + line + b"\n" for line in text.split(b"\n"))


def encode_basic(console_text: bytes) -> list[bytes]:
    """Cut console text into consecutive datagrams of at most 1000 bytes, no marker."""
    return [
        console_text[i : i + MAX_PRINT_CHUNK] for i in range(0, len(console_text), MAX_PRINT_CHUNK)
    ] or [b""]
