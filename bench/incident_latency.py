"""Benchmark: panic → incident in the store → webhook, through a real receiver.

Starts a real `netconsole listen` (one worker, SQLite in a temporary
directory) with an `[[alerts]]` rule pointing at a real HTTP server, both on
loopback. Each round, a fresh sender (new source port) sends the panic the
6.12 kernel sent in tests/data/captures/…/panic.pcap — `Kernel panic - not
syncing: …`, its call trace, `Rebooting in 1 seconds..` — as extended
netconsole datagrams, with a title made unique per round (so every round is a
new fingerprint, not a dedup of the last). It measures, from the moment the
last datagram was sent:

* store: until `incidents` in the database shows the panic closed (a
  read-only connection polled every millisecond);
* alert: until the webhook request arrived at the HTTP server.

The alert figure includes the rule's `group-wait` (default 0.25 s: the time
the first alert of a crash waits to gather the same crash from other hosts);
`--group-wait 0` shows the floor.

Usage: python bench/incident_latency.py [--rounds 20] [--group-wait 0.25]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import platform
import random
import socket
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from netconsole.collector import free_udp_port
from netconsole.wire import OutgoingRecord, encode_extended

PANIC = """\
sysrq: Trigger a crash
Kernel panic - not syncing: sysrq triggered crash ({tag})
CPU: 0 UID: 0 PID: 1 Comm: init Not tainted 6.12.117+deb12-amd64 #1  Debian 6.12.117-1~deb12u1
Hardware name: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.2-debian-1.16.2-1 04/01/2014
Call Trace:
 <TASK>
 panic+0x344/0x3a0
 sysrq_handle_crash+0x1a/0x20
 __handle_sysrq+0xa7/0x1a0
 write_sysrq_trigger+0x59/0x80
 proc_reg_write+0x5a/0xa0
 vfs_write+0xf8/0x450
 ksys_write+0x6f/0xf0
 do_syscall_64+0x87/0x1b0
 entry_SYSCALL_64_after_hwframe+0x76/0x7e
RIP: 0033:0x47b7a0
 </TASK>
Kernel Offset: 0x2fe00000 from 0xffffffff81000000 (relocation range: {reloc})
Rebooting in 1 seconds.."""

RELOCATION = "0xffffffff80000000-0xffffffffbfffffff"


class Hook:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.arrivals[body["title"]] = time.time()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start_listen(tmp: Path, port: int, hook: Hook, group_wait: float) -> subprocess.Popen[bytes]:
    config = tmp / "listen.toml"
    config.write_text(f'[[alerts]]\nname = "bench"\nkinds = ["panic"]\nwebhook = "{hook.url}"\n'
                      f"group-wait = {group_wait}\nwindow = 0.001\nmax-per-minute = 1000\n")
    err = tmp / "listen.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "netconsole", "listen", "--config", str(config), "--db",
         str(tmp / "nc.db"), "-p", str(port), "-w", "1", "--quiet", "--no-http"],
        stdout=subprocess.DEVNULL, stderr=err.open("wb"))
    deadline = time.monotonic() + 20
    while b"listening on" not in err.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"listen did not start: {err.read_text()}")
        time.sleep(0.02)
    return proc


def datagrams(tag: str) -> list[bytes]:
    out: list[bytes] = []
    for seq, line in enumerate(PANIC.format(tag=tag, reloc=RELOCATION).split("\n"), start=400):
        out += encode_extended(OutgoingRecord(facility=0, level=0, seq=seq,
                                              ts_usec=2_532_548 + seq, text=line.encode()))
    return out


def wait_store(db: Path, title: str, timeout: float = 10.0) -> float:
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                row = conn.execute("SELECT 1 FROM incidents WHERE title = ? AND state = 'closed'",
                                   (title,)).fetchone()
            except sqlite3.OperationalError:
                row = None
            if row is not None:
                return time.time()
            time.sleep(0.001)
    finally:
        conn.close()
    raise SystemExit(f"no incident {title!r} in the store after {timeout}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--group-wait", type=float, default=0.25)
    args = ap.parse_args()
    hook = Hook()
    port = free_udp_port()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        proc = start_listen(tmp, port, hook, args.group_wait)
        store_lat: list[float] = []
        alert_lat: list[float] = []
        try:
            for _ in range(args.rounds):
                tag = "".join(random.choices(string.ascii_lowercase, k=10))
                title = f"Kernel panic - not syncing: sysrq triggered crash ({tag})"
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind(("127.0.0.1", 0))
                    for d in datagrams(tag):
                        sock.sendto(d, ("127.0.0.1", port))
                    sent = time.time()
                store_lat.append(wait_store(tmp / "nc.db", title) - sent)
                end = time.monotonic() + 10
                while title not in hook.arrivals and time.monotonic() < end:
                    time.sleep(0.001)
                if title not in hook.arrivals:
                    raise SystemExit("no webhook within 10 s")
                alert_lat.append(hook.arrivals[title] - sent)
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def fmt(xs: list[float]) -> str:
        xs = sorted(xs)
        p90 = xs[max(0, int(len(xs) * 0.9) - 1)]
        return (f"median {statistics.median(xs) * 1000:6.1f} ms   p90 {p90 * 1000:6.1f} ms   "
                f"max {xs[-1] * 1000:6.1f} ms")

    print(f"incident latency: {args.rounds} panics, one worker, loopback "
          f"({platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs); batch interval 0.1 s, group-wait {args.group_wait:g} s")
    print(f"  last datagram -> incident closed in the store: {fmt(store_lat)}")
    print(f"  last datagram -> webhook received:             {fmt(alert_lat)}")


if __name__ == "__main__":
    main()
