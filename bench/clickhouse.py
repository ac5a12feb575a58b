"""The ClickHouse store against the SQLite store: ingest, size, and queries at 10^7.

Starts its own clickhouse-server (Debian's 18.16, as the tests do: own
configuration, data directory and loopback ports) and measures:

1. Ingest: N records (default 200,000) from 1 and from 1,000 senders, stored
   with `apply` in batches of 5,000 (the receiver's largest), into SQLite and
   into ClickHouse. Records/s, and CPU per record: this process's, and for
   ClickHouse the server's too (from /proc), since it does part of the work.
2. Bytes per stored record: the records table's compressed parts (after a merge)
   against the SQLite file (records, indexes and FTS) per record.
3. Query latency over 10^7 records made inside ClickHouse with
   `INSERT … SELECT … FROM numbers(…)` (10,000 hosts over one day, 10,000
   incidents of 50 kinds of crash): `tail -n 100 --host X`, `search WORD` (a
   common word, found in the last hour, and a word in no record: a scan of
   everything), `incidents top` and `hosts`, each the median of 3 runs through
   the reader the CLI uses.

    python -m bench.clickhouse [-n 200000] [--rows 10000000]   (from the repository root)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.store import make_records
from tests.integration.clickhouse.server import Cluster

from netconsole.store import open_store
from netconsole.store.clickhouse import ClickHouseStore

BATCH = 5000
TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def ingest(store: Any, records: list[Any], server: int | None) -> tuple[float, float, float]:
    """(records/s, client µs CPU per record, server µs CPU per record)."""
    s0 = server_cpu(server) if server else 0.0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, len(records), BATCH):
        store.apply(records[start:start + BATCH])
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    s1 = server_cpu(server) if server else 0.0
    n = len(records)
    return n / elapsed, cpu / n * 1e6, (s1 - s0) / n * 1e6


def generate(server: Any, database: str, rows: int, hosts: int, t0: float) -> None:
    """`rows` records, `hosts` hosts and incidents, made by the server itself."""
    step = 86400.0 / rows
    server.query(
        f"INSERT INTO {database}.hosts SELECT number + 1, concat('10.', toString(intDiv(number,"
        " 256)), '.', toString(number % 256), '.1'), 6665, 6666, 'host', '', 0, 0"
        f" FROM numbers({hosts})")
    server.query(
        f"INSERT INTO {database}.hosts SELECT number + 1, concat('10.', toString(intDiv(number,"
        " 256)), '.', toString(number % 256), '.1'), 6665, 6666, 'name',"
        f" concat('node-', toString(number + 1)), {t0}, 0 FROM numbers({hosts})")
    words = ("'e1000e 0000:00:19.0 eth0: NIC Link is Down'",
             "'EXT4-fs (sda1): mounted filesystem with ordered data mode'",
             "'TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.'",
             "'systemd[1]: Started session.scope - Session of User root.'",
             "'usb 1-1: new high-speed USB device number using xhci_hcd'",
             "'audit: type=1400 apparmor=\"STATUS\" operation=\"profile_load\"'",
             "'netconsole: network logging started'",
             "'workqueue: drm_fb_helper_damage_work hogged CPU for >10000us'")
    server.query(
        f"INSERT INTO {database}.records (host_id, received, n, id, boot, stored, mode,"
        " release, facility, level, seq, ts_usec, flag, caller, text, `fields.key`,"
        " `fields.value`, header_extra, msgid, cpu, taskname, complete, missing)"
        f" SELECT number % {hosts} + 1, {t0} + number * {step}, 0,"
        " bitAnd(sipHash64(number), 9223372036854775807), 0,"
        f" toUInt64(({t0} + number * {step}) * 1000000), 'extended', '6.12.0-1-amd64', 0,"
        f" number % 8, intDiv(number, {hosts}), number * 1000, '-', NULL,"
        f" concat(arrayElement([{', '.join(words)}], number % 8 + 1), ' #', toString(number)),"
        " ['hostname', 'cpu'], [concat('node-', toString(number % "
        f"{hosts} + 1)), toString(number % 4)], NULL, intDiv(number, {hosts}), number % 4,"
        f" NULL, 1, NULL FROM numbers({rows})")
    server.query(
        f"INSERT INTO {database}.incidents SELECT number % {hosts} + 1, toString(number),"
        " bitAnd(sipHash64(number, 'i'), 9007199254740991), t, 0, t, 0, 0,"
        " arrayElement(['oops', 'warning', 'panic'], number % 3 + 1), 'error', 'closed',"
        " concat('BUG: crash kind ', toString(number % 50)), concat('fp', toString(number % 50)),"
        " concat('func_', toString(number % 50), '+0x1/0x10'), '[]', 'report text', NULL, 1, 2,"
        " t, t, 1, 2, NULL, NULL, 20, 0, 1, 0, 0, NULL, NULL, 0, t"
        f" FROM (SELECT number, {t0} + number * 8.64 AS t FROM numbers({hosts}))")


def latency(fn: Callable[[], Any]) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(3):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200_000, help="records to ingest per run")
    parser.add_argument("--rows", type=int, default=10_000_000, help="records to query over")
    parser.add_argument("--hosts", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp) / "ch")
        server = cluster.servers[0]
        server.start()
        try:
            assert server.proc is not None
            pid = server.proc.pid
            print(f"ClickHouse {server.query('SELECT version()').strip()}, one server;"
                  f" batches of {BATCH}")
            for senders in (1, 1000):
                records = make_records(args.n, senders)
                sq = open_store(Path(tmp) / f"bench{senders}.db")
                rate, cpu, _ = ingest(sq, records, None)
                sq.close()
                size = os.path.getsize(Path(tmp) / f"bench{senders}.db")
                print(f"  SQLite     {senders:>5} senders: {rate:>9,.0f} records/s,"
                      f" {cpu:5.1f} µs CPU/record; {size / args.n:5.0f} B/record on disk")
                url = f"clickhouse://{server.address}/bench{senders}"
                ch = open_store(url)
                assert isinstance(ch, ClickHouseStore)
                rate, cpu, scpu = ingest(ch, records, pid)
                db = f"bench{senders}"
                server.query(f"OPTIMIZE TABLE {db}.records FINAL")
                size, rows = map(int, server.query(
                    "SELECT sum(data_compressed_bytes), sum(rows) FROM system.parts WHERE"
                    f" database = '{db}' AND table = 'records' AND active").split())
                print(f"  ClickHouse {senders:>5} senders: {rate:>9,.0f} records/s,"
                      f" {cpu:5.1f} µs CPU/record here + {scpu:5.1f} in the server;"
                      f" {size / rows:5.0f} B/record compressed")
                ch.close()

            url = f"clickhouse://{server.address}/big"
            open_store(url).close()
            t0 = time.time() - 86400.0
            t = time.perf_counter()
            generate(server, "big", args.rows, args.hosts, t0)
            print(f"generated {args.rows:,} records of {args.hosts:,} hosts in"
                  f" {time.perf_counter() - t:.1f} s")
            size, rows = map(int, server.query(
                "SELECT sum(data_compressed_bytes), sum(rows) FROM system.parts WHERE"
                " database = 'big' AND table = 'records' AND active").split())
            print(f"  {size / rows:.0f} B/record compressed ({size / 1e6:.0f} MB)")
            reader = open_store(url).reader
            for name, fn in (
                ("tail -n 100 --host node-42", lambda: reader.tail(host="node-42", limit=100)),
                ("search Possible (newest 100)", lambda: reader.search("Possible", limit=100)),
                ("search nosuchword (full scan)", lambda: reader.search("nosuchword")),
                ("incidents top", lambda: reader.incidents_top()),
                ("hosts", lambda: reader.hosts(now=time.time())),
            ):
                took, out = latency(fn)
                print(f"  {name:32} {took * 1000:8.0f} ms  ({len(out)} results)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
