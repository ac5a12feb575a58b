"""Insert throughput of the SQLite store's batch writer.

Builds N extended-mode records (default 200,000) from 100 simulated senders,
with kernel-like text and the sysdata fields a 6.x kernel sends, and stores
them with `SQLiteStore.apply` in batches (default 1,000), one transaction per
batch, FTS triggers on, WAL with synchronous=NORMAL (the default durability).
Prints records/s for the `apply` calls alone and the database size.

    python bench/store.py [-n 200000] [--batch 1000] [--durability process|power]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from netconsole.store import open_store
from netconsole.stream.events import Record, Sender
from netconsole.wire import Mode

TEMPLATES = (
    b"e1000e 0000:00:19.0 eth0: NIC Link is Down",
    b"e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx",
    b"EXT4-fs (sda1): mounted filesystem %d with ordered data mode. Quota mode: none.",
    b'audit: type=1400 audit(1700000000.%d:42): apparmor="STATUS" operation="profile_load"',
    b"TCP: request_sock_TCP: Possible SYN flooding on port %d. Sending cookies.",
    b"systemd[1]: Started session-%d.scope - Session of User root.",
    b"usb 1-1: new high-speed USB device number %d using xhci_hcd",
    b"netconsole: network logging started",
)


def make_records(n: int, senders: int, seed: int = 1) -> list[Record]:
    rng = random.Random(seed)
    hosts = [
        Sender(host=f"127.0.{i // 250}.{i % 250 + 1}", port=6665, local_port=6666)
        for i in range(senders)
    ]
    seqs = [0] * senders
    now = time.time() - n / 1000
    out = []
    for i in range(n):
        h = rng.randrange(senders)
        template = rng.choice(TEMPLATES)
        text = template % i if b"%d" in template else template
        seq = seqs[h]
        seqs[h] += 1
        out.append(
            Record(
                sender=hosts[h],
                mode=Mode.EXTENDED,
                received=now + i / 1000,
                text=text,
                release="6.12.0-1-amd64",
                facility=0,
                level=rng.choice((3, 4, 6, 6, 6, 7)),
                seq=seq,
                ts_usec=seq * 1_000_000 + rng.randrange(1_000_000),
                fields=(
                    (b"hostname", f"node-{h}".encode()),
                    (b"cpu", str(rng.randrange(2)).encode()),
                    (b"taskname", b"kworker/0:1"),
                    (b"msgid", str(seq).encode()),
                ),
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="records to insert")
    parser.add_argument("--batch", type=int, default=1000, help="records per apply()")
    parser.add_argument("--senders", type=int, default=100)
    parser.add_argument("--durability", choices=("process", "power"), default="process")
    parser.add_argument("--db", type=Path, help="database file (default: a temporary one)")
    args = parser.parse_args()

    records = make_records(args.n, args.senders)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        store = open_store(path, durability=args.durability)
        cpu0, t0 = time.process_time(), time.perf_counter()
        for start in range(0, len(records), args.batch):
            store.apply(records[start : start + args.batch])
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        store.close()
        size = os.path.getsize(path)
    rate = args.n / elapsed
    print(
        f"store: {args.n} records in batches of {args.batch} ({args.durability}):"
        f" {rate:,.0f} records/s, {cpu / args.n * 1e6:.1f} CPU-s per million,"
        f" db {size / 1e6:.1f} MB ({size / args.n:.0f} B/record)"
    )


if __name__ == "__main__":
    main()
