"""`listen --forward syslog+udp://HOST:PORT` / `syslog+tcp://HOST:PORT`: RFC 5424 out.

Each stored record becomes one RFC 5424 message:

    <PRI>1 TIMESTAMP HOSTNAME kernel - - [netconsole@32473 seq="…" …] MSG

* PRI is facility * 8 + level (a record without a level, basic mode, is
  info; a facility past 23, which no kernel sends, is kern);
* TIMESTAMP is when the record was received, UTC, microseconds;
* HOSTNAME is the `hostname=` userdata when it is printable ASCII, else the
  sender's address;
* the netconsole facts are structured data under the SD-ID `netconsole@32473`
  (32473 is the example Private Enterprise Number RFC 5612 reserves for
  documentation: nothing is registered for netconsole): seq, boot, release,
  cpu, taskname, msgid, incomplete, then every other field (userdata, the
  printk dictionary) under its key, values escaped as RFC 5424 §6.3.3 says;
* MSG is the record's text, the bytes the kernel logged, as MSG-ANY (RFC
  5424 §6.4): without a BOM. printk promises no encoding (a driver may log
  any byte), so declaring UTF-8 would be a guess; nearly every kernel line is
  ASCII, which reads the same either way; and rsyslog keeps a BOM as three
  bytes at the start of the text it writes (`%msg%`), which no one wants.

Over TCP the messages are framed by octet counting (RFC 6587 §3.4.1,
`LEN SP MSG`), so a multi-line record stays one message; over UDP each
message is one datagram (RFC 5426).

Sending never stalls the receiver: `deliver` only appends to a bounded queue
(`QUEUE_LIMIT` records; what does not fit is dropped and counted) and one
thread formats and sends. Over TCP a connection that fails is made again with
backoff while the queue holds what waits. Plain TCP syslog has no
acknowledgement, so the messages of the last `REPLAY_SECONDS` before a
connection broke, and any its peer had not acknowledged, are sent again on
the next one: a server restart loses nothing, at the price of possible
duplicates (the `seq`, `boot` and `msgid` parameters tell them apart).
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import fcntl
import re
import select
import socket
import struct
import sys
import termios
import threading
import time
from dataclasses import dataclass

from netconsole.outputs._base import CommittedBatch, Delivered, OutputStats, host_of
from netconsole.wire import Flag

SD_ID = "netconsole@32473"
"""The SD-ID of the netconsole parameters; 32473 is RFC 5612's documentation PEN."""
APP_NAME = "kernel"
QUEUE_LIMIT = 20_000
"""Records waiting to be sent at most, per target (about 10 MB of kernel lines)."""
SEND_CHUNK = 500
"""Records formatted and sent in one go."""
REPLAY_SECONDS = 2.0
"""Over TCP, messages sent this recently when a connection breaks are sent again."""
CONNECT_TIMEOUT = 5.0
SEND_TIMEOUT = 10.0
"""A send that moves nothing for this long counts as a broken connection."""
FIRST_BACKOFF, MAX_BACKOFF = 0.1, 5.0
"""Seconds before the first reconnect, and at most between two."""
IDLE_CHECK = 0.2
"""While idle, how often the thread looks whether the server closed the connection."""
CLOSE_SECONDS = 5.0
"""At shutdown, how long the queue may take to drain."""
NO_LEVEL = 6  # info: a basic-mode record carries no level
MAX_HOSTNAME = 255  # RFC 5424 HOSTNAME
MAX_PARAM_NAME = 32  # RFC 5424 SD-NAME
_BAD_NAME = re.compile(r'[^\x21-\x7e]|[="\]]')
_SD_ESCAPE = re.compile(r'(["\\\]])')
_OWN_KEYS = frozenset((b"cpu", b"taskname", b"release", b"msgid"))
_SIOCOUTQ = getattr(termios, "TIOCOUTQ", 0x5411)  # the same ioctl for a TCP socket


