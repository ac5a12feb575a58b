"""100,000 hostile datagrams from 1,024 senders through a real `netconsole listen`,
with one worker and with two.

The datagrams come from tests/integration/hostile.py: built from the wire
grammar (extreme header numbers, fragment bombs, conflicting copies of
fragments, empty and 65,507-byte datagrams, invalid UTF-8, thousands of
fields, basic-mode junk). The sender keeps the receiver's socket queue short,
so they are parsed rather than dropped. Afterwards the receiver must still be
what it was: alive, no traceback, every datagram accounted for, memory
bounded, and a well-behaved host's record stored within 2 s.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from netconsole.store import open_reader
from netconsole.wire import OutgoingRecord, encode_extended
from tests.integration.hostile import HostileDatagrams, Storm, memory_kib
from tests.integration.listen_harness import FakeHost, Listener, wait_for

DATAGRAMS = 100_000
SEED = 20261202
CANARY_WITHIN = 2.0
# Peak resident memory of any receiver process. This run peaks near 130 MiB
# (1,024 hosts, their stream and incident state, SQLite's cache); per-sender
# state is bounded (16 open records, at most their `total` bytes and 256
# pieces each, given up after a second), so a receiver that kept what
# hostile senders send, or leaked per datagram, would pass it.
RSS_BOUND_MIB = 256


@pytest.mark.parametrize("workers", [1, 2])
def test_hostile_storm_then_a_canary(tmp_path: Path, workers: int) -> None:
    lis = Listener(tmp_path, workers=workers)
    storm = Storm(lis.port)
    try:
        sent = storm.send(HostileDatagrams(SEED, storm.senders), DATAGRAMS)
        assert sent.datagrams == DATAGRAMS
        # Nothing vanished: every datagram was received (counted, whatever it
        # became) or counted as dropped by the kernel.
        try:
            wait_for(lambda: _accounted(lis) >= DATAGRAMS, timeout=60)
        except AssertionError:
            raise AssertionError(f"datagrams unaccounted for: {lis.metrics()}") from None
        memory = memory_kib(lis.proc.pid)
        assert len(memory) >= workers
        canary = FakeHost()
        try:
            text = b"canary after %d hostile datagrams" % DATAGRAMS
            [datagram] = encode_extended(OutgoingRecord(
                facility=0, level=6, seq=1, ts_usec=1, text=text,
                userdata=((b"hostname", b"canary"),)))
            start = time.monotonic()
            canary.send([datagram], lis.port)
            latency = _stored_within(lis.db, text, CANARY_WITHIN, start)
        finally:
            canary.close()
        assert latency is not None, f"canary not stored within {CANARY_WITHIN}s"
        assert lis.proc.poll() is None
        assert len(memory_kib(lis.proc.pid)) == len(memory)  # no process died
        metrics = lis.metrics()
    finally:
        storm.close()
        code = lis.stop(signal.SIGTERM)
    stderr = lis.stderr
    assert "Traceback" not in stderr, stderr[-4000:]
    assert code == 0, stderr[-4000:]
    peak_mib = max(hwm for _, hwm in memory.values()) / 1024
    assert peak_mib < RSS_BOUND_MIB, (memory, metrics)
    assert metrics["netconsole_store_errors_total"] == 0, metrics
    rejected = {k: v for k, v in metrics.items() if k.startswith("netconsole_rejected")}
    assert metrics['netconsole_rejected_datagrams_total{reason="fragment_mismatch"}'] > 0, \
        rejected  # the conflicting copies were seen and counted


def _accounted(lis: Listener) -> float:
    m = lis.metrics()
    return m.get("netconsole_datagrams_total", 0) + m.get("netconsole_kernel_drops_total", 0)


def _stored_within(db: Path, text: bytes, timeout: float, start: float) -> float | None:
    with open_reader(db) as reader:
        while time.monotonic() - start < timeout:
            if any(s.record.text == text for s in reader.search("canary", host="canary",
                                                                   limit=5)):
                return time.monotonic() - start
            time.sleep(0.01)
    return None
