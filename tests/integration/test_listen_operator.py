"""Operator mistakes and the HTTP endpoints, against a real `netconsole listen` process.

A bad value at start is one line on stderr and a non-zero exit, before anything
is created; a bad value on SIGHUP is one line and the old configuration goes on;
the HTTP endpoints answer bad requests with 400 and survive idle and vanishing
clients. Everything is sent to loopback.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from netconsole.collector import free_udp_port
from netconsole.collector._http import MAX_CONNECTIONS
from tests.integration.listen_harness import FakeHost, Listener, free_tcp_port, wait_for


def _run_listen(tmp: Path, *args: str, toml: str | None = None,
                workers: int | None = 2) -> subprocess.CompletedProcess[str]:
    # An option wins over the file: give none for what the file sets.
    cmd = [sys.executable, "-m", "netconsole", "listen", "--db", str(tmp / "nc.db")]
    told = (toml or "") + " ".join(args)
    if "port" not in told:
        cmd += ["-p", str(free_udp_port())]
    if "quiet" not in told:
        cmd += ["--quiet"]
    if workers is not None:
        cmd += ["-w", str(workers)]
    if "http" not in told:
        cmd += ["--http", f"127.0.0.1:{free_tcp_port()}"]
    if toml is not None:
        cfg = tmp / "bad.toml"
        cfg.write_text("[listen]\n" + toml + "\n")
        cmd += ["--config", str(cfg)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize(
    ("args", "toml", "workers", "says"),
    [
        ((), 'silent_after = "soon"', 2, "silent-after"),
        ((), "silent_after = -5", 2, "silent-after"),
        ((), "http = 123", 2, "http must be"),
        ((), 'quiet = "no"', 2, "quiet must be true or false"),
        ((), "workers = 999", None, "workers must be at most 256"),
        ((), 'batch_interval = "x"', 2, "batch-interval"),
        ((), 'jsonl = "/nonexistent/dir/x.jsonl"', 2, "/nonexistent/dir"),
        ((), "ports = 6666", 2, "ports must be a list"),
        ((), '[[alerts]]\nname = "p"\nkinds = ["panic"]', 2, "needs a webhook or a command"),
        (("--jsonl", "/nonexistent/dir/x.jsonl"), None, 2, "/nonexistent/dir"),
        (("--http", "127.0.0.1:99999"), None, 2, "port 99999"),
        (("--retain", "forever"), None, 2, "not a duration"),
        (("--max-size", "10XB"), None, 2, "not a size"),
        (("--rcvbuf", "0"), None, 1, "rcvbuf"),
    ],
)
def test_a_bad_start_value_is_one_line_and_creates_nothing(
        tmp_path: Path, args: tuple[str, ...], toml: str | None, workers: int | None,
        says: str) -> None:
    result = _run_listen(tmp_path, *args, toml=toml, workers=workers)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0
    assert len(lines) == 1, result.stderr
    assert says in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "nc.db").exists()
    assert [p.name for p in tmp_path.iterdir()] in ([], ["bad.toml"])


def test_silent_after_takes_a_duration(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[listen]\nsilent_after = "10m"\n')
    out = subprocess.run([sys.executable, "-m", "netconsole", "listen", "-c", str(cfg),
                          "--print-config"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "silent-after = 600.0" in out.stdout


def test_print_config_keeps_the_alert_rules(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[listen]\nports = [6666]\n[[alerts]]\nname = "pager"\n'
                   'webhook = "http://127.0.0.1:9/hook"\nkinds = ["panic"]\n')
    out = subprocess.run([sys.executable, "-m", "netconsole", "listen", "-c", str(cfg),
                          "--print-config"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert '[[alerts]]\nname = "pager"' in out.stdout


class _Receiver(Listener):
    """`Listener` without the harness's `--jsonl` (so the file's `jsonl` counts)."""

    def __init__(self, tmp: Path, *args: str, workers: int = 1) -> None:
        self.port = free_udp_port()
        self.http_port = free_tcp_port()
        self.db = tmp / "nc.db"
        self.jsonl = tmp / "stored.jsonl"
        self.stderr_path = tmp / f"listen-{time.monotonic_ns()}.err"
        cmd = [sys.executable, "-m", "netconsole", "listen", "--db", str(self.db),
               "-p", str(self.port), "-w", str(workers), "--quiet",
               "--http", f"127.0.0.1:{self.http_port}", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr_path.open("wb"),
                                     start_new_session=True)
        deadline = time.monotonic() + 20
        while b"listening on" not in self.stderr_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"listen did not start: {self.stderr}")
            time.sleep(0.05)

    def hup_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "SIGHUP" in line]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_sighup_keeps_the_old_configuration(tmp_path: Path, workers: int) -> None:
    cfg = tmp_path / "listen.toml"
    good = f'[listen]\nallow = ["127.0.0.0/8"]\njsonl = "{tmp_path / "stored.jsonl"}"\n'
    cfg.write_text(good)
    lis = _Receiver(tmp_path, "--config", str(cfg), workers=workers)
    host = FakeHost()
    stored = 0
    try:
        host.send(host.datagrams(3), lis.port)
        stored += 3
        lis.wait_records(stored)
        # Each bad file also narrows `allow`: were any of it applied, 127.0.0.1 would be refused.
        for n, bad in enumerate(['jsonl = "/nonexistent/dir/x.jsonl"', 'batch_interval = "x"',
                                 "rcvbuf = -1", 'retain = "forever"',
                                 '[[alerts]]\nname = "x"\nwebhook = "ftp://h"'], 1):
            cfg.write_text('[listen]\nallow = ["10.0.0.0/8"]\n' + bad + "\n")
            lis.proc.send_signal(signal.SIGHUP)
            try:
                wait_for(lambda n=n: len(lis.hup_lines()) >= n)  # type: ignore[misc]
            except AssertionError:
                raise AssertionError(f"no line for {bad!r}: {lis.stderr}") from None
            assert lis.proc.poll() is None
            host.send(host.datagrams(2), lis.port)
            stored += 2
            lis.wait_records(stored)
        time.sleep(0.5)  # any second line about the same SIGHUP would be here by now
        lines = lis.hup_lines()
        assert len(lines) == 5, lis.stderr
        assert all("keeping the old configuration" in line for line in lines)
        assert "/nonexistent/dir" in lines[0] and "batch-interval" in lines[1]
        assert "Traceback" not in lis.stderr
        assert lis.metrics().get(
            'netconsole_rejected_datagrams_total{reason="not_allowed"}', 0) == 0
    finally:
        assert lis.stop() == 0
        host.close()
    assert len(lis.jsonl.read_text().splitlines()) == stored


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _udp_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _has_bound(pid: int, port: int) -> bool:
    """Whether process `pid` holds a UDP socket bound to `port`."""
    inodes = _udp_inodes(port)
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return any(link[len("socket:["):-1] in inodes for link in links
               if link.startswith("socket:["))


def test_a_restarted_worker_gets_the_reloaded_allow_list(tmp_path: Path) -> None:
    cfg = tmp_path / "listen.toml"
    cfg.write_text('[listen]\nallow = ["127.0.0.2/32"]\n')
    lis = Listener(tmp_path, "--config", str(cfg), workers=2)
    try:
        cfg.write_text('[listen]\nallow = ["127.0.0.3/32"]\n')
        lis.proc.send_signal(signal.SIGHUP)
        probe = FakeHost("127.0.0.3")

        def probed() -> bool:  # the new list is in force (in at least one worker)
            probe.send(probe.datagrams(1), lis.port)
            time.sleep(0.1)
            return lis.metrics().get("netconsole_stored_records_total", 0) > 0

        wait_for(probed)
        probe.close()
        time.sleep(0.5)  # the last probes are stored
        # Counted in the database: /metrics sums the workers alive, and the
        # killed one takes its counters with it.
        probes = len(lis.records())
        victim, survivor = _children(lis.proc.pid)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(set(_children(lis.proc.pid)) - {survivor, victim}) == 1,
                 timeout=20)
        [fresh] = set(_children(lis.proc.pid)) - {survivor, victim}
        wait_for(lambda: _has_bound(fresh, lis.port), timeout=20)
        # Many source ports: the kernel's 4-tuple hash sends some to each worker.
        old = [FakeHost("127.0.0.2") for _ in range(20)]
        new = [FakeHost("127.0.0.3") for _ in range(20)]
        for h in old + new:
            h.send(h.datagrams(2), lis.port)
        wait_for(lambda: len(lis.records()) >= probes + 40)
        time.sleep(0.5)  # anything from 127.0.0.2 would have been stored by now
        for h in old + new:
            h.close()
    finally:
        assert lis.stop() == 0
    hosts = [r.sender.host for r in lis.records()]
    assert hosts.count("127.0.0.3") == probes + 40 and "127.0.0.2" not in hosts


def _get(lis: Listener, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{lis.http_port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_bad_seen_parameters_get_400(tmp_path: Path) -> None:
    lis = Listener(tmp_path)
    host = FakeHost()
    try:
        host.send(host.datagrams(3, text=b"nonce-abcdef %d"), lis.port)
        lis.wait_records(3)
        for query in ("nonce=abc%00def", "nonce=nonce-abcdef&since=abc",
                      "nonce=nonce-abcdef&since=nan", "nonce=nonce-abcdef&since=inf",
                      "nonce=%3A%3A%3A%3A%3A%3A", "nonce=------", "nonce=" + "a" * 5000,
                      "nonce=abc"):
            status, body = _get(lis, f"/api/v1/seen?{query}")
            assert status == 400, query
            assert isinstance(body["error"], str)
        assert _get(lis, "/api/v1/seen?nonce=nonce-abcdef&since=0") == (
            200, {"nonce": "nonce-abcdef", "seen": True})
        assert _get(lis, "/api/v1/seen?nonce=nonce-abcdef")[1]["seen"] is True
        assert "Traceback" not in lis.stderr
    finally:
        assert lis.stop() == 0
        host.close()


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads: line")


def test_idle_http_connections_do_not_pile_up_threads(tmp_path: Path) -> None:
    lis = Listener(tmp_path)
    idle: list[socket.socket] = []
    try:
        lis.metrics()
        before = _threads(lis.proc.pid)
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", lis.http_port), timeout=10)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
            idle.append(s)
        # Accepted in order: once this answers, the server has seen all 200.
        assert "netconsole_workers" in lis.metrics()
        # A thread per connection served, MAX_CONNECTIONS at most (and a few
        # pushed out, finishing): not one per connection opened.
        assert _threads(lis.proc.pid) <= before + 2 * MAX_CONNECTIONS
        assert lis.get("/healthz")["ok"] is True
    finally:
        for s in idle:
            s.close()
        assert lis.stop() == 0
    assert "Traceback" not in lis.stderr


def test_a_client_that_hangs_up_leaves_no_traceback(tmp_path: Path) -> None:
    lis = Listener(tmp_path)
    try:
        for i in range(30):
            s = socket.create_connection(("127.0.0.1", lis.http_port), timeout=5)
            if i % 2:
                s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            else:
                s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n")  # gone mid-request
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()  # RST: the reply meets a reset connection
        assert "netconsole_workers" in lis.metrics()
    finally:
        assert lis.stop() == 0
    assert "Traceback" not in lis.stderr, lis.stderr
