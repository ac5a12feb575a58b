"""The web view at fleet size: each page's time with 10^6 records and 10^4 hosts.

Builds a database through the store's real writer (so records, hosts, FTS and
events are exactly what `listen` writes): 10,000 machines, every tenth with a
second stream, 1,000,000 records over the last 24 hours (ten busy hosts send a
tenth of them), a reboot on every 20th host and loss gaps on every 7th; then
2,000 incidents of 40 kinds of crash (inserted as SQL rows, linked to real
records), 100 of the machines crashed (a panic as their last words). Then it
serves the web view with `netconsole web` (a real uvicorn server on loopback) and
times each page as a browser would fetch it, best of --repeat:

    python bench/web_pages.py [--hosts 10000] [--records 1000000] [--repeat 5]
                              [--db PATH]   # reuse (or keep) the database

The goal is under 300 ms a page. Building the database takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from netconsole.store import open_store
from netconsole.stream.events import Gap, GapKind, Reboot, RebootReason, Record, Sender
from netconsole.wire import Mode

BATCH = 5000
SPAN = 86400.0
WORDS = ("eth0", "link", "up", "down", "usb", "disk", "sda", "ext4", "mounted", "filesystem",
         "audit", "systemd", "started", "session", "nfs", "server", "not", "responding",
         "cpu", "throttled", "temperature", "oom", "memory", "page", "allocation", "nvme",
         "timeout", "reset", "controller", "tcp", "retransmit", "bond0", "slave", "active")


def _sender(machine: int, second: bool) -> Sender:
    if second:
        return Sender(host=f"2001:db8::{machine:x}", port=6665, local_port=6666)
    return Sender(host=f"10.{machine >> 16 & 255}.{machine >> 8 & 255}.{machine & 255}",
                  port=6665, local_port=6666)


def _events(hosts: int, records: int, now: float) -> Iterator[list[object]]:
    """Batches of stream events, in time order."""
    rng = random.Random(16)
    seqs: dict[Sender, int] = {}
    busy = list(range(10))
    batch: list[object] = []
    for i in range(records):
        at = now - SPAN + SPAN * i / records
        machine = busy[i % 10] if i % 10 == 0 else rng.randrange(hosts)
        second = machine % 10 == 3 and rng.random() < 0.5
        sender = _sender(machine, second)
        seq = seqs.get(sender, 0)
        if seq and machine % 7 == 0 and rng.random() < 0.02:
            batch.append(Gap(sender=sender, at=at, kind=GapKind.SEQ, first=seq, count=3))
            seq += 3
        if seq > 20 and machine % 20 == 0 and rng.random() < 0.01:
            batch.append(Reboot(sender=sender, at=at, reason=RebootReason.SEQ_BACK,
                                previous_seq=seq, seq=0, previous_release="6.12.0-1-amd64",
                                release="6.12.0-1-amd64"))
            seq = 0
        seqs[sender] = seq + 1
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(4, 12)))
        batch.append(Record(
            sender=sender, mode=Mode.EXTENDED, received=at,
            text=f"{text} {i}".encode(), release="6.12.0-1-amd64", facility=0,
            level=rng.choice((3, 4, 5, 6, 6, 6, 6, 7)), seq=seq, ts_usec=seq * 1000,
            fields=((b"hostname", f"node-{machine:05d}".encode()),),
        ))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _incidents(db: Path, hosts: int, n: int, crashed: int) -> None:
    """`n` incidents over random records, and `crashed` machines whose last record
    is a panic's."""
    rng = random.Random(17)
    conn = sqlite3.connect(db)
    conn.execute("BEGIN")
    top = conn.execute("SELECT max(id) FROM records").fetchone()[0]
    rows = []
    for k in range(n + crashed):
        if k < n:
            rid = rng.randrange(1, top)
            row = conn.execute("SELECT id, host_id, received, boot FROM records WHERE id >= ?"
                               " LIMIT 1", (rid,)).fetchone()
            kind = rng.choice((("oops", 0), ("warning", 0), ("bug", 0), ("panic", 1)))
        else:
            row = conn.execute(
                "SELECT r.id, r.host_id, r.received, r.boot FROM records r WHERE r.host_id = ?"
                " ORDER BY r.id DESC LIMIT 1", (1 + (k - n) * 97 % hosts,)).fetchone()
            kind = ("panic", 1)
        if row is None:
            continue
        rid, host, received, boot = row
        kind_name, fatal = kind
        title = f"BUG: unable to handle page fault in func_{k % 40}"
        frames = [{"function": f"func_{k % 40}", "offset": 16, "size": 64, "module": None,
                   "reliable": True, "section": 0, "rip": False},
                  {"function": "do_syscall_64", "offset": 0x5a, "size": 0x100, "module": None,
                   "reliable": True, "section": 0, "rip": False}]
        rows.append((host, f"k{k}", boot, kind_name, "critical" if fatal else "error", "closed",
                     title, f"fp{k % 40:02d}", f"func_{k % 40}+0x10/0x40", json.dumps(frames),
                     title + "\nCall Trace:\n func_x\n", None, received, received, rid, rid, 3,
                     fatal, received))
    conn.executemany(
        "INSERT OR IGNORE INTO incidents (host_id, key, boot, kind, severity, state, title,"
        " fingerprint, culprit, frames, text, release, first_received, last_received,"
        " first_record_id, last_record_id, lines, fatal, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()


def build(db: Path, hosts: int, records: int) -> None:
    now = time.time()
    t0 = time.perf_counter()
    store = open_store(db)
    for batch in _events(hosts, records, now):
        store.apply(batch)  # type: ignore[arg-type]
    store.close()
    _incidents(db, hosts, 2000, 100)
    print(f"built {db}: {records} records, {hosts} machines in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)


def _fetch(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as reply:
        reply.read()
    return time.perf_counter() - t0


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pages(db: Path) -> list[tuple[str, str]]:
    """The pages to time: (what, path)."""
    conn = sqlite3.connect(db)
    busy = conn.execute("SELECT name FROM hosts ORDER BY records DESC LIMIT 1").fetchone()[0]
    quiet = conn.execute("SELECT name FROM hosts ORDER BY records LIMIT 1").fetchone()[0]
    crashed = conn.execute("SELECT id FROM incidents WHERE fatal ORDER BY id DESC LIMIT 1"
                           ).fetchone()[0]
    middle = conn.execute("SELECT received FROM records WHERE id = (SELECT max(id) / 2 FROM"
                          " records)").fetchone()[0]
    mid_id = conn.execute("SELECT max(id) / 2 FROM records").fetchone()[0]
    conn.close()
    q = urllib.parse.quote
    return [
        ("fleet", "/"),
        ("fleet, sorted by records, filtered", "/?sort=records&order=desc&q=node-0"),
        ("fleet, crashed only", "/?status=crashed"),
        ("fleet, last 7 days per hour", "/?span=7d"),
        ("host (busiest)", f"/host?h={q(busy)}"),
        ("host (busiest), 7 days", f"/host?h={q(busy)}&span=7d"),
        ("host (busiest), scroll back", f"/host/records?h={q(busy)}&before={mid_id}"),
        ("host (busiest), jump to a time",
         f"/host?h={q(busy)}&at={q(time.strftime('%Y-%m-%dT%H:%M', time.localtime(middle)))}"),
        ("host (quietest)", f"/host?h={q(quiet)}"),
        ("incidents", "/incidents"),
        ("incidents of one fingerprint", "/incidents?fingerprint=fp07"),
        ("incident", f"/incident/{crashed}"),
        ("live tail page", "/live"),
        ("search, a rare word", "/search?q=responding+nvme+controller"),
        ("search, a common word", "/search?q=eth0"),
        ("search, one host", f"/search?q=eth0&host={q(busy)}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", type=Path, help="use this database; built there if missing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "web.db"
        if not db.exists():
            build(db, args.hosts, args.records)
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "netconsole", "web", "--db", str(db), "--port", str(port)],
            stderr=subprocess.PIPE, text=True)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    _fetch(base + "/static/style.css")
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("netconsole web did not start") from None
                    time.sleep(0.1)
            print(f"{'page':44} {'best ms':>8} {'worst ms':>9}")
            for what, path in pages(db):
                times = [_fetch(base + path) for _ in range(args.repeat)]
                print(f"{what:44} {min(times) * 1000:8.0f} {max(times) * 1000:9.0f}")
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
