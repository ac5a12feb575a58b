"""The host side: UDP sockets on 127.0.0.1 that record every datagram the guest sends.

QEMU user networking turns the guest's `10.0.2.2:<port>` into `127.0.0.1:<port>`
on the host, from 127.0.0.1 and an ephemeral source port, so each test binds
free ports on loopback (port 0: the kernel picks) and points the guest at them.

Two receivers with the same shape (`ports`, `start()`, `stop()`, `datagrams`):

* `UdpReceiver` (what `make_receiver()` gives): raw sockets keeping every datagram,
  for the tests that look at the wire itself (fragments, 1000-byte chunks, release
  prefixes) and decode it with the project's decoder.
* `ListenReceiver`: the real receiver under test, a `python -m netconsole listen`
  subprocess with its own SQLite store; tests read what it *stored*
  (`netconsole.store.open_reader`). It keeps no datagrams.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Protocol

from lab._errors import LabError

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


_TX = re.compile(r"eth0 stats: tx_packets=(\d+)")
LISTEN_START = 30.0  # seconds for `listen` to print `listening on`
LISTEN_DRAIN = 20.0  # at most this long for it to count the datagrams the guest sent
LISTEN_STOP = 30.0  # for SIGTERM to flush and exit


def tx_packets(lab_log: str) -> int | None:
    """The guest's last `eth0 stats: tx_packets=N` (what its NIC sent), if any."""
    found = _TX.findall(lab_log)
    return int(found[-1]) if found else None


# After the guest reads tx_packets it still logs a line or two before QEMU exits
# (`reboot: Power down`, on 7.x sometimes a clocksource watchdog line), and a
# netconsole target sends each of them: seen in CI as 2 datagrams past the count.
LATE_LINES = 3


def check_nic_count(sent: int | None, got: int, targets: int) -> None:
    """Every datagram the guest's NIC counted arrived (`got >= sent`), and nothing
    beyond the few lines the kernel logs after the count was read."""
    assert sent is not None, "the guest printed no `eth0 stats: tx_packets=`"
    late = got - sent
    why = "some were lost" if late < 0 else f"{late} more than can be logged after the count"
    assert 0 <= late <= LATE_LINES * targets, f"NIC counted {sent}, {got} arrived: {why}"


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass(slots=True)
class ListenReceiver:
    """The real `netconsole listen`, on `count` free UDP ports of 127.0.0.1.

    It runs in its own session under `setpriv --pdeathsig TERM` (it goes when the
    test process goes) with its own database, `--jsonl` file and HTTP port.
    `stop()` first waits (at most LISTEN_DRAIN) until its `/metrics` count the
    datagrams the guest's NIC sent (`expect`, set by the run from the guest's
    `tx_packets`), or until that count stops moving, then sends SIGTERM, which
    flushes everything to the store, and waits; killed by its PID group otherwise.
    """

    workdir: Path
    count: int = 1
    workers: int = 1
    ports: list[int] = field(default_factory=list)
    datagrams: list[Datagram] = field(default_factory=list)
    expect: int | None = None
    # What its /metrics counted (netconsole_datagrams_total) right before SIGTERM.
    counted: int | None = None
    returncode: int | None = None
    http_port: int = 0
    _proc: subprocess.Popen[bytes] | None = None
    _err: IO[bytes] | None = None

    @property
    def db(self) -> Path:
        return self.workdir / "lab.db"

    @property
    def jsonl(self) -> Path:
        return self.workdir / "stored.jsonl"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "listen.err"

    @property
    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for path in (self.db, self.jsonl, self.stderr_path):
            path.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.db}{suffix}").unlink(missing_ok=True)
        # Free ports: bound and released here, bound again by listen a moment later.
        self.ports = [_free_port(socket.SOCK_DGRAM) for _ in range(self.count)]
        self.http_port = _free_port(socket.SOCK_STREAM)
        cmd = ["setpriv", "--pdeathsig", "TERM", "--",
               sys.executable, "-m", "netconsole", "listen", "--quiet",
               "--db", str(self.db), "-b", LOOPBACK,
               *(arg for p in self.ports for arg in ("-p", str(p))),
               "-w", str(self.workers), "--http", f"{LOOPBACK}:{self.http_port}",
               "--jsonl", str(self.jsonl)]
        (self.workdir / "listen.cmdline").write_text(" ".join(cmd) + "\n")
        self._err = self.stderr_path.open("wb")
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=self._err, start_new_session=True)
        deadline = time.monotonic() + LISTEN_START
        while "listening on" not in self.stderr:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._kill()
                raise LabError(f"netconsole listen did not start:\n{self.stderr[-2000:]}")
            time.sleep(0.05)

    def metric(self, name: str) -> float | None:
        """One unlabelled counter of listen's /metrics (`netconsole_datagrams_total`)."""
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.http_port}/metrics",
                                        timeout=5) as r:
                body = r.read().decode()
        except OSError:
            return None
        for line in body.splitlines():
            key, _, value = line.rpartition(" ")
            if key == name:
                return float(value)
        return None

    def _drain(self) -> None:
        deadline = time.monotonic() + LISTEN_DRAIN
        last, since = -1.0, time.monotonic()
        while time.monotonic() < deadline:
            got = self.metric("netconsole_datagrams_total")
            if got is None:
                return
            self.counted = int(got)
            if self.expect is not None and got >= self.expect:
                return
            if got != last:
                last, since = got, time.monotonic()
            elif self.expect is None and time.monotonic() - since >= 1.0:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        """Let it count what arrived, then SIGTERM (it flushes) and wait for it."""
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                self._drain()
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            try:
                self.returncode = proc.wait(timeout=LISTEN_STOP)
            except subprocess.TimeoutExpired:
                self._kill()
                raise LabError(
                    f"netconsole listen ignored SIGTERM for {LISTEN_STOP:.0f} s") from None
        finally:
            self._kill()
            if self._err is not None:
                self._err.close()

    def _kill(self) -> None:
        """SIGKILL whatever is left of its session (supervisor and workers), by PID."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def __enter__(self) -> ListenReceiver:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
