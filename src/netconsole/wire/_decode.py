"""bytes -> BasicChunk | ExtendedMessage | Fragment.

Classification (kernel-netconsole.md §4.8): a datagram whose start matches the
extended header grammar `[release,]<prefix>,<seq>,<ts>,<flag>[,...];` is
extended and is then parsed strictly; anything else is basic console text,
which has no framing at all and is judged by the stream layer in context.
"""

from __future__ import annotations

import re

from netconsole.wire._errors import RejectReason, WireError
from netconsole.wire._escape import unescape
from netconsole.wire._model import (
    BasicChunk,
    Body,
    Datagram,
    ExtendedMessage,
    Flag,
    Fragment,
    Header,
)

# The release (§4.5) is `uname -r`: no comma, no `;`, no white space. The first
# token of a plain header is all digits, a release never is (it has a `.`).
# Header numbers of any length match, so that one too large is rejected (below)
# rather than taken for console text.
_EXTENDED_START = re.compile(
    rb"(?:([^,;\s\d][^,;\s]*|\d[^,;\s]*[^,;\s\d][^,;\s]*),)?(\d+),(\d+),(\d+),([-c+])([,;])"
)
_NCFRAG = re.compile(rb"ncfrag=(\d{1,9})/(\d{1,9})")

# §4.7/§3.4: an extended record is at most 8 KiB of formatted text plus up to
# 256 userdata entries of 256 bytes and 4 x 256 bytes of sysdata; anything
# announcing more than this is not a kernel record and would only cost memory.
MAX_FRAGMENTED_TOTAL = 128 * 1024

_FLAGS = {b"-": Flag.NONE, b"c": Flag.CONT, b"+": Flag.CONT_FRAGMENT}

MAX_HEADER_NUMBER = (1 << 63) - 1
"""The largest prefix, seq or ts_usec accepted. The kernel's are u64 but never
come near this (seq counts records, ts_usec is 292,000 years at 2**63), and
stores keep signed 64-bit integers (SQLite INTEGER, ClickHouse Int64): a larger
number is a foreign or hostile sender's, and would stop the batch it is in."""


def _number(digits: bytes, what: str) -> int:
    if len(digits) < 19:  # below 10**18: always fits (and int() is one call)
        return int(digits)
    # Length first: int() of thousands of digits is slow, and refused past 4300.
    n = int(digits) if len(digits) == 19 else MAX_HEADER_NUMBER + 1
    if n > MAX_HEADER_NUMBER:
        shown = digits[:24].decode() + ("..." if len(digits) > 24 else "")
        raise WireError(RejectReason.NUMBER_TOO_LARGE,
                        f"{what} {shown} is past {MAX_HEADER_NUMBER}")
    return n


def decode_datagram(payload: bytes) -> Datagram:
    """Decode one UDP payload sent by netconsole.

    Args:
        payload: the UDP payload, as received.

    Returns:
        An `ExtendedMessage` (a whole extended record), a `Fragment` (one
        `ncfrag` piece) or a `BasicChunk` (console text, judged by the stream).

    Raises:
        WireError: the payload is empty, or starts like an extended header but
            breaks its grammar (a bad `ncfrag` field, say) or carries a number
            past `MAX_HEADER_NUMBER`.
    """
    if not payload:
        raise WireError(RejectReason.EMPTY, "empty datagram")
    m = _EXTENDED_START.match(payload)
    if m is None:
        return BasicChunk(data=payload)
    release_b, prefix_b, seq_b, ts_b, flag_b, sep = m.groups()
    prefix = _number(prefix_b, "prefix")
    seq = _number(seq_b, "seq")
    ts_usec = _number(ts_b, "ts_usec")
    caller: str | None = None
    extra: list[str] = []
    ncfrag: tuple[int, int] | None = None
    end = m.end()
    if sep == b",":
        semi = payload.find(b";", end)
        if semi < 0:
            raise WireError(RejectReason.BAD_HEADER, "extended header without ';'")
        for token in payload[end:semi].split(b","):
            if token.startswith(b"ncfrag="):
                fm = _NCFRAG.fullmatch(token)
                if fm is None or ncfrag is not None:
                    raise WireError(RejectReason.BAD_NCFRAG, f"malformed {token[:40]!r}")
                ncfrag = (int(fm.group(1)), int(fm.group(2)))
            elif token.startswith(b"caller=") and caller is None:
                caller = token[7:].decode("latin-1")
            else:
                extra.append(token.decode("latin-1"))
        end = semi + 1
    header = Header(
        release=release_b.decode("latin-1") if release_b is not None else None,
        facility=prefix >> 3,
        level=prefix & 7,
        seq=seq,
        ts_usec=ts_usec,
        flag=_FLAGS[flag_b],
        caller=caller,
        extra=tuple(extra),
    )
    data = payload[end:]
    if ncfrag is None:
        return ExtendedMessage(header=header, body=parse_body(data))
    offset, total = ncfrag
    if total > MAX_FRAGMENTED_TOTAL:
        raise WireError(RejectReason.FRAGMENT_TOO_LARGE, f"ncfrag total {total} is too large")
    if not data or offset + len(data) > total:
        raise WireError(
            RejectReason.BAD_NCFRAG,
            f"ncfrag={offset}/{total} carries {len(data)} bytes, outside the record",
        )
    return Fragment(header=header, offset=offset, total=total, data=data)


def parse_body(data: bytes) -> Body:
    """Parse the (reassembled, still escaped) bytes after an extended header's `;`.

    The first line is the message text; every following line is ` KEY=value`
    (dictionary, userdata and sysdata alike, §4.6). A line that breaks that
    shape (only a foreign sender makes one) is kept whole as a field with an
    empty key, so nothing is lost.
    """
    escaped = b"\\" in data  # one look, instead of one per key and value
    nl = data.find(b"\n")
    if nl < 0:
        return Body(text=unescape(data) if escaped else data, terminated=False)
    text = unescape(data[:nl]) if escaped else data[:nl]
    if nl + 1 == len(data):
        return Body(text=text)
    fields: list[tuple[bytes, bytes]] = []
    lines = data[nl + 1 :].split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for line in lines:
        if line[:1] == b" ":
            key, eq, value = line[1:].partition(b"=")
            if eq:
                fields.append((unescape(key), unescape(value)) if escaped else (key, value))
                continue
        fields.append((b"", unescape(line) if escaped else line))
    return Body(text=text, fields=tuple(fields))
