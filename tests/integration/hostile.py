"""Hostile netconsole traffic, built from the wire grammar, and a storm of it at a real
`netconsole listen`: what tests/integration/test_fuzz_listen.py and
bench/fuzz_listen.py share.

`hostile_datagrams` is a seeded generator (the same seed, the same datagrams)
that knows the grammar of kernel-netconsole.md §4: it writes extended headers
with extreme numbers (≥ 2**63, u64 overflow, thousands of digits, negative),
fragment bombs (huge or inconsistent `ncfrag` totals and offsets, many open
records per sender, overlapping pieces), conflicting copies of fragments,
empty and 65,507-byte datagrams, invalid UTF-8 and escapes, thousands of
userdata fields, basic-mode junk, and mutations of kernel-exact records.

`Storm` sends them from many senders (distinct 127.x.y.z source addresses,
set per datagram with IP_PKTINFO, times several source ports), keeping the
receiver's socket queue short so the datagrams are parsed, not dropped.
Loopback only.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netconsole.wire import OutgoingRecord, encode_extended

IP_PKTINFO = 8
UDP_MAX = 65_507  # the largest UDP payload over IPv4

_NUMBERS = (
    b"0", b"1", b"7", b"4294967295", b"4294967296", b"9223372036854775807",
    b"9223372036854775808", b"18446744073709551615", b"18446744073709551616",
    b"99999999999999999999", b"1" * 40, b"9" * 1500, b"-1", b"-9223372036854775809",
    b"007", b"",
)
_RELEASES = (b"", b"6.12.0-1-amd64,", b"\xff\xfe\xc3\x28,", b"r" * 1500 + b",",
             b"\x1b[2J\x1b]0;PWNED\x07,", b"6.1\xe2\x80\xae,", b"-,", b"1.,")
_EXTRAS = (b"", b",caller=T1", b",caller=C99999999999999999999999", b",caller=", b"," * 1500,
           b",ncfrag=0/10,ncfrag=0/10", b",x=\xff", b",ncfrag=-1/5", b",ncfrag=5/3",
           b",ncfrag=999999999/999999999", b",ncfrag=0/0", b",ncfrag=0/131073",
           b",ncfrag=1/", b",unknown,fields,here")
_TEXTS = (
    b"innocent \x1b]0;PWNED\x07\x1b[2J",
    b"\xc2\x9b31m C1 CSI \xe2\x80\xae bidi [bold]markup[/bold] [link=http://x]l[/link]",
    b"\xff\xfe\xfd invalid \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf",
    b"\\x1b\\xZZ\\x\\\\\\x00 escapes \\", b"\x00\x01\x02 nul", b"",
    b"Kernel panic - not syncing: fuzz", b"BUG: kernel NULL pointer dereference, address: 0",
    b"------------[ cut here ]------------",
)


_MANY_FIELDS = b"".join(b" u%d=%d\n" % (i, i) for i in range(150))


def _number(rnd: random.Random) -> bytes:
    if rnd.random() < 0.6:
        return b"%d" % rnd.randrange(1 << rnd.choice((3, 16, 32, 62)))
    return rnd.choice(_NUMBERS)


def _fields(rnd: random.Random) -> bytes:
    pick = rnd.random()
    if pick < 0.5:
        return b""
    if pick < 0.8:
        return b"".join(rnd.choice((b" k=v\n", b" msgid=%d\n" % rnd.randrange(1 << 40),
                                    b" hostname=\x1b[2Jevil\n", b" =\n", b" noequals\n",
                                    b"no-leading-space\n", b" msgid=" + b"9" * 30 + b"\n",
                                    b" cpu=-1\n", b" k=\xff\xfe\n"))
                        for _ in range(rnd.randrange(1, 8)))
    return _MANY_FIELDS  # as many as a datagram takes (more come as fragments)


def _header(rnd: random.Random, *, extra: bytes = b"") -> bytes:
    return b"%s%s,%s,%s,%s%s%s;" % (
        rnd.choice(_RELEASES) if rnd.random() < 0.3 else b"",
        _number(rnd), _number(rnd), _number(rnd),
        rnd.choice((b"-", b"-", b"c", b"+", b"x")),
        rnd.choice(_EXTRAS) if rnd.random() < 0.3 else b"", extra)


def _pad(data: bytes, size: int) -> bytes:
    return (data + b"A" * size)[:size]


class HostileDatagrams:
    """A seeded, structure-aware source of hostile datagrams, each with a sender index."""

    def __init__(self, seed: int, senders: int) -> None:
        self.rnd = random.Random(seed)
        self.senders = senders
        self.seeds = [d for seq in range(1, 40) for d in encode_extended(OutgoingRecord(
            facility=0, level=seq % 8, seq=seq, ts_usec=seq * 1000,
            text=b"seed %d " % seq + b"t" * (seq * 97 % 2500),
            userdata=((b"hostname", b"seed"),),
            sysdata=((b"msgid", b"%d" % seq),)))]
        # Record bodies (escaped, as on the wire) to cut into fragments: random
        # bytes, and thousands of userdata fields (only fragments carry that many).
        self.bodies = [
            encode_extended(OutgoingRecord(facility=0, level=4, seq=1, ts_usec=1,
                                           text=self.rnd.randbytes(size)))[0].split(b";", 1)[1]
            for size in (50, 900, 3000)
        ] + [b"many fields\n" + b"".join(b" u%d=%d\n" % (i, i) for i in range(n))
             for n in (1000, 3000, 9000)]

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        rnd = self.rnd
        kinds = (self._extended, self._bomb, self._conflict, self._size, self._basic,
                 self._mutated, self._fragmented_record)
        weights = (30, 8, 6, 1, 15, 20, 1)
        while True:
            kind = rnd.choices(kinds, weights)[0]
            sender = rnd.randrange(self.senders)
            for payload in kind():
                yield sender, payload

    def _extended(self) -> list[bytes]:
        rnd = self.rnd
        return [_header(rnd) + rnd.choice(_TEXTS) + rnd.choice((b"\n", b"")) + _fields(rnd)]

    def _bomb(self) -> list[bytes]:
        """Fragments that open records and never finish them, or announce nonsense."""
        rnd = self.rnd
        total = rnd.choice((131072, 131071, 1, 2, 65536, rnd.randrange(1, 1 << 17),
                            999_999_999, 0))
        seq = rnd.randrange(64)  # many records open at once per sender
        out = []
        for _ in range(rnd.randrange(1, 6)):
            offset = rnd.choice((0, rnd.randrange(max(total, 1)), total, total + 5,
                                 999_999_999))
            size = rnd.choice((1, 1, 100, 900, 1900, 1900, 5000))
            out.append(b"6,%d,%d,-,ncfrag=%d/%d;" % (seq, seq, offset, total)
                       + bytes([rnd.randrange(256)]) * size)
        return out

    def _conflict(self) -> list[bytes]:
        """Two copies of the same byte range of one record that disagree."""
        rnd = self.rnd
        seq, total = rnd.randrange(1 << 20), rnd.choice((2000, 4000, 20000))
        offset = rnd.randrange(0, total - 900)
        head = b"6,%d,%d,-,ncfrag=%d/%d;" % (seq, seq * 10, offset, total)
        first, second = b"a" * 900, b"a" * 450 + b"B" + b"a" * 449
        rest = b"6,%d,%d,-,ncfrag=%d/%d;" % (seq, seq * 10, offset + 900, total)
        return [head + first, head + second, rest + b"z" * min(900, total - offset - 900)]

    def _size(self) -> list[bytes]:
        rnd = self.rnd
        return [rnd.choice((
            b"",
            _pad(b"6,1,1,-;", UDP_MAX),
            _pad(b"6,1,1,-,ncfrag=0/131072;", UDP_MAX),
            _pad(b"[    1.000000] basic ", UDP_MAX),
            _pad(b"6,2,2,-;text\n" + b"".join(b" f%d=v\n" % i for i in range(9000)), UDP_MAX),
            rnd.randbytes(UDP_MAX),
        ))]

    def _basic(self) -> list[bytes]:
        rnd = self.rnd
        pick = rnd.random()
        if pick < 0.3:
            return [b"** %s printk messages dropped **\n" % _number(rnd)]
        if pick < 0.6:
            return [b"".join(b"[%5d.%06d] %s\n" % (rnd.randrange(99999), rnd.randrange(10**6),
                                                    rnd.choice(_TEXTS))
                             for _ in range(rnd.randrange(1, 12)))]
        if pick < 0.8:
            return [b"<%s>%s" % (_number(rnd), rnd.choice(_TEXTS))]
        return [rnd.randbytes(rnd.randrange(1, 1500))]

    def _mutated(self) -> list[bytes]:
        rnd = self.rnd
        d = bytearray(rnd.choice(self.seeds))
        for _ in range(rnd.randrange(1, 6)):
            op = rnd.random()
            pos = rnd.randrange(len(d) + 1)
            if op < 0.4 and d:
                d[min(pos, len(d) - 1)] = rnd.randrange(256)
            elif op < 0.6:
                del d[pos:]
            else:
                d[pos:pos] = rnd.choice((b";", b",", b"\\x", b"\n", b"ncfrag=", b"\x00",
                                         b" k=v\n", b"\xff", b"99999999999999999999"))
        return [bytes(d)]

    def _fragmented_record(self) -> list[bytes]:
        """A record cut as the kernel cuts it, shuffled, one piece repeated with a byte changed."""
        rnd = self.rnd
        seq = rnd.randrange(1 << 30)
        body = rnd.choice(self.bodies)
        pieces = [b"4,%d,%d,-,ncfrag=%d/%d;%s" % (seq, seq, off, len(body), body[off:off + 950])
                  for off in range(0, len(body), 950)]
        rnd.shuffle(pieces)
        bad = bytearray(rnd.choice(pieces))
        bad[-1] ^= 0x55
        pieces.insert(rnd.randrange(len(pieces) + 1), bytes(bad))
        return pieces


def source_address(i: int) -> bytes:
    """127.3.0.0/16 and up: never 127.0.0.1, where the well-behaved hosts send from."""
    return bytes([127, 3 + (i >> 16), (i >> 8) & 255, i & 255])


def _rx_queue(port: int) -> int:
    """Bytes waiting in the receive queues of the sockets bound to `port`."""
    queued = 0
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(name).read_text().splitlines()[1:]:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == port:
                queued += int(parts[4].split(":")[1], 16)
    return queued


@dataclass(frozen=True, slots=True, kw_only=True)
class StormResult:
    datagrams: int
    bytes: int
    seconds: float


class Storm:
    """Sends hostile datagrams to `port` on loopback from `addresses` x `ports` senders."""

    def __init__(self, port: int, *, addresses: int = 256, ports: int = 4,
                 max_queued: int = 4 << 20) -> None:
        self.dest = ("127.0.0.1", port)
        self.port = port
        self.max_queued = max_queued
        self.socks = []
        for _ in range(ports):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", 0))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
            self.socks.append(s)
        self.cmsgs = [[(socket.IPPROTO_IP, IP_PKTINFO,
                        struct.pack("=I4s4s", 0, source_address(i), b"\0" * 4))]
                      for i in range(addresses)]
        self.senders = addresses * ports

    def send(self, source: HostileDatagrams, n: int) -> StormResult:
        """Send `n` datagrams; waits whenever the receiver has `max_queued` bytes to read."""
        start = time.monotonic()
        sent = size = 0
        naddr = len(self.cmsgs)
        for sender, payload in source:
            if sent >= n:
                break
            sock = self.socks[sender // naddr]
            try:
                sock.sendmsg([payload], self.cmsgs[sender % naddr], 0, self.dest)
            except OSError:  # ENOBUFS under load: loopback's way of dropping
                time.sleep(0.001)
                sock.sendmsg([payload], self.cmsgs[sender % naddr], 0, self.dest)
            sent += 1
            size += len(payload)
            if sent % 256 == 0:
                while _rx_queue(self.port) > self.max_queued:
                    time.sleep(0.002)
        return StormResult(datagrams=sent, bytes=size, seconds=time.monotonic() - start)

    def drained(self) -> bool:
        return _rx_queue(self.port) == 0

    def close(self) -> None:
        for s in self.socks:
            s.close()


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):  # it ended meanwhile
                todo += [int(c) for c in (task / "children").read_text().split()]
    return out


def memory_kib(pid: int) -> dict[int, tuple[int, int]]:
    """{pid: (VmRSS, VmHWM)} in KiB for `pid` and its descendants."""
    out = {}
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        rss = re.search(r"VmRSS:\s+(\d+)", status)
        hwm = re.search(r"VmHWM:\s+(\d+)", status)
        if rss and hwm:
            out[p] = (int(rss.group(1)), int(hwm.group(1)))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total
