"""pcap and pcapng files -> (link type, frame, time), or a counted reason.

Both formats as `tcpdump -w` and Wireshark write them: pcap in either byte
order with micro- or nanosecond stamps; pcapng with several sections and
interfaces (each with its own link type and `if_tsresol`), Enhanced, Simple
and obsolete Packet blocks. A file that ends in the middle of a record yields
one `FileProblem` and stops, so what came before is still decoded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
# A record larger than this is a corrupt length field, not a packet.
MAX_RECORD = 256 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    linktype: int
    data: bytes
    time: float


@dataclass(frozen=True, slots=True)
class FileProblem:
    """Why (the rest of) a file could not be read; `fatal` means reading stopped."""

    reason: str
    detail: str
    fatal: bool = True


def read_frames(f: BinaryIO) -> Iterator[Frame | FileProblem]:
    """Yield every frame of a pcap or pcapng stream, then a problem if it ended badly."""
    magic = f.read(4)
    if magic in _PCAP_MAGICS:
        yield from _pcap(f, magic)
    elif magic == _PCAPNG_SHB:
        yield from _pcapng(f)
    elif len(magic) < 4:
        yield FileProblem("truncated_file", "file too short to be a capture")
    else:
        yield FileProblem("not_a_capture", f"unknown magic {magic.hex()} (not pcap or pcapng)")


def _pcap(f: BinaryIO, magic: bytes) -> Iterator[Frame | FileProblem]:
    endian, unit = _PCAP_MAGICS[magic]
    head = f.read(20)
    if len(head) < 20:
        yield FileProblem("truncated_file", "pcap global header cut short")
        return
    linktype = struct.unpack(endian + "I", head[16:20])[0] & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII")
    n = 0
    while True:
        hdr = f.read(16)
        if not hdr:
            return
        if len(hdr) < 16:
            yield FileProblem("truncated_file", f"record header of packet {n + 1} cut short")
            return
        sec, frac, caplen, _ = rec.unpack(hdr)
        if caplen > MAX_RECORD:
            yield FileProblem("corrupt_file", f"packet {n + 1} claims {caplen} bytes")
            return
        data = f.read(caplen)
        if len(data) < caplen:
            yield FileProblem("truncated_file",
                              f"packet {n + 1} cut short ({len(data)} of {caplen} bytes)")
            return
        n += 1
        yield Frame(linktype, data, sec + frac * unit)


def _pcapng(f: BinaryIO) -> Iterator[Frame | FileProblem]:
    endian = "<"
    interfaces: list[tuple[int, float]] = []  # (linktype, seconds per tick)
    n = 0
    head = _PCAPNG_SHB + f.read(4)  # the magic was read by the caller
    while True:
        if not head:
            return
        if len(head) < 8:
            yield FileProblem("truncated_file", f"block header after packet {n} cut short")
            return
        btype = head[:4]
        prefix = b""
        if btype == _PCAPNG_SHB:
            prefix = f.read(4)
            if len(prefix) < 4:
                yield FileProblem("truncated_file", "pcapng section header cut short")
                return
            if prefix == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif prefix == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                yield FileProblem("corrupt_file", "pcapng byte-order magic missing")
                return
            interfaces = []
        block_type, length = struct.unpack(endian + "II", head)
        if length < 12 + len(prefix) or length % 4 or length > MAX_RECORD:
            yield FileProblem("corrupt_file", f"pcapng block of length {length}")
            return
        body = prefix + f.read(length - 12 - len(prefix))
        trailer = f.read(4)
        if len(body) < length - 12 or len(trailer) < 4:
            yield FileProblem("truncated_file", f"pcapng block after packet {n} cut short")
            return
        head = f.read(8)
        if btype == _PCAPNG_SHB:
            continue
        if block_type == 1:  # Interface Description Block
            if len(body) < 8:
                yield FileProblem("corrupt_file", "short interface description block", False)
                continue
            linktype = struct.unpack_from(endian + "H", body)[0]
            interfaces.append((linktype, _tsresol(body[8:], endian)))
        elif block_type in (6, 2):  # Enhanced / obsolete Packet Block
            if len(body) < 20:
                yield FileProblem("corrupt_file", "short packet block", False)
                continue
            if block_type == 6:
                iface, hi, lo, caplen = struct.unpack_from(endian + "IIII", body)
            else:
                iface, hi, lo, caplen = struct.unpack_from(endian + "H2xIII", body)
            if iface >= len(interfaces) or caplen > len(body) - 20:
                yield FileProblem("corrupt_file", f"packet block for unknown interface {iface}",
                                  False)
                continue
            linktype, tick = interfaces[iface]
            n += 1
            yield Frame(linktype, body[20 : 20 + caplen], ((hi << 32) | lo) * tick)
        elif block_type == 3:  # Simple Packet Block: no time stamp
            if not interfaces or len(body) < 4:
                yield FileProblem("corrupt_file", "simple packet block before any interface",
                                  False)
                continue
            origlen = struct.unpack_from(endian + "I", body)[0]
            n += 1
            yield Frame(interfaces[0][0], body[4 : 4 + origlen], 0.0)


def _tsresol(options: bytes, endian: str) -> float:
    pos = 0
    while pos + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = options[pos + 4]
            return 2.0 ** -(v & 0x7F) if v & 0x80 else 10.0 ** -v
        pos += 4 + ((length + 3) & ~3)
    return 1e-6
