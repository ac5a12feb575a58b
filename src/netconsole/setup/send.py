"""One test message: through the kernel (`/dev/kmsg`) or straight to a receiver.

* `--via kmsg` writes `<N>TEXT` to /dev/kmsg. The kernel logs it (facility
  LOG_USER, so an extended receiver sees prefix 8+N) and every enabled
  netconsole target carries it, if N passes the console loglevel. This is the
  end-to-end test of a kernel netconsole setup.
* `--via udp` skips the kernel: one record encoded byte for byte as an
  extended netconsole target sends it (`wire.encode_extended`), from UDP
  source port 6665 like netpoll. This tests the receiver and the path to it.

A record's seq and timestamp are microseconds of CLOCK_MONOTONIC (what the
kernel's own timestamps count), so two sends are never taken for duplicates;
a receiver counts the distance between them as a seq gap.
"""

from __future__ import annotations

import enum
import platform
import socket
import time
from dataclasses import dataclass

from netconsole.host.write import HostWriter
from netconsole.kernel.netconsole_param import DEFAULT_LOCAL_PORT
from netconsole.wire import OutgoingRecord, encode_extended

# §9 / qemu-lab.md: longer /dev/kmsg writes fail with EINVAL.
KMSG_MAX = 1024
LOG_USER = 1


class Via(enum.Enum):
    KMSG = "kmsg"
    UDP = "udp"


class SendError(Exception):
    """The message could not be sent; the text says why and what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sent:
    via: Via
    level: int
    text: str
    to: str | None = None
    datagrams: int = 0
    bytes: int = 0
    source: str | None = None


def kmsg_line(text: str, level: int) -> bytes:
    """`<level>text\n`, checked against the kernel's 1024-byte limit.

    Raises:
        SendError: too long or an invalid level.
    """
    if not 0 <= level <= 7:
        raise SendError(f"level {level} is not 0-7")
    # The trailing newline finalizes the record: without it printk keeps the record
    # open for a continuation, and neither readers nor consoles (netconsole) see it
    # until some other message is logged.
    line = f"<{level}>{text.rstrip(chr(10))}\n".encode()
    if len(line) > KMSG_MAX:
        raise SendError(f"the message is {len(line)} bytes; /dev/kmsg takes at most "
                        f"{KMSG_MAX} per write (EINVAL)")
    return line


def send_kmsg(writer: HostWriter, text: str, level: int) -> Sent:
    """Write one record to /dev/kmsg.

    Raises:
        SendError: too long, or the write failed (not root: EPERM/EACCES).
    """
    line = kmsg_line(text, level)
    try:
        writer.kmsg(line)
    except OSError as exc:
        hint = " (run as root)" if exc.errno in (1, 13) else ""
        raise SendError(f"writing /dev/kmsg failed: {exc.strerror}{hint}") from exc
    return Sent(via=Via.KMSG, level=level, text=text, bytes=len(line))


def make_record(text: str, level: int, *, hostname: str | None, release: str | None,
                now_usec: int | None = None, seq: int | None = None) -> OutgoingRecord:
    usec = now_usec if now_usec is not None else time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return OutgoingRecord(
        facility=LOG_USER, level=level, seq=usec if seq is None else seq, ts_usec=usec,
        text=text.encode(), release=release,
        userdata=((b"hostname", hostname.encode()),) if hostname else ())


def send_udp(ip: str, port: int, text: str, level: int, *,
             source_port: int = DEFAULT_LOCAL_PORT, hostname: str | None = None,
             release: str | None = None, seq: int | None = None) -> Sent:
    """Send one extended record to `ip:port` from `source_port`.

    Raises:
        SendError: the source port is taken, or the send failed.
    """
    if not 0 <= level <= 7:
        raise SendError(f"level {level} is not 0-7")
    release = release if release is not None else platform.release()
    rec = make_record(text.rstrip("\n"), level, hostname=hostname or socket.gethostname(),
                      release=release or None, seq=seq)
    datagrams = encode_extended(rec)
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", source_port))
        except OSError as exc:
            raise SendError(f"cannot use UDP source port {source_port}: {exc.strerror} "
                            "(another sender holds it? pass --source-port 0)") from exc
        try:
            for d in datagrams:
                s.sendto(d, (ip, port))
        except OSError as exc:
            raise SendError(f"sending to {ip}:{port} failed: {exc.strerror}") from exc
        src = s.getsockname()
    return Sent(via=Via.UDP, level=level, text=text, to=f"{ip}:{port}",
                datagrams=len(datagrams), bytes=sum(map(len, datagrams)),
                source=f"{src[0]}:{src[1]}")