class TargetError(ValueError):
    """A `--forward` value that names no syslog target."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SyslogTarget:
    """Where to forward: `transport` is `udp` or `tcp`."""

    transport: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"syslog+{self.transport}://{host}:{self.port}"


_URL = re.compile(r"syslog\+(udp|tcp)://(\[[0-9A-Fa-f:.]+\]|[^\[\]:/]+):(\d{1,5})/?")
_HOST = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def parse_target(url: str) -> SyslogTarget:
    """`syslog+tcp://HOST:PORT` (IPv6 in brackets) -> SyslogTarget.

    Raises:
        TargetError: with what to write instead.
    """
    m = _URL.fullmatch(url.strip()) if isinstance(url, str) else None
    if m is None:
        raise TargetError(f"--forward {url!r} is not syslog+udp://HOST:PORT or "
                          "syslog+tcp://HOST:PORT (e.g. syslog+tcp://127.0.0.1:514)")
    transport, host, port = m.group(1), m.group(2), int(m.group(3))
    host = host.strip("[]")
    if not 1 <= port <= 65535:
        raise TargetError(f"--forward {url!r}: port {port} is not between 1 and 65535")
    if ":" not in host and _HOST.fullmatch(host) is None:
        raise TargetError(f"--forward {url!r}: {host!r} is not an IP address or host name")
    if ":" in host:
        try:
            socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            raise TargetError(f"--forward {url!r}: {host!r} is not an IPv6 address") from None
    return SyslogTarget(transport=transport, host=host, port=port)


# -- the message (no I/O) ---------------------------------------------------------------


def sd_escape(value: str) -> str:
    """A PARAM-VALUE: `"`, `\\` and `]` escaped with a backslash (RFC 5424 §6.3.3)."""
    return _SD_ESCAPE.sub(r"\\\1", value)


def param_name(key: bytes) -> str | None:
    """A field key as an SD-NAME: printable ASCII but `= ] "` and space, at most
    32 characters; anything else becomes `_`. None for an empty key."""
    name = _BAD_NAME.sub("_", key.decode("ascii", "replace"))[:MAX_PARAM_NAME]
    return name or None


def _value(raw: bytes) -> str:
    # PARAM-VALUE is UTF-8: a byte that is not is written `\xHH` (then escaped as `\\xHH`).
    return raw.decode("utf-8", "backslashreplace")


def hostname(d: Delivered) -> str:
    """HOSTNAME: the `hostname=` userdata when RFC 5424 allows it, else the address."""
    name = host_of(d.record)
    if 0 < len(name) <= MAX_HOSTNAME and name.isascii() and name.isprintable() \
            and " " not in name:
        return name
    return d.record.sender.host


def timestamp(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def structured_data(d: Delivered) -> str:
    """The one SD-ELEMENT: the record's netconsole facts, then its other fields."""
    r = d.record
    params: list[tuple[str, str]] = []
    if r.seq is not None:
        params.append(("seq", str(r.seq)))
    if d.boot is not None:
        params.append(("boot", str(d.boot)))
    release = r.kernel_release
    if release is not None:
        params.append(("release", release))
    for key in (b"cpu", b"taskname", b"msgid"):
        value = r.field(key)
        if value is not None:
            params.append((key.decode(), _value(value)))
    if r.flag is not Flag.NONE:
        params.append(("cont", r.flag.value))
    if not r.complete:
        params.append(("incomplete", "1"))
    for key, value in r.fields:
        if key in _OWN_KEYS:
            continue
        name = param_name(key)
        if name is not None:
            params.append((name, _value(value)))
    body = "".join(f' {k}="{sd_escape(v)}"' for k, v in params)
    return f"[{SD_ID}{body}]"


