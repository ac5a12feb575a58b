"""The host side: UDP sockets on 127.0.0.1 that record every datagram the guest sends.

QEMU user networking turns the guest's `10.0.2.2:<port>` into `127.0.0.1:<port>`
on the host, from 127.0.0.1 and an ephemeral source port, so each test binds
free ports on loopback (port 0: the kernel picks) and points the guest at them.

This is the one place that knows how datagrams are received. When the real
`netconsole listen` (issue 3) lands, a `ListenReceiver` with the same shape
(`ports`, `start()`, `stop()`, `datagrams`) replaces `UdpReceiver` in
`make_receiver()`, and every test follows.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

LOOPBACK = "127.0.0.1"
RCVBUF = 16 * 1024 * 1024
# After the guest is gone, keep reading until the sockets are quiet this long.
DRAIN_QUIET = 0.3


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP datagram as it arrived on the host."""

    payload: bytes
    src_host: str
    src_port: int
    local_port: int
    at: float


class Receiver(Protocol):
    """What the tests need from a receiver."""

    ports: list[int]
    datagrams: list[Datagram]

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(slots=True)
class UdpReceiver:
    """`count` UDP sockets on loopback, read by one thread until `stop()`."""

    count: int = 1
    ports: list[int] = field(default_factory=list)
    datagrams: list[Datagram] = field(default_factory=list)
    _socks: list[socket.socket] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _last: float = 0.0

    def start(self) -> None:
        for _ in range(self.count):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            s.bind((LOOPBACK, 0))
            s.setblocking(False)
            self._socks.append(s)
            self.ports.append(s.getsockname()[1])
        self._thread = threading.Thread(target=self._run, name="lab-receiver", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for s in self._socks:
            sel.register(s, selectors.EVENT_READ)
        try:
            while True:
                ready = sel.select(timeout=0.05)
                for key, _ in ready:
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    local_port = sock.getsockname()[1]
                    while True:
                        try:
                            payload, (host, port) = sock.recvfrom(65535)
                        except BlockingIOError:
                            break
                        now = time.time()
                        self._last = time.monotonic()
                        self.datagrams.append(Datagram(payload, host, port, local_port, now))
                if (not ready and self._stopping.is_set()
                        and time.monotonic() - self._last >= DRAIN_QUIET):
                    return
        finally:
            sel.close()

    def stop(self) -> None:
        """Drain what is queued, then close the sockets."""
        self._last = max(self._last, time.monotonic())
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for s in self._socks:
            s.close()

    def on_port(self, port: int) -> list[Datagram]:
        return [d for d in self.datagrams if d.local_port == port]

    def __enter__(self) -> UdpReceiver:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def make_receiver(count: int = 1) -> UdpReceiver:
    """The receiver every lab test uses (swap point for `netconsole listen`)."""
    return UdpReceiver(count=count)
