"""Starting a real `netconsole listen` process and sending it real UDP on loopback."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from netconsole.collector import free_udp_port
from netconsole.store import open_reader
from netconsole.wire import OutgoingRecord, encode_extended


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Listener:
    """A `netconsole listen` subprocess with its own database, UDP and HTTP ports."""

    def __init__(self, tmp: Path, *args: str, workers: int = 1, port: int | None = None,
                 db: Path | None = None, store: str | None = None) -> None:
        self.port = port or free_udp_port()
        self.http_port = free_tcp_port()
        self.db = db or tmp / "nc.db"
        self.store = store  # a clickhouse:// URL instead of the SQLite `db`
        self.jsonl = tmp / "stored.jsonl"
        self.stderr_path = tmp / f"listen-{time.monotonic_ns()}.err"
        where = ["--store", store] if store else ["--db", str(self.db)]
        cmd = [sys.executable, "-m", "netconsole", "listen", *where,
               "-p", str(self.port), "-w", str(workers), "--quiet",
               "--http", f"127.0.0.1:{self.http_port}", "--jsonl", str(self.jsonl), *args]
        # Its own session, so a test can kill -9 the supervisor and its workers at
        # once; and it dies with the test process, so a killed run leaves no receiver.
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr_path.open("wb"), start_new_session=True,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while b"listening on" not in self.stderr_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"listen did not start: {self.stderr}")
            time.sleep(0.05)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def metrics(self) -> dict[str, float]:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics",
                                      timeout=5).read().decode()
        out: dict[str, float] = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def wait_records(self, n: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.metrics().get("netconsole_stored_records_total", 0) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {self.metrics()} after {timeout}s")
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)

    def kill_all(self) -> None:
        """kill -9 the supervisor and every worker."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def records(self) -> list[Any]:
        with open_reader(self.store or self.db) as r:
            return [s.record for s in r.export()]


class FakeHost:
    """A sender with a fixed source address and port, like netconsole's 6665."""

    def __init__(self, address: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((address, port))
        self.address = address
        self.seq = 0

    def datagrams(self, n: int, text: bytes = b"message %d", **kw: Any) -> Iterator[bytes]:
        for _ in range(n):
            self.seq += 1
            yield from encode_extended(OutgoingRecord(
                facility=0, level=6, seq=self.seq, ts_usec=1_000_000 + self.seq,
                text=text % self.seq if b"%d" in text else text, **kw))

    def send(self, datagrams: Iterator[bytes] | list[bytes], port: int) -> int:
        target = "::1" if ":" in self.address else "127.0.0.1"
        n = 0
        for d in datagrams:
            self.sock.sendto(d, (target, port))
            n += 1
        return n

    def close(self) -> None:
        self.sock.close()


def wait_for(pred: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)

