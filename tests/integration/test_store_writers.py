"""Several writer processes on one database, as `listen` runs one per core.

Each process writes its own senders (SO_REUSEPORT keeps a sender on one
worker); SQLite's lock serialises the transactions. Nothing may be lost,
duplicated, or counted on the wrong host, and the search index must match.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from netconsole.store import open_reader, open_store

WRITER = r"""
import sys, time
from netconsole.store import open_store
from netconsole.stream.events import Gap, GapKind, Record, Sender
from netconsole.wire import Mode

path, worker, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
senders = [Sender(host=f"10.{worker}.0.{i}", port=6665, local_port=6666) for i in range(5)]
store = open_store(path)
seq = 0
for _ in range(batches):
    events = []
    for sender in senders:
        for _ in range(40):
            events.append(Record(sender=sender, mode=Mode.EXTENDED, received=time.time(),
                                 seq=seq, level=6, text=b"worker %d seq %d" % (worker, seq)))
            seq += 1
        events.append(Gap(sender=sender, at=time.time(), kind=GapKind.SEQ, first=0, count=1))
    store.apply(events)
store.close()
"""


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    open_store(db).close()  # migrate once, as `listen` does before starting workers
    batches = 25
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(w), str(batches)])
        for w in range(3)
    ]
    assert [p.wait(timeout=600) for p in procs] == [0, 0, 0]

    with open_reader(db) as reader:
        hosts = reader.hosts(now=0)
        total = sum(1 for _ in reader.export())
        found = reader.search("worker 2 seq 4999")
    assert total == 3 * batches * 5 * 40
    assert len(hosts) == 15
    assert {h.records for h in hosts} == {batches * 40}
    assert {h.lost_seq for h in hosts} == {batches}
    assert [s.record.text for s in found] == [b"worker 2 seq 4999"]
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
    assert conn.execute("SELECT count(*) FROM records_fts").fetchone()[0] == total
