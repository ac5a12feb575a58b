"""Turning records into the kernel's datagrams, per receiver, and sending them.

Each receiver is a `Target`, as each configfs target is in the kernel: it has
its own msgid counter (starting at 1, u32, §3.5) and its own `Backlog`. A
record accepted for a target gets its msgid and is encoded at once with
`netconsole.wire.encode_extended` (era `LATEST`: forward emulates a current
netconsole whatever kernel it runs on), then queued. `Target.flush` hands
queued datagrams to a `send` callable; when that raises `OSError` (network
unreachable, no route yet at boot, no buffer space) the record stays queued
and the target waits `RETRY_SECONDS` before trying again; a large burst to a
target that has not sent yet starts with one datagram and a short pause, so
the next hop's neighbour entry resolves before the burst (see WARMUP_BURST).
The backlog is bounded: when it is full the oldest record is dropped and counted, and since
its msgid was already spent the receiver sees that loss as a msgid gap.

`UdpTransport` is the only I/O here: one UDP socket per address family,
bound to the source port (6665 by default, like the kernel) with
SO_REUSEADDR, sending to each target's resolved address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from netconsole._hostport import HostPortError, format_hostport, parse_hostport
from netconsole.forward.kmsg import KmsgRecord
from netconsole.wire import LATEST, SYSDATA_ORDER, Flag, OutgoingRecord, encode_extended

DEFAULT_REMOTE_PORT = 6666  # netconsole's default remote port (§2.1)
DEFAULT_LOCAL_PORT = 6665  # and its default source port
DEFAULT_BACKLOG = 10_000  # records; at most ~8 KiB each once encoded
RETRY_SECONDS = 1.0  # wait after a failed send before the next try
# A burst to a next hop the kernel has no neighbour entry for yet waits in the
# neighbour's unresolved queue (net.ipv4.neigh.*.unres_qlen_bytes), which drops
# the oldest packets when full. In the QEMU lab the first ~76 datagrams of a
# 370-record boot replay vanished that way while sendto() reported success
# (2 boots of 5; none in 6 since this warm-up). So the first
# send of a target (and the first after a failed one) is a single datagram, and
# the rest of a burst larger than WARMUP_BURST records waits WARMUP_SECONDS for
# the neighbour to resolve. A small burst (a crash report after a quiet spell)
# fits in that queue and is sent at once.
WARMUP_BURST = 16
WARMUP_SECONDS = 0.2
_MSGID_MOD = 1 << 32

SYSDATA_NAMES = tuple(k.decode() for k in SYSDATA_ORDER)


class AddressError(ValueError):
    """A receiver that is not `HOST[:PORT]` or `[IPv6]:PORT`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Receiver:
    """Where one target sends: a host name or address literal, and a port."""

    host: str
    port: int

    def __str__(self) -> str:
        return format_hostport(self.host, self.port)


