"""Benchmark: a million hostile datagrams through a real `netconsole listen`.

The same storm as tests/integration/test_fuzz_listen.py, ten times longer:
datagrams built from the wire grammar by tests/integration/hostile.py
(extreme header numbers, fragment bombs, conflicting copies of fragments,
empty and 65,507-byte datagrams, invalid UTF-8, thousands of fields,
basic-mode junk) from 1,024 senders, paced so the receiver's socket queue
stays under 4 MiB (they are parsed, not dropped). Then one well-behaved
host sends a record. It prints, with no pass or fail:

* datagrams/s: sent, and handled (until the receiver had counted them all);
* CPU seconds of the receiver's processes, in all and per 100,000 datagrams;
* peak resident memory (VmHWM) of each receiver process;
* the canary's latency: its send until it is in the store;
* what the datagrams became (records, rejections by reason, ...).

Usage: python bench/fuzz_listen.py [--datagrams 1000000] [--workers 1] [--seed N]
Everything goes to loopback only.
"""

from __future__ import annotations

import argparse
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' storm

from tests.integration.hostile import (
    HostileDatagrams,
    Storm,
    cpu_seconds,
    memory_kib,
)
from tests.integration.listen_harness import FakeHost, Listener

from netconsole.store import open_reader
from netconsole.wire import OutgoingRecord, encode_extended


def _accounted(lis: Listener) -> float:
    m = lis.metrics()
    return m.get("netconsole_datagrams_total", 0) + m.get("netconsole_kernel_drops_total", 0)


def _canary(lis: Listener, timeout: float = 30.0) -> float | None:
    text = b"canary %d" % time.time_ns()
    [datagram] = encode_extended(OutgoingRecord(facility=0, level=6, seq=1, ts_usec=1,
                                                text=text,
                                                userdata=((b"hostname", b"canary"),)))
    host = FakeHost()
    try:
        with open_reader(lis.db) as reader:
            start = time.monotonic()
            host.send([datagram], lis.port)
            while time.monotonic() - start < timeout:
                if any(s.record.text == text
                       for s in reader.search("canary", host="canary", limit=5)):
                    return time.monotonic() - start
                time.sleep(0.002)
    finally:
        host.close()
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datagrams", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20261202)
    args = ap.parse_args()

    print(f"# {platform.node()} {platform.machine()} {platform.python_version()}, "
          f"{args.datagrams:,} datagrams, {args.workers} worker(s), seed {args.seed}")
    with tempfile.TemporaryDirectory() as tmp:
        lis = Listener(Path(tmp), workers=args.workers)
        storm = Storm(lis.port)
        try:
            cpu0 = cpu_seconds(lis.proc.pid)
            start = time.monotonic()
            sent = storm.send(HostileDatagrams(args.seed, storm.senders), args.datagrams)
            while _accounted(lis) < sent.datagrams:
                if time.monotonic() - start > sent.seconds + 120:
                    print("! the receiver never counted every datagram")
                    break
                time.sleep(0.1)
            handled = time.monotonic() - start
            cpu = cpu_seconds(lis.proc.pid) - cpu0
            memory = memory_kib(lis.proc.pid)
            latency = _canary(lis)
            metrics = lis.metrics()
            alive = lis.proc.poll() is None
        finally:
            storm.close()
            code = lis.stop(signal.SIGTERM)
        tracebacks = lis.stderr.count("Traceback")

    n = sent.datagrams
    print(f"sent        {n:,} datagrams, {sent.bytes / 2**20:,.0f} MiB in {sent.seconds:.1f} s"
          f" ({n / sent.seconds:,.0f}/s, paced by the receiver)")
    print(f"handled     {handled:.1f} s: {n / handled:,.0f} datagrams/s")
    print(f"cpu         {cpu:.1f} s receiver, {cpu / n * 100_000:.2f} s per 100k datagrams")
    for pid, (rss, hwm) in sorted(memory.items()):
        print(f"memory      pid {pid}: peak {hwm / 1024:.0f} MiB, now {rss / 1024:.0f} MiB")
    print("canary      " + (f"stored {latency * 1000:.0f} ms after it was sent"
                            if latency is not None else "NOT stored within 30 s"))
    print(f"receiver    {'alive' if alive else 'DEAD'}, exit {code}, "
          f"{tracebacks} tracebacks on stderr")
    for key in sorted(metrics):
        if key.startswith(("netconsole_records_total", "netconsole_rejected",
                           "netconsole_incomplete", "netconsole_duplicates",
                           "netconsole_kernel_drops", "netconsole_shed", "netconsole_hosts",
                           "netconsole_store_errors", "netconsole_stored_records")):
            print(f"  {key.removeprefix('netconsole_'):<52} {metrics[key]:>12,.0f}")


if __name__ == "__main__":
    main()