def format_message(d: Delivered) -> bytes:
    """One record as an RFC 5424 message (unframed)."""
    r = d.record
    facility = r.facility if r.facility is not None and 0 <= r.facility <= 23 else 0
    level = r.level if r.level is not None and 0 <= r.level <= 7 else NO_LEVEL
    head = (f"<{facility * 8 + level}>1 {timestamp(r.received)} {hostname(d)} {APP_NAME} - - "
            f"{structured_data(d)} ")
    return head.encode("utf-8") + r.text  # MSG-ANY (see above)


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: `LEN SP MSG`."""
    return b"%d %s" % (len(message), message)


# -- the sender (a thread) ----------------------------------------------------------------


@dataclass(slots=True)
class _Sent:
    """A message on the current TCP connection, kept until it is surely through."""

    end: int  # the connection's byte count once it was written
    at: float
    entry: Delivered


class SyslogOutput:
    """Forwards committed records to one syslog server from its own thread."""

    def __init__(self, target: SyslogTarget, *, limit: int = QUEUE_LIMIT,
                 replay_seconds: float = REPLAY_SECONDS) -> None:
        self.target = target
        self.name = target.url
        self.limit = limit
        self.replay_seconds = replay_seconds
        self._queue: collections.deque[Delivered] = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = 0.0  # set by close()
        self._stats = OutputStats()
        self._sock: socket.socket | None = None
        self._udp_addr: tuple[object, ...] | None = None
        self._written = 0  # bytes written on the current TCP connection
        self._unsure: collections.deque[_Sent] = collections.deque()
        self._backoff = 0.0
        self._complained = False
        self._thread = threading.Thread(target=self._run, name=f"forward {self.name}",
                                        daemon=True)
        self._thread.start()

    # -- the receiver's side --------------------------------------------------------

    def deliver(self, batch: CommittedBatch) -> None:
        records = [e for e in batch.entries if type(e) is Delivered]
        if not records:
            return
        with self._cond:
            room = self.limit - len(self._queue)
            if room < len(records):
                self._stats.dropped += len(records) - max(room, 0)
                records = records[:max(room, 0)]
            self._queue.extend(records)
            self._cond.notify()

    def reopen(self) -> None:
        """Nothing to reopen: connections are made again when they break."""

    def stats(self) -> OutputStats:
        with self._cond:
            s = self._stats
            return OutputStats(sent=s.sent, dropped=s.dropped, reconnects=s.reconnects,
                               replayed=s.replayed, queued=len(self._queue))

    def close(self) -> None:
        """Send what is queued (at most CLOSE_SECONDS), then stop; the rest is dropped."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + CLOSE_SECONDS
            self._cond.notify()
        self._thread.join(CLOSE_SECONDS + CONNECT_TIMEOUT + 1.0)
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
            self._stats.dropped += left
        if left:
            print(f"netconsole listen: {self.name}: {left} records not forwarded at shutdown "
                  "(the server did not take them in time)", file=sys.stderr)
        self._disconnect()

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        tcp = self.target.transport == "tcp"
        while True:
            with self._cond:
                if not self._queue and not self._closing:
                    self._cond.wait(IDLE_CHECK)
                if self._closing and (not self._queue or time.monotonic() > self._deadline):
                    return
                waiting = bool(self._queue)
            if tcp and self._sock is None and waiting and not self._connect():
                continue  # the records wait in the queue (and count in its gauge)
            with self._cond:
                chunk = [self._queue.popleft()
                         for _ in range(min(SEND_CHUNK, len(self._queue)))]
            if not tcp:
                self._send_udp(chunk)
                continue
            if self._sock is not None and not chunk:
                self._check_peer()  # idle: notice a closed connection now, not at the next send
                self._confirm()
                continue
            if chunk:
                self._send_tcp(chunk)

    def _send_udp(self, chunk: list[Delivered]) -> None:
        if not chunk:
            return
        try:
            if self._sock is None or self._udp_addr is None:
                info = socket.getaddrinfo(self.target.host, self.target.port,
                                          type=socket.SOCK_DGRAM)[0]
                self._sock = socket.socket(info[0], socket.SOCK_DGRAM)
                self._udp_addr = info[4]
        except OSError as exc:
            self._failed(chunk, exc)
            return
        sent = 0
        for d in chunk:
            try:
                self._sock.sendto(format_message(d), self._udp_addr)
                sent += 1
            except OSError as exc:  # too large, no route, a refused port (ICMP)
                self._complain(exc)
                with self._cond:
                    self._stats.dropped += 1
        with self._cond:
            self._stats.sent += sent

    def _failed(self, chunk: list[Delivered], exc: OSError) -> None:
        self._complain(exc)
        with self._cond:
            self._stats.dropped += len(chunk)

    def _complain(self, exc: OSError) -> None:
        """One line the first time a target fails (and again after it worked)."""
        if not self._complained:
            self._complained = True
            print(f"netconsole listen: {self.name}: {exc.strerror or exc}; retrying "
                  "(records wait in a bounded queue)", file=sys.stderr)

    def _send_tcp(self, chunk: list[Delivered]) -> None:
        if self._sock is None and not self._connect():
            self._requeue(chunk)
            return
        sock = self._sock
        assert sock is not None
        self._check_peer()
        if self._sock is None:  # it had closed: the chunk goes on the next connection
            self._requeue(chunk)
            return
        frames = [octet_frame(format_message(d)) for d in chunk]
        try:
            sock.sendall(b"".join(frames))
        except OSError as exc:
            self._complain(exc)
            self._requeue(chunk)  # whatever of it went out is unsure: all of it again
            self._broken()
            return
        now = time.monotonic()
        for d, frame in zip(chunk, frames, strict=True):
            self._written += len(frame)
            self._unsure.append(_Sent(end=self._written, at=now, entry=d))
        with self._cond:
            self._stats.sent += len(chunk)
        self._confirm()

    def _connect(self) -> bool:
        if self._backoff:
            retry_at = time.monotonic() + self._backoff
            with self._cond:  # wait out the backoff, or until close's deadline
                while True:
                    until = min(retry_at, self._deadline) if self._closing else retry_at
                    now = time.monotonic()
                    if now >= until:
                        break
                    self._cond.wait(until - now)
            if self._closing and time.monotonic() > self._deadline:
                return False
        try:
            sock = socket.create_connection((self.target.host, self.target.port),
                                            timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            self._complain(exc)
            self._backoff = min(MAX_BACKOFF, max(FIRST_BACKOFF, self._backoff * 2))
            return False
        sock.settimeout(SEND_TIMEOUT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self._sock, self._written = sock, 0
        if self._backoff:  # it had failed: a new connection after a broken or refused one
            with self._cond:
                self._stats.reconnects += 1
            if self._complained:
                print(f"netconsole listen: {self.name}: connected again", file=sys.stderr)
        self._complained = False
        self._backoff = 0.0
        return True

    def _check_peer(self) -> None:
        """The server closed the connection (it says nothing otherwise): EOF or an error
        waiting to be read. Checked before each send, so what follows is not lost."""
        sock = self._sock
        if sock is None:
            return
        try:
            # Polled first: with a timeout set, Python's recv would wait for data.
            if not select.select([sock], [], [], 0)[0]:
                return
            data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ValueError):  # ValueError: closed meanwhile
            self._broken()
            return
        if data == b"":
            self._broken()
        # A server that writes to us (none should) is ignored: its bytes stay unread.

    def _confirm(self) -> None:
        """Forget the sent messages the server's kernel acknowledged long enough ago."""
        sock = self._sock
        if sock is None or not self._unsure:
            return
        try:
            outq = struct.unpack("i", fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return
        acked = self._written - outq
        horizon = time.monotonic() - self.replay_seconds
        unsure = self._unsure
        while unsure and unsure[0].end <= acked and unsure[0].at < horizon:
            unsure.popleft()

    def _broken(self) -> None:
        """The connection broke: what it may not have delivered goes first in the queue."""
        again = [s.entry for s in self._unsure]
        self._unsure.clear()
        self._disconnect()
        self._backoff = FIRST_BACKOFF
        if again:
            with self._cond:
                self._stats.replayed += len(again)
                self._stats.sent -= len(again)  # counted when they go out again
            self._requeue(again)

    def _requeue(self, entries: list[Delivered]) -> None:
        """Put entries back at the front; past the limit the newest are dropped."""
        with self._cond:
            self._queue.extendleft(reversed(entries))
            over = len(self._queue) - self.limit
            for _ in range(max(0, over)):
                self._queue.pop()
            self._stats.dropped += max(0, over)

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
