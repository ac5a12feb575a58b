"""Link-layer frame -> UDP datagram, with a counted reason for anything else.

Handles what `tcpdump -w` writes on Linux: Ethernet (with 802.1Q/802.1ad
tags), Linux cooked capture v1 and v2, raw IP, and BSD loopback; IPv4 (with
options) and IPv6 (with extension headers); UDP. netconsole never sends IP
fragments (§4.1: payload ≤ 1000 bytes), so a fragment is rejected, not
reassembled.
"""

from __future__ import annotations

import enum
import socket
import struct
from dataclasses import dataclass

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
_RAW_ALIASES = {12, 14, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6}

_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
_VLAN_TAGS = {0x8100, 0x88A8, 0x9100}
_IPPROTO_UDP = 17
_IPV6_EXT = {0, 43, 60}  # hop-by-hop, routing, destination options
_IPV6_FRAGMENT = 44


class PacketReject(enum.Enum):
    """Why a captured frame is not a UDP datagram we can hand on."""

    TRUNCATED = "truncated_packet"
    LINKTYPE = "unsupported_linktype"
    NOT_IP = "not_ip"
    BAD_IP = "bad_ip_header"
    NOT_UDP = "not_udp"
    IP_FRAGMENT = "ip_fragment"
    BAD_UDP = "bad_udp_header"


class PacketError(ValueError):
    def __init__(self, reason: PacketReject, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpDatagram:
    """One UDP datagram out of a capture."""

    time: float
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


def udp_from_frame(linktype: int, frame: bytes, time: float) -> UdpDatagram:
    """Peel link, IP and UDP headers off one captured frame.

    Raises:
        PacketError: with the reason the frame is not a whole UDP datagram.
    """
    if linktype == LINKTYPE_ETHERNET:
        if len(frame) < 14:
            raise PacketError(PacketReject.TRUNCATED, "short Ethernet header")
        ethertype = struct.unpack_from("!H", frame, 12)[0]
        off = 14
        while ethertype in _VLAN_TAGS:
            if len(frame) < off + 4:
                raise PacketError(PacketReject.TRUNCATED, "short VLAN tag")
            ethertype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
        return _ip(ethertype, frame, off, time)
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            raise PacketError(PacketReject.TRUNCATED, "short cooked (SLL) header")
        return _ip(struct.unpack_from("!H", frame, 14)[0], frame, 16, time)
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            raise PacketError(PacketReject.TRUNCATED, "short cooked (SLL2) header")
        return _ip(struct.unpack_from("!H", frame, 0)[0], frame, 20, time)
    if linktype in _RAW_ALIASES:
        if not frame:
            raise PacketError(PacketReject.TRUNCATED, "empty raw IP packet")
        version = frame[0] >> 4
        return _ip(_ETH_IPV4 if version == 4 else _ETH_IPV6 if version == 6 else 0,
                   frame, 0, time)
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            raise PacketError(PacketReject.TRUNCATED, "short loopback header")
        family = max(struct.unpack_from("<I", frame)[0], struct.unpack_from(">I", frame)[0])
        return _ip(_ETH_IPV4 if family == 2 else _ETH_IPV6 if family in (10, 24, 28, 30)
                   else 0, frame, 4, time)
    raise PacketError(PacketReject.LINKTYPE, f"link type {linktype}")


def _ip(ethertype: int, frame: bytes, off: int, time: float) -> UdpDatagram:
    if ethertype == _ETH_IPV4:
        if len(frame) < off + 20:
            raise PacketError(PacketReject.TRUNCATED, "short IPv4 header")
        vihl = frame[off]
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20:
            raise PacketError(PacketReject.BAD_IP, "bad IPv4 version or header length")
        total_len, frag = struct.unpack_from("!H2xH", frame, off + 2)
        if frag & 0x3FFF:  # MF set or a non-zero offset
            raise PacketError(PacketReject.IP_FRAGMENT, "IPv4 fragment")
        if frame[off + 9] != _IPPROTO_UDP:
            raise PacketError(PacketReject.NOT_UDP, f"IPv4 protocol {frame[off + 9]}")
        if len(frame) < off + ihl:
            raise PacketError(PacketReject.TRUNCATED, "short IPv4 options")
        src = socket.inet_ntop(socket.AF_INET, frame[off + 12 : off + 16])
        dst = socket.inet_ntop(socket.AF_INET, frame[off + 16 : off + 20])
        end = off + total_len if total_len >= ihl else len(frame)
        return _udp(frame[off + ihl : end], src, dst, time)
    if ethertype == _ETH_IPV6:
        if len(frame) < off + 40:
            raise PacketError(PacketReject.TRUNCATED, "short IPv6 header")
        if frame[off] >> 4 != 6:
            raise PacketError(PacketReject.BAD_IP, "bad IPv6 version")
        payload_len, nxt = struct.unpack_from("!HB", frame, off + 4)
        src = socket.inet_ntop(socket.AF_INET6, frame[off + 8 : off + 24])
        dst = socket.inet_ntop(socket.AF_INET6, frame[off + 24 : off + 40])
        body = frame[off + 40 : off + 40 + payload_len] if payload_len else frame[off + 40 :]
        pos = 0
        while nxt in _IPV6_EXT or nxt == _IPV6_FRAGMENT:
            if len(body) < pos + 8:
                raise PacketError(PacketReject.TRUNCATED, "short IPv6 extension header")
            if nxt == _IPV6_FRAGMENT:
                raise PacketError(PacketReject.IP_FRAGMENT, "IPv6 fragment")
            nxt, hlen = body[pos], (body[pos + 1] + 1) * 8
            pos += hlen
        if nxt != _IPPROTO_UDP:
            raise PacketError(PacketReject.NOT_UDP, f"IPv6 next header {nxt}")
        return _udp(body[pos:], src, dst, time)
    raise PacketError(PacketReject.NOT_IP, f"ethertype 0x{ethertype:04x}")


def _udp(seg: bytes, src: str, dst: str, time: float) -> UdpDatagram:
    if len(seg) < 8:
        raise PacketError(PacketReject.TRUNCATED, "short UDP header")
    sport, dport, length = struct.unpack_from("!HHH", seg)
    if length < 8:
        raise PacketError(PacketReject.BAD_UDP, f"UDP length {length}")
    if len(seg) < length:
        raise PacketError(PacketReject.TRUNCATED,
                          f"UDP datagram cut by the capture ({len(seg)} of {length} bytes)")
    return UdpDatagram(time=time, src=src, sport=sport, dst=dst, dport=dport,
                       payload=seg[8:length])