def parse_receiver(text: str, default_port: int = DEFAULT_REMOTE_PORT) -> Receiver:
    """`host`, `host:port`, `1.2.3.4:6666`, `[::1]:6666` or a bare `::1`.

    Raises:
        AddressError: empty host, bad brackets or a port outside 1..65535.
    """
    try:
        where = parse_hostport(text, default_port=default_port)
    except HostPortError as exc:
        raise AddressError(str(exc)) from None
    return Receiver(host=where.scoped, port=where.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodeConfig:
    """What every record forward sends carries, like a target's configfs settings.

    Attributes:
        release: the release prefix (`release` attribute, 6.6+), None for none.
        labels: userdata entries, in order (`userdata/<key>/value`, 6.9+).
        sysdata: which sysdata lines to add, a subset of cpu, taskname,
            release, msgid (written in that fixed order whatever the order here).
        kernel_release: the value of the `release=` sysdata line.
    """

    release: str | None = None
    labels: tuple[tuple[bytes, bytes], ...] = ()
    sysdata: frozenset[str] = frozenset()
    kernel_release: str = ""

    def __post_init__(self) -> None:
        unknown = self.sysdata - set(SYSDATA_NAMES)
        if unknown:
            raise ValueError(f"unknown sysdata {sorted(unknown)}; use {', '.join(SYSDATA_NAMES)}")


# userdata forward adds to records replayed from a pstore dump; the receiver
# stores them without seq accounting (stream/_sender.py PSTORE_FIELD).
PSTORE_KEY = b"pstore"
BOOT_KEY = b"boot"
PREVIOUS_BOOT = b"previous"


def outgoing(rec: KmsgRecord, config: EncodeConfig, *, msgid: int | None,
             taskname: bytes | None = None, cpu: int | None = None,
             pstore: str | None = None) -> OutgoingRecord:
    """The encoder input for one record sent by one target.

    The record is normalised to what a current kernel sends: the 4.2–4.8 `+`
    flag becomes `c` (both mean LOG_CONT), and a pre-5.10 free-form dictionary
    keeps only SUBSYSTEM and DEVICE, as 5.10+ kernels do.

    sysdata that forward cannot know is left out, as the kernel leaves out an
    empty value: `cpu` comes from a `caller=C<n>` field, `taskname` from the
    caller's pid (looked up by whoever calls this: it is I/O).

    Args:
        msgid: this target's next msgid; None when `msgid` sysdata is off.
        taskname: the `taskname` sysdata value, when known.
        cpu: the `cpu` sysdata value when known some other way than `caller=C<n>`.
        pstore: the dump's file name for a record replayed from pstore. Such a
            record gets the userdata ` pstore=<name>` and ` boot=previous`
            after the labels, and no release prefix and no sysdata: both
            describe the running kernel, not the one that wrote the dump.
    """
    sysdata: list[tuple[bytes, bytes]] = []
    wanted = config.sysdata if pstore is None else frozenset()
    if cpu is None and rec.caller is not None and rec.caller.startswith("C"):
        cpu = int(rec.caller[1:])
    if "cpu" in wanted and cpu is not None:
        sysdata.append((b"cpu", b"%d" % cpu))
    if "taskname" in wanted and taskname:
        sysdata.append((b"taskname", taskname))
    if "release" in wanted and config.kernel_release:
        sysdata.append((b"release", config.kernel_release.encode()))
    if "msgid" in wanted and msgid is not None:
        sysdata.append((b"msgid", b"%d" % msgid))
    userdata = config.labels
    if pstore is not None:
        userdata += ((PSTORE_KEY, pstore.encode()), (BOOT_KEY, PREVIOUS_BOOT))
    return OutgoingRecord(
        facility=rec.facility, level=rec.level, seq=rec.seq, ts_usec=rec.ts_usec,
        text=rec.text, flag=Flag.CONT if rec.flag is Flag.CONT_FRAGMENT else rec.flag,
        caller=rec.caller, release=config.release if pstore is None else None,
        dictionary=tuple((k, v) for k, v in rec.dictionary if k in (b"SUBSYSTEM", b"DEVICE")),
        userdata=userdata, sysdata=tuple(sysdata),
    )


def encode(rec: OutgoingRecord) -> list[bytes]:
    """The kernel's datagrams for `rec`, era LATEST (see the module docstring)."""
    return encode_extended(rec, LATEST)


@dataclass(slots=True)
class Queued:
    """One record's datagrams waiting for a target; `sent` of them already went."""

    seq: int | None  # None: not a /dev/kmsg record (pstore), no resume point
    datagrams: list[bytes]
    sent: int = 0
    tag: str | None = None  # the pstore dump digest it belongs to


@dataclass(slots=True, kw_only=True)
class TargetCounters:
    """Per-receiver counters, as `--stats` and SIGUSR1 print them."""

    records: int = 0  # records fully sent
    datagrams: int = 0
    backlog_dropped: int = 0  # oldest records dropped because the backlog was full
    send_errors: int = 0  # failed sends (each starts a retry wait)
    last_error: str | None = None


class Backlog:
    """A FIFO of `Queued` records holding at most `limit`; overflow drops the oldest."""

    __slots__ = ("_q", "limit")

    def __init__(self, limit: int = DEFAULT_BACKLOG) -> None:
        if limit < 1:
            raise ValueError("backlog limit must be at least 1")
        self.limit = limit
        self._q: deque[Queued] = deque()

    def __len__(self) -> int:
        return len(self._q)

    def push(self, item: Queued) -> Queued | None:
        """Queue `item`; returns the record dropped to make room, if any."""
        dropped = self._q.popleft() if len(self._q) >= self.limit else None
        self._q.append(item)
        return dropped

    def head(self) -> Queued | None:
        return self._q[0] if self._q else None

    def pop(self) -> Queued:
        return self._q.popleft()

    def tags(self) -> set[str]:
        """The tags of everything still queued."""
        return {q.tag for q in self._q if q.tag is not None}

    def first_seq(self) -> int | None:
        """The lowest kmsg seq still queued (records are queued in seq order)."""
        return next((q.seq for q in self._q if q.seq is not None), None)


Send = Callable[[Receiver, bytes], None]
SockAddr = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]


