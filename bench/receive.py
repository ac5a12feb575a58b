"""Benchmark: what `netconsole listen` stores, at 1, 1,000 and 100,000 senders.

A load generator sends extended netconsole traffic, byte-exact to the kernel's
encoder, from N simulated senders: distinct 127.x.y.z source addresses (set
per datagram with IP_PKTINFO, so one socket serves them all) and the fixed
source port 6665, with a share of fragmented records, at a chosen rate. The
receiver is the real `netconsole listen` (real sockets, real SQLite). For each
sender count it reports:

* the highest loss-free rate: records/s stored with < 0.1 % lost and kept
  up with (one second after the load stops, < 1 % still buffered: a big
  socket buffer must not pass for speed), found by raising the offered rate
  until either fails;
* CPU seconds per million records stored (receiver processes only);
* resident memory, and per idle sender (RSS growth / senders).

Usage: python bench/receive.py [--senders 1,1000,100000] [--workers 2]
       [--duration 10] [--fragmented 0.05] [--rates 2000,5000,...]
Everything goes to loopback only.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netconsole.collector import free_udp_port
from netconsole.wire import OutgoingRecord, encode_extended

IP_PKTINFO = 8
SOURCE_PORT = 6665
# A rate counts as handled when < 0.1 % is lost in the end and, one second
# after the load stops, less than 1 % of it still waits in buffers.
KEEP_UP_GRACE = 1.0
MAX_BACKLOG = 0.01

# --pin: the receiver (every process of it) on one core, the generator on the
# other, as DESIGN's reference figures were measured. None: unpinned.
RECEIVER_CPUS: set[int] | None = None


def _receiver_affinity() -> None:
    if RECEIVER_CPUS is not None:
        os.sched_setaffinity(0, RECEIVER_CPUS)  # inherited by its workers and threads


def source_address(i: int) -> bytes:
    # 127.1.0.0/16 and up: never 127.0.0.1, so the receiver sees N distinct hosts.
    return bytes([127, 1 + (i >> 16), (i >> 8) & 255, i & 255])


class LoadGenerator:
    """Paced sender of kernel-exact extended records from many addresses."""

    def __init__(self, senders: int, port: int, fragmented: float) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", SOURCE_PORT))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.dest = ("127.0.0.1", port)
        self.senders = senders
        self.cmsgs = [[(socket.IPPROTO_IP, IP_PKTINFO,
                        struct.pack("=I4s4s", 0, source_address(i), b"\0" * 4))]
                      for i in range(senders)]
        self.seq = [0] * senders
        self.every = int(1 / fragmented) if fragmented > 0 else 0
        self.records = 0
        self.datagrams = 0
        self.next = 0

    def _record(self, i: int) -> list[bytes]:
        self.seq[i] += 1
        seq = self.seq[i]
        self.records += 1
        if self.every and self.records % self.every == 0:
            # Long but ordinary (an audit line with a big command line): the
            # fragmented share must not turn into incidents, which are rare.
            text = (b'audit: type=1400 audit(1795669191.453:%d): apparmor="DENIED" '
                    b'operation="exec" profile="snap.bench" cmdline="' % seq
                    + b"--option=value " * 100 + b'"')
        else:
            text = b"e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex %d" % seq
        return encode_extended(OutgoingRecord(
            facility=0, level=6, seq=seq, ts_usec=10_000_000 + seq * 1000, text=text,
            userdata=((b"hostname", b"bench-%d" % i),)))

    def run(self, rate: float, seconds: float) -> None:
        """Offer `rate` records/s for `seconds`, round-robin over the senders."""
        start = time.perf_counter()
        sent = 0
        sendmsg, dest, cmsgs = self.sock.sendmsg, self.dest, self.cmsgs
        while True:
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                break
            due = int(rate * elapsed) + 1
            while sent < due:
                i = self.next
                self.next = (i + 1) % self.senders
                for d in self._record(i):
                    try:
                        sendmsg([d], cmsgs[i], 0, dest)
                    except BlockingIOError:
                        time.sleep(0.0005)
                        sendmsg([d], cmsgs[i], 0, dest)
                    self.datagrams += 1
                sent += 1
            time.sleep(0.001)


class Receiver:
    def __init__(self, workers: int, tmp: Path, profile: str | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.port = free_udp_port()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.http = s.getsockname()[1]
        self.db = tmp / "bench.db"
        # --profile: cProfile writes its stats when listen returns (SIGTERM)
        python = [sys.executable, *(("-m", "cProfile", "-o", profile) if profile else ())]
        self.proc = subprocess.Popen(
            [*python, "-m", "netconsole", "listen", "--quiet", "--db", str(self.db),
             "-p", str(self.port), "-w", str(workers), "--http", f"127.0.0.1:{self.http}",
             *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            preexec_fn=_receiver_affinity)
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if b"listening on" in line:
                break
        self.pids = [self.proc.pid, *self._children()]

    def _children(self) -> list[int]:
        time.sleep(0.5)
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = Path(f"/proc/{d}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    out.append(int(d))
        return out

    def stored(self) -> int:
        """Records committed, read from the database itself: the metrics are
        reported once a second, so they lag by up to that, which a keep-up test
        one second after the load cannot afford. Ids are given one after the
        other (nothing is deleted here), so the newest id is the count."""
        if not self.db.exists():
            return 0
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return int(conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return 0
        finally:
            conn.close()

    def cpu_seconds(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids:
            try:
                f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(f[11]) + int(f[12])
        return total / tick

    def rss_bytes(self) -> int:
        total = 0
        for pid in self.pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                continue
        return total

    def wait_settled(self, target: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        last, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = self.stored()
            if n >= target:
                return n
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since > 1.5:
                return n
            time.sleep(0.1)
        return self.stored()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


class NetconsdReceiver(Receiver):
    """facebook/netconsd, for a side-by-side figure: `--netconsd run.sh`, where
    `run.sh PORT OUTDIR` starts it in the foreground writing one file per host
    (its logger module). Not shipped: build it yourself from its repository.
    Stored = lines in its per-host files (one per record)."""

    def __init__(self, script: str, tmp: Path) -> None:
        self.port = free_udp_port()
        self.out = tmp / "netconsd"
        self.proc = subprocess.Popen([script, str(self.port), str(self.out)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_receiver_affinity)
        time.sleep(1.0)
        self.pids = [self.proc.pid]

    def stored(self) -> int:
        total = 0
        for f in self.out.iterdir():
            with f.open("rb") as fh:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # it waits for its held-back messages
            self.proc.kill()
            self.proc.wait()


def measure(senders: int, workers: int, rates: list[int], duration: float,
            fragmented: float, netconsd: str | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        rx = NetconsdReceiver(netconsd, Path(tmp)) if netconsd else Receiver(workers, Path(tmp))
        gen = LoadGenerator(senders, rx.port, fragmented)
        base_rss = rx.rss_bytes()
        # Warm up: every sender sends once, so the idle state of each exists.
        gen.run(min(rates[0], senders) if senders > 1 else rates[0], max(1.0, senders / rates[0]))
        if senders > 1:
            while gen.records < senders:
                gen.run(rates[0], 0.5)
        rx.wait_settled(gen.records)
        idle_rss = rx.rss_bytes()
        best, best_cpu = 0.0, 0.0
        for rate in rates:
            before_records = gen.records
            before_stored = rx.stored()
            before_cpu = rx.cpu_seconds()
            t0 = time.perf_counter()
            gen.run(rate, duration)
            sent = gen.records - before_records
            offered = sent / (time.perf_counter() - t0)
            # Kept up: one second after the load stops, (almost) all of it is
            # stored. Socket buffers hide a deficit for a while, not for long:
            # a receiver that only buffers shows a backlog here.
            time.sleep(KEEP_UP_GRACE)
            backlog = 1 - (rx.stored() - before_stored) / max(1, sent)
            stored = rx.wait_settled(before_stored + sent) - before_stored
            lost = 1 - stored / max(1, sent)
            cpu = rx.cpu_seconds() - before_cpu
            print(f"  {senders:>7,} senders, offered {offered:>9,.0f} rec/s: stored {stored:,}, "
                  f"lost {lost:.3%}, backlog after {KEEP_UP_GRACE:.0f} s {max(0, backlog):.2%}, "
                  f"receiver CPU {cpu / max(stored, 1) * 1e6:.1f} s/M", flush=True)
            ok = lost < 0.001 and backlog < MAX_BACKLOG
            if offered < rate * 0.9:
                print("  (the generator cannot offer more on this machine)")
                if ok:
                    best, best_cpu = offered, cpu / max(stored, 1) * 1e6
                break
            if not ok:
                break
            best, best_cpu = offered, cpu / max(stored, 1) * 1e6
        rss = rx.rss_bytes()
        rx.stop()
        return {"senders": senders, "loss_free": best, "cpu_s_per_m": best_cpu,
                "rss_mib": rss / 2**20,
                "idle_per_sender": (idle_rss - base_rss) / senders if senders >= 1000 else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--senders", default="1,1000,100000")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--fragmented", type=float, default=0.05)
    ap.add_argument("--rates", default="2000,5000,10000,20000,40000,80000")
    ap.add_argument("--netconsd", metavar="RUN_SH",
                    help="measure facebook/netconsd instead: RUN_SH PORT OUTDIR starts it")
    ap.add_argument("--pin", action="store_true",
                    help="receiver on CPU 0, generator on CPU 1 (needs 2 cores)")
    args = ap.parse_args()
    if args.pin:
        global RECEIVER_CPUS
        RECEIVER_CPUS = {0}
        os.sched_setaffinity(0, {1})
    rates = [int(r) for r in args.rates.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; receiver: "
          + (f"netconsd via {args.netconsd}" if args.netconsd
             else f"netconsole listen, {args.workers} workers, SQLite")
          + f"; generator: Python, IP_PKTINFO sources; {args.fragmented:.0%} fragmented"
          + ("; receiver pinned to CPU 0, generator to CPU 1" if args.pin else ""))
    rows = [measure(int(n), args.workers, rates, args.duration, args.fragmented, args.netconsd)
            for n in args.senders.split(",")]
    print("\n| senders | loss-free records/s | receiver CPU s per million | RSS MiB | "
          "bytes per idle sender |")
    print("|---|---|---|---|---|")
    for r in rows:
        per = f"{r['idle_per_sender']:,.0f}" if r["idle_per_sender"] else "-"
        print(f"| {r['senders']:,} | {r['loss_free']:,.0f} | {r['cpu_s_per_m']:.1f} | "
              f"{r['rss_mib']:.0f} | {per} |")


if __name__ == "__main__":
    main()
