"""The receiver's sockets over real loopback: dual stack, batches, truncation, drops."""

from __future__ import annotations

import socket

import pytest

from netconsole.collector._sockets import BatchReceiver, kernel_drops, open_udp


@pytest.mark.parametrize("mmsg", [True, False], ids=["recvmmsg", "recvmsg-loop"])
def test_batch_receiver_dual_stack(mmsg: bool) -> None:
    bound = open_udp("::", 0)
    rx = BatchReceiver(bound.sock)
    if not mmsg:
        rx.use_mmsg = False
    assert rx.use_mmsg is mmsg
    v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    v4.bind(("127.0.0.3", 0))
    try:
        for i in range(300):
            v4.sendto(b"v4 %d" % i, ("127.0.0.1", bound.port))
        v6.sendto(b"v6", ("::1", bound.port))
        v4.sendto(b"x" * 3000, ("127.0.0.1", bound.port))
        got = []
        while True:
            batch = rx.receive()
            if not batch:
                break
            got += batch
    finally:
        v4.close()
        v6.close()
        bound.sock.close()
    assert [g[0] for g in got[:300]] == [b"v4 %d" % i for i in range(300)]
    assert {g[1] for g in got[:300]} == {"127.0.0.3"}  # shown as IPv4, not ::ffff:
    assert got[300][1] == "::1" and got[300][0] == b"v6"
    big = got[301]
    assert big[3] is True and len(big[0]) == 2048  # cut, and flagged as truncated


def test_ipv4_literal_binds_ipv4_only() -> None:
    bound = open_udp("127.0.0.1", 0)
    try:
        assert bound.sock.family == socket.AF_INET
    finally:
        bound.sock.close()


def test_kernel_drops_are_read_from_proc() -> None:
    bound = open_udp("127.0.0.1", 0, rcvbuf=4096)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(2000):
            s.sendto(b"y" * 900, ("127.0.0.1", bound.port))
        assert kernel_drops([bound.sock]) > 0
    finally:
        s.close()
        bound.sock.close()
