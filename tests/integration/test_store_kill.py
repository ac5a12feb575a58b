"""`kill -9` of a writer mid-load loses no batch it had reported stored.

A real child process writes batches with `SQLiteStore.apply`, each with its
stream state, and prints `acked <batches>` after every `apply` returns. The
test kills it with SIGKILL while it is writing, then checks the database:
every acknowledged batch is there, whole, and the saved stream state matches
the records exactly (they were committed in one transaction). The child is
restarted from that state several times, as `listen` would be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from netconsole.store import open_reader, open_store
from netconsole.stream.events import Sender

BATCH = 200
SENDER = Sender(host="198.51.100.7", port=6665, local_port=6666)

CHILD = r"""
import sys, time
from netconsole.store import open_store
from netconsole.stream.events import Record, Sender
from netconsole.wire import Mode

path, batch = sys.argv[1], int(sys.argv[2])
sender = Sender(host="198.51.100.7", port=6665, local_port=6666)
store = open_store(path)
state = store.load_stream_states().get(sender, {"batches": 0})
done = state["batches"]
while True:
    first = done * batch
    records = [
        Record(sender=sender, mode=Mode.EXTENDED, received=time.time(), seq=seq, level=6,
               facility=0, ts_usec=seq, text=b"load record %d " % seq + b"x" * 120,
               fields=((b"msgid", str(seq).encode()),))
        for seq in range(first, first + batch)
    ]
    store.apply(records, states={sender: {"batches": done + 1}})
    done += 1
    print("acked", done, flush=True)
"""


def _run_and_kill(db: Path, batches_before_kill: int) -> int:
    """Start the writer, SIGKILL it after it acked that many more; return its last ack."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(BATCH)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acked = first = None
    for line in child.stdout:
        acked = int(line.split()[1])
        first = acked if first is None else first
        if acked - first + 1 >= batches_before_kill:
            break
    os.kill(child.pid, signal.SIGKILL)
    rest = child.stdout.read()  # acks printed between our last read and the kill
    child.wait()
    assert child.returncode == -signal.SIGKILL
    for line in rest.splitlines():
        acked = int(line.split()[1])
    assert acked is not None
    return acked


def test_sigkill_mid_load_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    for round_ in range(3):
        acked = _run_and_kill(db, batches_before_kill=15 + 10 * round_)

        # Read it as `netconsole tail` would, straight after the crash.
        with open_reader(db) as reader:
            seqs = [s.record.seq for s in reader.export()]
            (host,) = reader.hosts(now=0)

        assert len(seqs) >= acked * BATCH, f"round {round_}: lost acknowledged records"
        assert seqs == list(range(len(seqs))), "records missing or duplicated"
        assert len(seqs) % BATCH == 0, "a batch was stored in part"
        assert host.records == len(seqs)

        store = open_store(db)
        state = store.load_stream_states()[SENDER]
        store.close()
        assert state["batches"] * BATCH == len(seqs), "state and records were not atomic"
        assert state["batches"] >= acked
