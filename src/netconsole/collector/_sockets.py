"""UDP sockets for the receiver: binding, buffers, batched receive, kernel drops.

* One dual-stack IPv6 socket per port by default (`::` with IPV6_V6ONLY off,
  so IPv4 senders arrive as `::ffff:a.b.c.d` and are shown as plain IPv4);
  a plain IPv4 literal binds an IPv4 socket.
* `SO_REUSEPORT`, so every worker process binds the same ports and the kernel's
  4-tuple hash keeps each sender (fixed source port) on one worker.
* A large receive buffer; when `net.core.rmem_max` caps it, say so.
* `recvmmsg(2)` through ctypes takes up to `BATCH` datagrams per system call;
  where it is missing, a `recvfrom` loop does the same job.
* Kernel drops (`/proc/net/udp{,6}`, the `drops` column of our sockets).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass

BATCH = 256
# netconsole never sends more than 1000 bytes (§4.1); a larger datagram is
# received cut at this size and rejected as too large.
DATAGRAM_MAX = 2048
# What waits here while a worker commits a batch, or when a fleet bursts (a bad
# kernel push oopsing many hosts at once): ~60,000 small datagrams.
DEFAULT_RCVBUF = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Bound:
    """An open socket and what it is bound to."""

    sock: socket.socket
    address: str
    port: int
    rcvbuf: int
    rcvbuf_wanted: int

    @property
    def capped(self) -> bool:
        # Linux reports twice the value it granted; less than asked means rmem_max won.
        return self.rcvbuf < self.rcvbuf_wanted


def open_udp(address: str, port: int, *, rcvbuf: int = DEFAULT_RCVBUF,
             reuseport: bool = True) -> Bound:
    """Bind one UDP socket.

    Args:
        address: `::` (dual stack), an IPv6 address, or an IPv4 address.
        port: the UDP port.
        rcvbuf: receive buffer to ask for (bytes).
        reuseport: set SO_REUSEPORT so several workers share the port.

    Raises:
        OSError: the bind failed (port in use, address not local, no permission).
    """
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if family == socket.AF_INET6 and ip == ipaddress.IPv6Address("::"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < rcvbuf:
            # As root the cap does not apply to SO_RCVBUFFORCE.
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
    return Bound(sock, address, sock.getsockname()[1], granted, rcvbuf)


def rmem_max() -> int | None:
    try:
        with open("/proc/sys/net/core/rmem_max") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def kernel_drops(socks: Iterable[socket.socket]) -> int:
    """Datagrams the kernel dropped on these sockets (full buffer), from /proc/net/udp*."""
    inodes = {str(os.fstat(s.fileno()).st_ino) for s in socks}
    total = 0
    for path in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9] in inodes:
                        total += int(cols[12])
        except (OSError, ValueError, StopIteration):
            continue
    return total


# -- batched receive ------------------------------------------------------------

class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_IOVec)), ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


# What _MMSG reads; elsewhere (not LP64) the plain recvmsg loop is used.
_LAYOUT_OK = (ctypes.sizeof(_MMsgHdr) == 64 and _MsgHdr.namelen.offset == 8
              and _MsgHdr.flags.offset == 48 and _MMsgHdr.len.offset == 56)


_NAME_LEN = 28  # sizeof(struct sockaddr_in6)
# struct mmsghdr on LP64 Linux: msg_namelen at 8, msg_flags at 48, msg_len at 56.
_MMSG = struct.Struct("=8xI36xi4xI4x")
_MMSG_SIZE = 64
_MSG_TRUNC = 0x20


def _libc_recvmmsg() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.recvmmsg
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


_RECVMMSG = _libc_recvmmsg()
Datagram = tuple[bytes, str, int, bool]  # payload, host, port, truncated


class BatchReceiver:
    """Receives up to `BATCH` datagrams from one non-blocking socket per call."""

    def __init__(self, sock: socket.socket, batch: int = BATCH) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.batch = batch
        self._names: dict[bytes, tuple[str, int]] = {}
        self.use_mmsg = _RECVMMSG is not None and _LAYOUT_OK
        if self.use_mmsg:
            self._bufs = ctypes.create_string_buffer(DATAGRAM_MAX * batch)
            self._namebuf = ctypes.create_string_buffer(_NAME_LEN * batch)
            self._iovs = (_IOVec * batch)()
            self._msgs = (_MMsgHdr * batch)()
            base = ctypes.addressof(self._bufs)
            nbase = ctypes.addressof(self._namebuf)
            for i in range(batch):
                self._iovs[i].base = base + i * DATAGRAM_MAX
                self._iovs[i].len = DATAGRAM_MAX
                m = self._msgs[i].hdr
                m.name = nbase + i * _NAME_LEN
                m.iov = ctypes.pointer(self._iovs[i])
                m.iovlen = 1
            self._view = memoryview(self._bufs).cast("B")
            self._nview = memoryview(self._namebuf).cast("B")
            # The headers as bytes: read back with one struct pass, and reset
            # (`namelen` is in and out) by copying a pristine image over the used
            # ones; ctypes attribute access per message cost more than the syscall.
            self._mview = memoryview(self._msgs).cast("B")
            for i in range(batch):
                self._msgs[i].hdr.namelen = _NAME_LEN
            self._pristine = bytes(self._mview)

    def receive(self) -> list[Datagram]:
        """Everything waiting, up to one batch; empty when nothing is."""
        if not self.use_mmsg:
            return self._receive_loop()
        assert _RECVMMSG is not None
        n = _RECVMMSG(self.fd, ctypes.addressof(self._msgs), self.batch, socket.MSG_DONTWAIT,
                      None)
        if n < 0:
            err = ctypes.get_errno()
            if err in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                return []
            raise OSError(err, os.strerror(err))
        out = []
        view, nview, names = self._view, self._nview, self._names
        used = n * _MMSG_SIZE
        start = name = 0
        for namelen, flags, length in _MMSG.iter_unpack(self._mview[:used]):
            raw = bytes(nview[name : name + namelen])
            addr = names.get(raw)
            if addr is None:
                addr = self._name(raw)
            out.append((bytes(view[start : start + min(length, DATAGRAM_MAX)]), addr[0], addr[1],
                        bool(flags & _MSG_TRUNC)))
            start += DATAGRAM_MAX
            name += _NAME_LEN
        self._mview[:used] = self._pristine[:used]
        return out

    def _name(self, raw: bytes) -> tuple[str, int]:
        family = struct.unpack_from("=H", raw)[0]
        port = struct.unpack_from("!H", raw, 2)[0]
        if family == socket.AF_INET:
            host = socket.inet_ntop(socket.AF_INET, raw[4:8])
        else:
            host = _plain(socket.inet_ntop(socket.AF_INET6, raw[8:24]))
        if len(self._names) > 100_000:
            self._names.clear()
        self._names[raw] = (host, port)
        return host, port

    def _receive_loop(self) -> list[Datagram]:
        out: list[Datagram] = []
        for _ in range(self.batch):
            try:
                data, _, flags, addr = self.sock.recvmsg(DATAGRAM_MAX)
            except (BlockingIOError, InterruptedError):
                break
            out.append((data, _plain(addr[0]), addr[1], bool(flags & _MSG_TRUNC)))
        return out


def _plain(host: str) -> str:
    """`::ffff:10.0.0.1` (an IPv4 sender on a dual-stack socket) -> `10.0.0.1`."""
    return host[7:] if host.startswith("::ffff:") and "." in host else host


_SO_MEMINFO = 55  # asm-generic/socket.h; linux/sock_diag.h's SK_MEMINFO_* follow
_SK_MEMINFO_VARS = 9
_SK_MEMINFO_DROPS = 8


@dataclass(frozen=True, slots=True)
class QueueState:
    """A socket's receive queue as the kernel counts it (SO_MEMINFO)."""

    fill: float
    """Queued bytes over the buffer, 0..1 (1.0 when the kernel cannot say)."""
    drops: int
    """Datagrams the kernel dropped on this socket so far."""


def queue_state(sock: socket.socket) -> QueueState:
    """`sock`'s receive queue now."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, 4 * _SK_MEMINFO_VARS)
    except OSError:
        return QueueState(fill=1.0, drops=0)
    mem = struct.unpack_from(f"={_SK_MEMINFO_VARS}I", raw)
    rmem_alloc, rcvbuf, drops = mem[0], mem[1], mem[_SK_MEMINFO_DROPS]
    return QueueState(fill=rmem_alloc / rcvbuf if rcvbuf else 1.0, drops=drops)
