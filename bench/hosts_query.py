"""`netconsole hosts` at fleet scale: the store's hosts query and the whole command.

Stores one record from each of N senders (default 150,000) through the real
writer: most carry `hostname=` and a release prefix, every tenth sends in basic
mode (no name, no release) and every fifth machine has a second stream (an IPv6
target), so `--machines` has groups to make. Then prints, best of --repeat runs:

* `SQLiteReader.hosts()`: the query and the HostInfo rows, in this process;
* `netconsole hosts --json` and `netconsole hosts --machines --json`: the
  command as an operator runs it (a subprocess, start-up included, output to
  /dev/null).

    python bench/hosts_query.py [-n 150000] [--repeat 3] [--db PATH]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from netconsole.store import open_reader, open_store
from netconsole.stream.events import Record, Sender
from netconsole.wire import Mode

BATCH = 5000


def make_records(n: int) -> list[Record]:
    """One record per sender; see the module docstring for the mix."""
    now = time.time()
    out = []
    for i in range(n):
        machine = i // 2 if i % 10 in (1, 3) else i  # every fifth machine: two streams
        v6 = machine != i
        sender = Sender(host=f"2001:db8::{machine:x}" if v6 else
                        f"10.{machine >> 16 & 255}.{machine >> 8 & 255}.{machine & 255}",
                        port=6665, local_port=6666)
        basic = i % 10 == 9
        out.append(Record(
            sender=sender, mode=Mode.BASIC if basic else Mode.EXTENDED,
            received=now - (i % 1200), text=b"netconsole: network logging started",
            release=None if basic else "6.12.0-1-amd64", facility=0, level=6,
            seq=None if basic else 0, ts_usec=None if basic else 1_000_000,
            fields=() if basic else ((b"hostname", f"node-{machine}".encode()),),
        ))
    return out


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def command(db: Path, *args: str) -> Callable[[], object]:
    argv = [sys.executable, "-m", "netconsole", "hosts", *args, "--db", str(db)]
    return lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=150_000, help="senders")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path,
                        help="an existing database to query (default: build one of -n senders)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db
        if db is None:
            db = Path(tmp) / "hosts.db"
            records = make_records(args.n)
            store = open_store(db)
            for start in range(0, len(records), BATCH):
                store.apply(records[start : start + BATCH])
            store.close()
        with open_reader(db) as reader:
            n = len(reader.hosts(now=time.time()))
            query = best(args.repeat, lambda: reader.hosts(now=time.time()))
        as_json = best(args.repeat, command(db, "--json"))
        machines = best(args.repeat, command(db, "--machines", "--json"))
    print(f"hosts: {n} streams: SQLiteReader.hosts() {query:.2f} s;"
          f" `hosts --json` {as_json:.2f} s; `hosts --machines --json` {machines:.2f} s")


if __name__ == "__main__":
    main()
