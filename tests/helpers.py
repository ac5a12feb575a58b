"""Shared test helpers: the shipped real-kernel captures and their consoles."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from netconsole.capture import read_frames, udp_from_frame
from netconsole.capture._decode import CaptureDecoder
from netconsole.stream import Event, Record, Sender, SenderStream

DATA = Path(__file__).parent / "data"
CAPTURES = DATA / "captures"
KERNELS = sorted(p.name for p in CAPTURES.iterdir() if p.is_dir())
SCENARIOS = sorted(
    (k, p.stem) for k in KERNELS for p in (CAPTURES / k).glob("*.pcap")
)

# A kernel line of a serial console; the first line of a boot may carry
# terminal escape codes before it, hence `search`.
_CONSOLE_LINE = re.compile(rb"\[\s*(\d+)\.(\d{6})\] (.*)")


def capture(kernel: str, scenario: str) -> Path:
    return CAPTURES / kernel / f"{scenario}.pcap"


def console_lines(kernel: str, scenario: str) -> list[tuple[int, bytes]]:
    """(ts_usec, text) of every kernel line the guest's serial console printed."""
    out = []
    raw = (CAPTURES / kernel / f"{scenario}.console.log").read_bytes()
    for line in raw.split(b"\n"):
        m = _CONSOLE_LINE.search(line.rstrip(b"\r"))
        if m:
            out.append((int(m.group(1)) * 1_000_000 + int(m.group(2)), m.group(3)))
    return out


def udp_payloads(path: Path) -> Iterator[tuple[float, str, int, int, bytes]]:
    """(time, src, sport, dport, payload) of every UDP datagram in a capture."""
    with path.open("rb") as f:
        for fr in read_frames(f):
            dg = udp_from_frame(fr.linktype, fr.data, fr.time)  # type: ignore[union-attr]
            yield dg.time, dg.src, dg.sport, dg.dport, dg.payload


def decode_capture(path: Path) -> list[Event]:
    dec = CaptureDecoder()
    with path.open("rb") as f:
        events = list(dec.frames(read_frames(f), path.name))
    return events + list(dec.finish())


def records(events: Iterable[Event]) -> list[Record]:
    return [e for e in events if isinstance(e, Record)]


def record_lines(recs: Iterable[Record]) -> list[tuple[int, bytes]]:
    """What the console would have printed for these records: one entry per text line."""
    out = []
    for r in recs:
        assert r.ts_usec is not None
        out += [(r.ts_usec, line) for line in r.text.split(b"\n")]
    return out


SENDER = Sender(host="192.0.2.1", port=6665, local_port=6666)


def feed_all(stream: SenderStream, datagrams: Iterable[bytes], now: float = 0.0,
             step: float = 0.001) -> list[Event]:
    """Feed datagrams `step` seconds apart, then flush; return every event."""
    t = now
    for d in datagrams:
        stream.feed(d, t)
        t += step
    stream.flush(t)
    return stream.events()


def pcap_bytes(frames: Iterable[tuple[float, bytes]], linktype: int = 1) -> bytes:
    """A classic little-endian microsecond pcap of the given frames."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for t, data in frames:
        sec = int(t)
        out.append(struct.pack("<IIII", sec, round((t - sec) * 1e6), len(data), len(data)))
        out.append(data)
    return b"".join(out)


def udp4_frame(payload: bytes, src: str = "192.0.2.1", dst: str = "192.0.2.2",
               sport: int = 6665, dport: int = 6666) -> bytes:
    """An Ethernet/IPv4/UDP frame as netpoll builds it (§4.1): TTL 64, DF clear."""
    import ipaddress

    udp = struct.pack("!HHHH", sport, dport, len(payload) + 8, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    eth = b"\x52\x55\x0a\x00\x02\x02" + b"\x52\x54\x00\x12\x34\x56" + b"\x08\x00"
    return eth + ip + udp
