"""The guest's frames as QEMU captured them (`filter-dump`), read two ways.

* `frames(path)`: a minimal pcap reader (Ethernet/IPv4/UDP only), for what the
  tests check below the UDP payload: destination MAC, addresses, ports.
* `netconsole_decode(path, port)`: the project's own `netconsole decode` CLI on the
  capture, its JSON lines turned back into records the console comparison takes.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab._errors import LabError

DECODE_TIMEOUT = 300.0
_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
               b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
_RAW_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True, slots=True)
class Frame:
    """One Ethernet frame carrying IPv4/UDP."""

    dst_mac: str
    src_mac: str
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    payload: bytes


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def frames(path: Path) -> Iterator[Frame]:
    """IPv4/UDP frames of a classic pcap with Ethernet link type (what filter-dump writes)."""
    data = path.read_bytes()
    endian = _PCAP_MAGIC.get(data[:4])
    if endian is None:
        raise LabError(f"{path}: not a pcap file")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    if linktype != 1:
        raise LabError(f"{path}: link type {linktype}, not Ethernet")
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if len(pkt) < 42 or pkt[12:14] != b"\x08\x00":
            continue
        ihl = (pkt[14] & 0x0F) * 4
        if pkt[23] != 17:  # not UDP
            continue
        udp = pkt[14 + ihl:]
        sport, dport, length = struct.unpack("!HHH", udp[:6])
        yield Frame(dst_mac=_mac(pkt[0:6]), src_mac=_mac(pkt[6:12]),
                    src_ip=".".join(map(str, pkt[26:30])), dst_ip=".".join(map(str, pkt[30:34])),
                    src_port=sport, dst_port=dport, payload=bytes(udp[8:length]))


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A record of `netconsole decode`'s JSON output (docs/records.md), text as bytes."""

    host: str
    port: int
    local_port: int
    mode: str
    seq: int | None
    ts_usec: int | None
    text: bytes
    release: str | None
    facility: int | None
    level: int | None
    complete: bool


@dataclass(slots=True)
class DecodeOutput:
    records: list[DecodedRecord] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    returncode: int = 0


def _text(obj: dict[str, Any]) -> bytes:
    raw = obj.get("raw")
    if raw is None:
        return str(obj["text"]).encode()
    # the kernel's own escaping: every byte below 0x20, from 0x7f, and `\` as \xHH
    return _RAW_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), str(raw).encode("latin-1"))


def netconsole_decode(pcap: Path, *ports: int) -> DecodeOutput:
    """`python -m netconsole decode PCAP --port P... --events --summary json`."""
    cmd = [sys.executable, "-m", "netconsole", "decode", str(pcap), "--events",
           "--summary", "json", *(arg for p in ports for arg in ("--port", str(p)))]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=DECODE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(cmd)} timed out") from exc
    out = DecodeOutput(returncode=proc.returncode)
    for line in proc.stdout.splitlines():
        obj = json.loads(line)
        if "event" in obj:
            out.events.append(obj)
            continue
        out.records.append(DecodedRecord(
            host=obj["host"], port=obj["port"], local_port=obj["local_port"], mode=obj["mode"],
            seq=obj["seq"], ts_usec=obj["ts_usec"], text=_text(obj), release=obj["release"],
            facility=obj["facility"], level=obj["level"], complete=obj["complete"]))
    err = proc.stderr.decode(errors="replace").strip()
    try:
        out.summary = json.loads(err.splitlines()[-1]) if err else {}
    except json.JSONDecodeError as exc:
        raise LabError(f"{' '.join(cmd)}: no JSON summary on stderr:\n{err[-2000:]}") from exc
    return out
