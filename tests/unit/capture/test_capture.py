"""Reading captures: pcap/pcapng variants, link types, IP versions, and bad input."""

from __future__ import annotations

import io
import ipaddress
import struct

import pytest

from netconsole.capture import (
    FileProblem,
    Frame,
    PacketError,
    PacketReject,
    read_frames,
    udp_from_frame,
)
from tests.helpers import capture, pcap_bytes, udp4_frame

PAYLOAD = b"6,1,2,-;hello\n"


def frames(data: bytes) -> list[Frame | FileProblem]:
    return list(read_frames(io.BytesIO(data)))


def test_pcap_little_endian_microseconds() -> None:
    [fr] = frames(pcap_bytes([(1700000000.25, udp4_frame(PAYLOAD))]))
    assert isinstance(fr, Frame)
    assert fr.time == pytest.approx(1700000000.25)
    dg = udp_from_frame(fr.linktype, fr.data, fr.time)
    assert (dg.src, dg.sport, dg.dst, dg.dport, dg.payload) == (
        "192.0.2.1", 6665, "192.0.2.2", 6666, PAYLOAD)


def test_pcap_big_endian_nanoseconds() -> None:
    frame = udp4_frame(PAYLOAD)
    data = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
    data += struct.pack(">IIII", 10, 500_000_000, len(frame), len(frame)) + frame
    [fr] = frames(data)
    assert isinstance(fr, Frame) and fr.time == pytest.approx(10.5)


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _ipv6_udp(payload: bytes, src: str = "2001:db8::1", dst: str = "2001:db8::2") -> bytes:
    udp = struct.pack("!HHHH", 6665, 6666, len(payload) + 8, 0) + payload
    # with a hop-by-hop extension header in front of UDP
    hbh = bytes([17, 0]) + b"\x01\x04\0\0\0\0"
    return (struct.pack("!IHBB", 0x60000000, len(hbh) + len(udp), 0, 32)
            + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed + hbh + udp)


def test_pcapng_two_interfaces_sll2_and_ethernet_ipv6() -> None:
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb_eth = _block(1, struct.pack("<HHI", 1, 0, 65535))
    # nanosecond resolution on the cooked interface (if_tsresol = 9)
    idb_sll2 = _block(1, struct.pack("<HHI", 276, 0, 65535) + struct.pack("<HHB3x", 9, 1, 9)
                      + b"\0" * 4)
    eth6 = b"\x00" * 12 + b"\x86\xdd" + _ipv6_udp(PAYLOAD)
    sll2 = struct.pack("!HHIHBB", 0x0800, 0, 2, 1, 0, 6) + b"\0" * 8 + udp4_frame(PAYLOAD)[14:]
    epb1 = _block(6, struct.pack("<IIIII", 0, 0, 5_000_000, len(eth6), len(eth6)) + eth6)
    epb2 = _block(6, struct.pack("<IIIII", 1, 0, 7_000_000_000 & 0xFFFFFFFF, len(sll2),
                                 len(sll2)) + sll2)
    out = frames(shb + idb_eth + idb_sll2 + epb1 + epb2)
    assert all(isinstance(f, Frame) for f in out)
    dgs = [udp_from_frame(f.linktype, f.data, f.time) for f in out]  # type: ignore[union-attr]
    assert [d.src for d in dgs] == ["2001:db8::1", "192.0.2.1"]
    assert [d.payload for d in dgs] == [PAYLOAD, PAYLOAD]
    assert dgs[0].time == pytest.approx(5.0)


def test_vlan_tagged_and_linux_cooked_v1() -> None:
    eth = udp4_frame(PAYLOAD)
    tagged = eth[:12] + b"\x81\x00\x00\x05" + eth[12:]
    assert udp_from_frame(1, tagged, 0).payload == PAYLOAD
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\0" * 8, 0x0800) + eth[14:]
    assert udp_from_frame(113, sll, 0).payload == PAYLOAD
    assert udp_from_frame(101, eth[14:], 0).payload == PAYLOAD


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda f: f[:20], PacketReject.TRUNCATED),
        (lambda f: f[:12] + b"\x08\x06" + f[14:], PacketReject.NOT_IP),
        (lambda f: f[:23] + b"\x06" + f[24:], PacketReject.NOT_UDP),
        (lambda f: f[:20] + b"\x20\x00" + f[22:], PacketReject.IP_FRAGMENT),
        (lambda f: f[:14] + b"\x55" + f[15:], PacketReject.BAD_IP),
        (lambda f: f[:-3], PacketReject.TRUNCATED),
    ],
)
def test_bad_frames_get_a_reason(mutate, reason: PacketReject) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PacketError) as exc:
        udp_from_frame(1, mutate(udp4_frame(PAYLOAD)), 0)
    assert exc.value.reason is reason


def test_unknown_linktype() -> None:
    with pytest.raises(PacketError) as exc:
        udp_from_frame(147, b"xx", 0)
    assert exc.value.reason is PacketReject.LINKTYPE


def test_truncated_file_keeps_what_came_before() -> None:
    data = capture("6.12.117+deb12-amd64", "extended").read_bytes()
    out = frames(data[: len(data) // 2])
    assert isinstance(out[-1], FileProblem) and out[-1].reason == "truncated_file"
    assert sum(isinstance(f, Frame) for f in out) > 100


@pytest.mark.parametrize("data", [b"", b"\xd4\xc3", b"hello world, no capture", b"\0" * 100])
def test_not_a_capture(data: bytes) -> None:
    [problem] = frames(data)
    assert isinstance(problem, FileProblem) and problem.fatal


def test_corrupt_record_length() -> None:
    data = pcap_bytes([(1.0, udp4_frame(PAYLOAD))])
    data = data[:24] + struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 10) + data[40:]
    [problem] = frames(data)
    assert isinstance(problem, FileProblem) and problem.reason == "corrupt_file"