@dataclass(slots=True, kw_only=True)
class Target:
    """One receiver: msgid counter, backlog and counters (see the module docstring)."""

    receiver: Receiver
    backlog: Backlog = field(default_factory=Backlog)
    counters: TargetCounters = field(default_factory=TargetCounters)
    msgid: int = 0
    retry_at: float = 0.0
    warm: bool = False  # a send has succeeded since start or since the last failure

    def next_msgid(self) -> int:
        """The kernel increases msgid before formatting each message: 1, 2, ..."""
        self.msgid = (self.msgid + 1) % _MSGID_MOD
        return self.msgid

    def queue(self, seq: int | None, datagrams: list[bytes], tag: str | None = None) -> None:
        """Queue one record's datagrams; `tag` names what it belongs to (a pstore dump)."""
        if self.backlog.push(Queued(seq=seq, datagrams=datagrams, tag=tag)) is not None:
            self.counters.backlog_dropped += 1

    def flush(self, send: Send, now: float) -> bool:
        """Send what is queued, in order, until done or a send fails.

        Returns:
            True when the backlog is empty afterwards.
        """
        if now < self.retry_at:
            return not self.backlog
        warming = not self.warm and len(self.backlog) > WARMUP_BURST
        while (item := self.backlog.head()) is not None:
            while item.sent < len(item.datagrams):
                try:
                    send(self.receiver, item.datagrams[item.sent])
                except OSError as exc:
                    self.counters.send_errors += 1
                    self.counters.last_error = f"{type(exc).__name__}: {exc.strerror or exc}"
                    self.retry_at = now + RETRY_SECONDS
                    self.warm = False
                    return False
                item.sent += 1
                self.counters.datagrams += 1
                self.warm = True
                if warming:  # one datagram out; the rest after WARMUP_SECONDS
                    self.retry_at = now + WARMUP_SECONDS
                    if item.sent == len(item.datagrams):
                        self.backlog.pop()
                        self.counters.records += 1
                    return not self.backlog
            self.backlog.pop()
            self.counters.records += 1
        return True


class UdpTransport:
    """UDP sockets bound to the source port, one per address family, opened lazily.

    Receivers given by name are resolved on first use and again after a
    failed send, so a name that does not resolve yet at early boot is just a
    send error (the record waits in the backlog).
    """

    __slots__ = ("_addr", "_socks", "local_port")

    def __init__(self, local_port: int = DEFAULT_LOCAL_PORT) -> None:
        self.local_port = local_port
        self._socks: dict[int, socket.socket] = {}
        self._addr: dict[Receiver, tuple[int, SockAddr]] = {}

    def _socket(self, family: int) -> socket.socket:
        sock = self._socks.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", self.local_port))
            except OSError:
                sock.close()
                raise
            self._socks[family] = sock
        return sock

    def _resolve(self, receiver: Receiver) -> tuple[int, SockAddr]:
        cached = self._addr.get(receiver)
        if cached is None:
            try:
                infos = socket.getaddrinfo(receiver.host, receiver.port, type=socket.SOCK_DGRAM)
            except socket.gaierror as exc:
                raise OSError(exc.errno, f"cannot resolve {receiver.host}: {exc.strerror}") \
                    from None
            family, _, _, _, addr = infos[0]
            cached = self._addr[receiver] = (int(family), addr)
        return cached

    def prepare(self, receivers: list[Receiver]) -> None:
        """Bind the sockets for receivers given as address literals now, so a
        source port that cannot be bound is an error at start, not a retry loop.

        Raises:
            OSError: the bind failed.
        """
        for r in receivers:
            try:
                family = socket.AF_INET6 if ipaddress.ip_address(r.host).version == 6 \
                    else socket.AF_INET
            except ValueError:
                continue
            self._socket(family)

    def send(self, receiver: Receiver, datagram: bytes) -> None:
        """Send one datagram. Raises OSError (and forgets the resolution) on failure."""
        family, addr = self._resolve(receiver)
        try:
            self._socket(family).sendto(datagram, addr)
        except OSError:
            self._addr.pop(receiver, None)
            raise

    def close(self) -> None:
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()
