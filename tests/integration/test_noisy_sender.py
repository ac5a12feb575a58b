"""One noisy sender must not silence a panicking one (collector/_budget.py).

A real `netconsole listen` with an 8 MB socket buffer; a flooder process on the
other core sends fragment noise (first fragments of records that never
complete: the Python path's most expensive datagram) or valid in-order
records (the express lane's) as fast as it is told; meanwhile a quiet host
sends a kernel panic. Every record of the quiet host must be stored, and what
was shed must be counted for the flooder (metrics and its `hosts` row), never
for the quiet host.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netconsole.wire import OutgoingRecord, encode_extended
from tests.integration.listen_harness import FakeHost, Listener

FLOOD_SECONDS = 6.0

_FLOODER = textwrap.dedent("""
    import socket, sys, time
    from netconsole.wire import OutgoingRecord, encode_extended
    kind, port = sys.argv[1], int(sys.argv[2])
    rate, seconds = float(sys.argv[3]), float(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.5.1", 6665))
    def datagram(seq):
        if kind == "fragments":  # the first piece of a long record, never the rest
            rec = OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=seq * 10,
                                 text=b"noise %d " % seq * 200)
            return encode_extended(rec)[0]
        rec = OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=seq * 10,
                             text=b"eth0: link flapping %d" % seq)
        return encode_extended(rec)[0]
    start = time.monotonic()
    seq = 0
    while time.monotonic() - start < seconds:
        for _ in range(100):
            seq += 1
            try:
                s.sendto(datagram(seq), ("127.0.0.1", port))
            except OSError:
                pass
        if rate:
            time.sleep(max(0.0, start + seq / rate - time.monotonic()))
    print(seq)
""")


def _panic(seq0: int) -> list[bytes]:
    lines = [b"Kernel panic - not syncing: Fatal exception in interrupt",
             b"CPU: 3 PID: 0 Comm: swapper/3 Tainted: G      D            6.12.0 #1",
             b"Call Trace:", b" <IRQ>",
             *[b" ? frame_%d+0x1%d/0x200" % (i, i) for i in range(20)],
             b"---[ end Kernel panic - not syncing: Fatal exception in interrupt ]---"]
    return [d for i, text in enumerate(lines)
            for d in encode_extended(OutgoingRecord(facility=0, level=0, seq=seq0 + i,
                                                    ts_usec=5_000_000 + i, text=text))]


@pytest.mark.parametrize(("kind", "rate"), [("fragments", 15_000), ("valid", 0)])
def test_a_flood_does_not_silence_a_panicking_host(tmp_path: Path, kind: str,
                                                    rate: int) -> None:
    lis = Listener(tmp_path, "--rcvbuf", "8000000")
    quiet = FakeHost("127.0.5.2", 6665)
    flooder = subprocess.Popen(
        [sys.executable, "-c", _FLOODER, kind, str(lis.port), str(rate), str(FLOOD_SECONDS)],
        stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # the flood is on, the receiver behind
        sent = 0
        ordinary = [d for seq in range(1, 11) for d in encode_extended(
            OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=4_000_000 + seq,
                           text=b"quiet host line %d" % seq))]
        for d in [*ordinary, *_panic(11)]:
            quiet.sock.sendto(d, ("127.0.0.1", lis.port))
            sent += 1
            time.sleep(0.05)  # a panic trickles out over a second or two
        out, _ = flooder.communicate(timeout=FLOOD_SECONDS + 30)
        flooded = int(out)
        deadline = time.monotonic() + 30
        while lis.metrics().get("netconsole_datagrams_total", 0) < sent and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # the last batch committed
        metrics = lis.metrics()
    finally:
        flooder.kill()
        assert lis.stop() == 0
        quiet.close()
    conn = sqlite3.connect(lis.db)
    try:
        rows = dict(conn.execute("SELECT address, count(*) FROM records r JOIN hosts h"
                                 " ON h.id = r.host_id GROUP BY address"))
        shed = dict(conn.execute("SELECT address, shed FROM hosts"))
        panic = conn.execute("SELECT count(*) FROM incidents i JOIN hosts h ON h.id = i.host_id"
                             " WHERE h.address = '127.0.5.2' AND kind = 'panic'").fetchone()[0]
    finally:
        conn.close()
    assert rows.get("127.0.5.2") == sent, (rows, metrics, flooded)
    assert panic == 1
    assert metrics["netconsole_shed_datagrams_total"] > 0, (metrics, flooded)
    assert shed.get("127.0.5.2") == 0
    assert shed["127.0.5.1"] > 0
    assert metrics["netconsole_shed_datagrams_total"] == sum(shed.values())
