"""Benchmark: `netconsole listen` on one core, everyday traffic and an outage's.

Issue 14's measurement. The receiver (`listen -w 1`, SQLite with full-text search,
incident detection on) is pinned to CPU 0; a C load generator (bench/_blast.c,
built here with gcc, sendmmsg) on CPU 1 replays kernel-exact extended records
(encoded by `netconsole.wire.encode_extended`, `hostname=` userdata) from N
distinct 127.x.y.z senders. Two mixes:

* everyday: link changes, SYN flooding, nvme timeouts, audit and UFW lines,
  mounts (`EXT4-fs (...)` passes the crash prefilter and must be ruled out);
* outage: the same with a quarter of trouble lines (one-line OOM kills, hung-task
  lines, SCSI failures and I/O errors, segfaults), as a fleet sends in an outage.

For each rate it offers (10 s), it prints what was stored, lost, still buffered
one second after the load (a rate counts only when < 0.1 % is lost and < 1 % is
still buffered), and the receiver's CPU seconds per million stored records. The
result: the highest such rate and its CPU cost, per mix and sender count.
`--netconsd RUN_SH` measures facebook/netconsd the same way (see bench/receive.py).
`--profile FILE` runs the receiver under cProfile at one rate (where the time goes).

Usage: python bench/mix.py [--mix everyday,outage] [--senders 1,1000]
       [--rates 20000,40000,...] [--duration 10] [--profile out.prof --rates R]
Everything goes to loopback only. Needs 2 cores and gcc.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from netconsole.wire import OutgoingRecord, encode_extended
from receive import NetconsdReceiver, Receiver, source_address

HERE = Path(__file__).parent
KEEP_UP_GRACE = 1.0
MAX_BACKLOG = 0.01
MAX_LOSS = 0.001
RECEIVER_CPU, GENERATOR_CPU = 0, 1

Line = Callable[[random.Random, int], bytes]


def _link(r: random.Random, n: int) -> bytes:
    return (b"e1000e 0000:00:1f.6 eno%d: NIC Link is Up 1000 Mbps Full Duplex, "
            b"Flow Control: Rx/Tx" % r.randrange(1, 4))


def _syn(r: random.Random, n: int) -> bytes:
    return (b"TCP: request_sock_TCP: Possible SYN flooding on port %d. Sending cookies.  "
            b"Check SNMP counters." % r.choice((80, 443, 8443)))


def _nvme(r: random.Random, n: int) -> bytes:
    return b"nvme nvme0: I/O %d QID %d timeout, completion polled" % (
        r.randrange(1024), r.randrange(1, 9))


def _audit(r: random.Random, n: int) -> bytes:
    return (b'audit: type=1400 audit(1795669191.%03d:%d): apparmor="DENIED" '
            b'operation="open" class="file" profile="snap.firefox.firefox" '
            b'name="/proc/%d/cgroup" pid=%d comm="firefox" requested_mask="r" '
            b'denied_mask="r" fsuid=1000 ouid=1000'
            % (r.randrange(1000), n, r.randrange(99999), r.randrange(99999)))


def _ufw(r: random.Random, n: int) -> bytes:
    return (b"[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 "
            b"SRC=10.%d.%d.%d DST=10.0.0.5 LEN=60 TOS=0x00 PREC=0x00 TTL=%d ID=%d DF "
            b"PROTO=TCP SPT=%d DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0"
            % (r.randrange(256), r.randrange(256), r.randrange(256), r.randrange(40, 64),
               r.randrange(65536), r.randrange(1024, 65536)))


def _mount(r: random.Random, n: int) -> bytes:
    return (b"EXT4-fs (nvme%dn1p%d): mounted filesystem 4f6f2c1e-8a55-4c2b-9d5e-"
            b"0a1b2c3d4e5f r/w with ordered data mode. Quota mode: none."
            % (r.randrange(4), r.randrange(1, 5)))


def _oom(r: random.Random, n: int) -> bytes:
    return (b"Out of memory: Killed process %d (java) total-vm:%dkB, anon-rss:%dkB, "
            b"file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:%dkB oom_score_adj:0"
            % (r.randrange(1000, 99999), r.randrange(10**6, 10**8),
               r.randrange(10**6, 10**7), r.randrange(1000, 9000)))


def _hung(r: random.Random, n: int) -> bytes:
    return b"INFO: task kworker/u16:%d:%d blocked for more than %d seconds." % (
        r.randrange(16), r.randrange(100, 99999), r.choice((122, 245, 368)))


def _scsi(r: random.Random, n: int) -> bytes:
    return (b"sd 2:0:0:0: [sdb] tag#%d FAILED Result: hostbyte=DID_OK "
            b"driverbyte=DRIVER_OK cmd_age=0s" % r.randrange(32))


def _io_error(r: random.Random, n: int) -> bytes:
    return (b"I/O error, dev sdb, sector %d op 0x0:(READ) flags 0x0 phys_seg 1 prio "
            b"class 2" % r.randrange(10**9))


def _segfault(r: random.Random, n: int) -> bytes:
    return (b"java[%d]: segfault at 0 ip 00007f%010x sp 00007ffd%08x error 4 in "
            b"libc.so.6[7f3a1c028000+195000] likely on CPU %d (core %d, socket 0)"
            % (r.randrange(1000, 99999), r.randrange(16**10), r.randrange(16**8),
               r.randrange(8), r.randrange(8)))


EVERYDAY: list[tuple[Line, int]] = [(_link, 10), (_syn, 15), (_nvme, 10), (_audit, 30),
                                    (_ufw, 30), (_mount, 5)]
TROUBLE: list[tuple[Line, int]] = [(_oom, 25), (_hung, 25), (_scsi, 15), (_io_error, 15),
                                   (_segfault, 20)]
MIXES: dict[str, float] = {"everyday": 0.0, "outage": 0.25}


def _pick(r: random.Random, lines: list[tuple[Line, int]]) -> Line:
    return r.choices([f for f, _ in lines], [w for _, w in lines])[0]


class Traffic:
    """Kernel-exact datagrams, round-robin over `senders`, each with its own seq."""

    def __init__(self, senders: int, trouble: float, seed: int = 1) -> None:
        self.senders = senders
        self.trouble = trouble
        self.random = random.Random(seed)
        self.seq = [0] * senders
        self.next = 0

    def datagrams(self, count: int) -> Iterator[tuple[bytes, bytes]]:
        r = self.random
        for _ in range(count):
            i = self.next
            self.next = (i + 1) % self.senders
            seq = self.seq[i]
            self.seq[i] = seq + 1
            line = _pick(r, TROUBLE if r.random() < self.trouble else EVERYDAY)
            (datagram,) = encode_extended(OutgoingRecord(
                facility=0, level=4, seq=seq, ts_usec=5_000_000 + seq * 997,
                text=line(r, seq), userdata=((b"hostname", b"bench-%d" % i),)))
            yield source_address(i), datagram

    def write(self, path: Path, count: int) -> None:
        with path.open("wb") as f:
            for src, d in self.datagrams(count):
                f.write(src + struct.pack("<H", len(d)) + d)


def build_blaster(tmp: Path) -> Path:
    if shutil.which("gcc") is None:
        sys.exit("bench/mix.py: needs gcc for its load generator (apt-get install gcc)")
    exe = tmp / "blast"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "_blast.c")], check=True)
    return exe


def blast(exe: Path, data: Path, port: int, rate: int) -> tuple[int, float]:
    out = subprocess.run([str(exe), str(data), str(port), str(rate)], check=True,
                         capture_output=True, text=True,
                         preexec_fn=lambda: os.sched_setaffinity(0, {GENERATOR_CPU}))
    sent, seconds = out.stdout.split()
    return int(sent), float(seconds)


def measure(mix: str, senders: int, rates: list[int], duration: float,
            netconsd: str | None, profile: str | None) -> dict[str, Any]:
    import receive  # the receivers read its pinning

    receive.RECEIVER_CPUS = {RECEIVER_CPU}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        exe = build_blaster(tmp)
        traffic = Traffic(senders, MIXES[mix])
        if netconsd:
            rx: Receiver = NetconsdReceiver(netconsd, tmp)
        else:
            # One sender at 80,000 records/s is over any sensible budget: off, so
            # that what is measured is the receiver's work, not its shedding.
            rx = Receiver(1, tmp, profile=profile, extra=("--sender-budget", "0"))
        warm = tmp / "warm.bin"
        traffic.write(warm, max(senders, 2000))
        base_rss = rx.rss_bytes()
        blast(exe, warm, rx.port, 20_000)
        rx.wait_settled(max(senders, 2000))
        # Every sender has sent: what each costs while idle (RSS growth per sender).
        idle = (rx.rss_bytes() - base_rss) / senders if senders >= 1000 else 0.0
        best: tuple[float, float] = (0.0, 0.0)
        for rate in rates:
            data = tmp / "load.bin"
            traffic.write(data, int(rate * duration))
            before_stored, before_cpu = rx.stored(), rx.cpu_seconds()
            sent, seconds = blast(exe, data, rx.port, rate)
            time.sleep(KEEP_UP_GRACE)
            backlog = 1 - (rx.stored() - before_stored) / max(1, sent)
            stored = rx.wait_settled(before_stored + sent) - before_stored
            lost = 1 - stored / max(1, sent)
            cpu = (rx.cpu_seconds() - before_cpu) / max(stored, 1) * 1e6
            offered = sent / seconds
            ok = lost < MAX_LOSS and backlog < MAX_BACKLOG
            print(f"  {mix:8} {senders:>6,} senders, offered {offered:>8,.0f} rec/s: stored "
                  f"{stored:,}, lost {max(0.0, lost):.3%}, backlog after 1 s "
                  f"{max(0.0, backlog):.2%}, receiver CPU {cpu:.1f} s/M"
                  + ("" if ok else "  <- not kept up"), flush=True)
            if not ok:
                break
            best = (offered, cpu)
        rx.stop()
        return {"mix": mix, "senders": senders, "loss_free": best[0], "cpu_s_per_m": best[1],
                "idle_per_sender": idle}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mix", default="everyday,outage")
    ap.add_argument("--senders", default="1,1000")
    ap.add_argument("--rates", default="20000,30000,40000,50000,60000,70000,80000,90000,100000")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--netconsd", metavar="RUN_SH",
                    help="measure facebook/netconsd instead: RUN_SH PORT OUTDIR starts it")
    ap.add_argument("--profile", metavar="FILE",
                    help="run the receiver under cProfile, write the stats to FILE")
    args = ap.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("bench/mix.py: needs 2 cores (receiver on one, generator on the other)")
    rates = [int(r) for r in args.rates.split(",")]
    # This process encodes the next load between runs: never on the receiver's core.
    os.sched_setaffinity(0, {GENERATOR_CPU})
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; receiver "
          + (f"netconsd via {args.netconsd}" if args.netconsd
             else "netconsole listen -w 1 --sender-budget 0 (SQLite + FTS + incidents)")
          + f" on CPU {RECEIVER_CPU}; generator bench/_blast.c on CPU {GENERATOR_CPU}")
    rows = [measure(mix, int(n), rates, args.duration, args.netconsd, args.profile)
            for mix in args.mix.split(",") for n in args.senders.split(",")]
    print("\n| mix | senders | kept up with, records/s | receiver CPU s per million | "
          "bytes per idle sender |")
    print("|---|---|---|---|---|")
    for row in rows:
        idle = f"{row['idle_per_sender']:,.0f}" if row["idle_per_sender"] else "-"
        print(f"| {row['mix']} | {row['senders']:,} | {row['loss_free']:,.0f} | "
              f"{row['cpu_s_per_m']:.1f} | {idle} |")


if __name__ == "__main__":
    main()
