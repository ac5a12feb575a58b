"""Run in the guest: `python3 /lab/mkhsr.py NAME PORT1 PORT2` creates an HSR device.

busybox `ip` cannot (it knows no `type hsr` options) and pyroute2 has no HSR
attributes, so this is the one RTM_NEWLINK request `ip link add NAME type hsr
slave1 PORT1 slave2 PORT2` sends, in stdlib Python. HSR devices set
IFF_DISABLE_NETPOLL (issue 18): netpoll refuses them like an old kernel refuses a
driver without ndo_poll_controller.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

RTM_NEWLINK = 16
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
NLA_F_NESTED = 0x8000
IFLA_IFNAME, IFLA_LINKINFO = 3, 18
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_HSR_SLAVE1, IFLA_HSR_SLAVE2 = 1, 2  # include/uapi/linux/if_link.h


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def newlink_hsr(name: str, port1: str, port2: str) -> bytes:
    data = (attr(IFLA_HSR_SLAVE1, struct.pack("=I", socket.if_nametoindex(port1)))
            + attr(IFLA_HSR_SLAVE2, struct.pack("=I", socket.if_nametoindex(port2))))
    info = attr(IFLA_INFO_KIND, b"hsr") + attr(IFLA_INFO_DATA | NLA_F_NESTED, data)
    # struct ifinfomsg: family, pad, type, index, flags, change
    body = (struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
            + attr(IFLA_IFNAME, name.encode() + b"\0")
            + attr(IFLA_LINKINFO | NLA_F_NESTED, info))
    flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
    return struct.pack("=IHHII", 16 + len(body), RTM_NEWLINK, flags, 1, 0) + body


def main(argv: list[str]) -> int:
    name, port1, port2 = argv
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.bind((0, 0))
        s.send(newlink_hsr(name, port1, port2))
        reply = s.recv(65536)
    kind = struct.unpack_from("=H", reply, 4)[0]
    error = struct.unpack_from("=i", reply, 16)[0] if kind == NLMSG_ERROR else 0
    if error:
        print(f"LAB: mkhsr {name}: {os.strerror(-error)}")
        return 1
    print(f"LAB: mkhsr {name} over {port1} and {port2}: created")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
