"""`netconsole forward` end to end on loopback: a kmsg source → forward → a real
`netconsole listen` → SQLite.

The kmsg sources are files and FIFOs in the kernel's /dev/kmsg format (one
record per line plus ` KEY=value` continuation lines), and this machine's
real /dev/kmsg.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from netconsole.collector import free_udp_port
from netconsole.store import open_reader
from netconsole.wire import OutgoingRecord, format_message
from tests.integration.listen_harness import Listener, wait_for

LONG = b"forward: LONG " + b"".join(b"|%04d:\\\xc3\xa9" % i for i in range(300))


def kmsg_lines(first: int, n: int) -> bytes:
    """`n` records from seq `first` as /dev/kmsg prints them, every kind forward meets."""
    out = []
    for seq in range(first, first + n):
        kind = seq % 5
        text = {0: b"forward: plain record %d" % seq,
                1: b"forward: tab\there back\\slash caf\xc3\xa9 %d" % seq,
                2: LONG if seq % 10 == 2 else b"forward: user record %d" % seq,
                3: b"forward: e1000e eth0 link up %d" % seq,
                4: b"forward: WARNING: CPU: 0 PID: 1 at lib/x.c:1 f+0x1/0x2 (%d)" % seq}[kind]
        out.append(format_message(OutgoingRecord(
            facility=1 if kind == 2 else 0, level=4 if kind == 4 else 6, seq=seq,
            ts_usec=1_000_000 + seq * 1000, text=text,
            dictionary=((b"SUBSYSTEM", b"pci"), (b"DEVICE", b"+pci:0000:00:19.0"))
            if kind == 3 else ())))
    return b"".join(out)


def forward(listener: Listener, kmsg: Path, state: Path, local_port: int,
            *args: str) -> dict[str, Any]:
    """Run `netconsole forward --once --stats` and return its counters."""
    res = subprocess.run(
        [sys.executable, "-m", "netconsole", "forward", f"127.0.0.1:{listener.port}",
         "--kmsg", str(kmsg), "--state", str(state), "--local-port", str(local_port),
         "--once", "--stats", "--sysdata", "msgid", *args],
        capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr.decode()
    stats: dict[str, Any] = json.loads(res.stdout)
    return stats


def host(listener: Listener) -> Any:
    with open_reader(listener.db) as r:
        [h] = r.hosts(now=time.time())
    return h


@pytest.fixture
def listener(tmp_path: Path) -> Any:
    lst = Listener(tmp_path)
    yield lst
    lst.stop()


def test_forward_file_every_record_once_and_restart_repeats_none(
        listener: Listener, tmp_path: Path) -> None:
    kmsg, state, port = tmp_path / "kmsg", tmp_path / "forward.state", free_udp_port()
    kmsg.write_bytes(kmsg_lines(0, 40))
    first = forward(listener, kmsg, state, port, "--no-pstore")
    assert (first["read"], first["sent"], first["state_seq"]) == (40, 40, 39)
    listener.wait_records(40)
    recs = listener.records()
    assert sorted(r.seq for r in recs) == list(range(40))
    by_seq = {r.seq: r for r in recs}
    assert by_seq[2].text == LONG  # 3.6 KB escaped: ncfrag-fragmented, reassembled whole
    assert by_seq[1].text == b"forward: tab\there back\\slash caf\xc3\xa9 1"
    assert by_seq[3].field(b"DEVICE") == b"+pci:0000:00:19.0"
    assert by_seq[7].facility == 1
    assert by_seq[0].field(b"hostname") is not None and by_seq[0].msgid == 1

    # Restart with the same state file after more records were logged.
    with kmsg.open("ab") as f:
        f.write(kmsg_lines(40, 10))
    second = forward(listener, kmsg, state, port, "--no-pstore")
    assert (second["skipped"], second["read"], second["sent"]) == (40, 10, 10)
    # A third run with one more record: by the time it is stored, anything the
    # second run repeated would have been seen (same socket, same worker).
    with kmsg.open("ab") as f:
        f.write(kmsg_lines(50, 1))
    assert forward(listener, kmsg, state, port, "--no-pstore")["sent"] == 1
    listener.wait_records(51)
    seqs = Counter(r.seq for r in listener.records())
    assert seqs == Counter(range(51))
    h = host(listener)
    assert (h.records, h.duplicates, h.lost_seq, h.lost_msgid, h.reboots) == (51, 0, 0, 0, 0)


def test_forward_level_filter_passes_crash_output(listener: Listener, tmp_path: Path) -> None:
    # (seq, seconds since boot, level, text): a WARN report opens a 10 s crash
    # window in which even info lines pass a --level warning filter.
    log = [(0, 1, 6, b"info before"), (1, 30, 3, b"an error"),
           (2, 60, 4, b"WARNING: CPU: 0 PID: 1 at lib/x.c:1 f+0x1/0x2"),
           (3, 60, 6, b"Modules linked in: e1000e"), (4, 61, 6, b"RIP: 0010:f+0x1/0x2"),
           (5, 62, 6, b"RAX: 0000000000000000"), (6, 90, 6, b"info long after")]
    kmsg = tmp_path / "kmsg"
    kmsg.write_bytes(b"".join(format_message(OutgoingRecord(
        facility=0, level=lvl, seq=seq, ts_usec=sec * 1_000_000, text=text))
        for seq, sec, lvl, text in log))
    stats = forward(listener, kmsg, tmp_path / "st", free_udp_port(), "--no-pstore",
                    "--level", "warning")
    assert (stats["sent"], stats["filtered_level"], stats["crash"]) == (5, 2, 4)
    listener.wait_records(5)
    assert sorted(r.seq for r in listener.records()) == [1, 2, 3, 4, 5]


RAMOOPS = (b"Panic#1 Part1\n"
           b"<6>[    0.000000] Linux version 6.12.38+deb12-amd64\n"
           b"<4>[   42.000001] sysrq: Trigger a crash\n"
           b"<0>[   42.000100] Kernel panic - not syncing: sysrq triggered crash\n"
           b"<4>[   42.000200] Call Trace:\n"
           b"<4>[   42.000300]  <TASK>\n")
OOPS = (b"Oops#1 Part1\n"
        b"<1>[   17.500000] BUG: kernel NULL pointer dereference, address: 0000000000000008\n"
        b"<4>[   17.500100] Oops: 0002 [#1] PREEMPT SMP NOPTI\n")


def test_forward_pstore_dumps_marked_sent_once_no_reboot_or_gap(
        listener: Listener, tmp_path: Path) -> None:
    pstore = tmp_path / "pstore"
    pstore.mkdir()
    (pstore / "dmesg-ramoops-0").write_bytes(RAMOOPS)
    (pstore / "dmesg-ramoops-1.enc.z").write_bytes(zlib.compress(OOPS))
    (pstore / "console-ramoops-0").write_bytes(b"not a dmesg dump\n")
    kmsg, state, port = tmp_path / "kmsg", tmp_path / "st", free_udp_port()
    kmsg.write_bytes(kmsg_lines(100, 5))  # this boot's log, seq 100..104
    stats = forward(listener, kmsg, state, port, "--pstore-dir", str(pstore))
    assert (stats["pstore_dumps"], stats["pstore_records"], stats["sent"]) == (2, 7, 5)
    listener.wait_records(12)
    recs = listener.records()
    dumped = [r for r in recs if r.field(b"pstore") is not None]
    assert Counter(r.field(b"pstore") for r in dumped) == {
        b"dmesg-ramoops-0": 5, b"dmesg-ramoops-1.enc.z": 2}
    assert all(r.field(b"boot") == b"previous" for r in dumped)
    panic = next(r for r in dumped if r.text.startswith(b"Kernel panic"))
    assert (panic.level, panic.ts_usec, panic.seq) == (0, 42_000_100, 2)
    assert sorted(r.seq for r in recs if r.field(b"pstore") is None) == list(range(100, 105))

    # A restart sends no dump again; one new live record proves the run is stored.
    with kmsg.open("ab") as f:
        f.write(kmsg_lines(105, 1))
    again = forward(listener, kmsg, state, port, "--pstore-dir", str(pstore))
    assert (again["pstore_dumps"], again["pstore_already_sent"], again["sent"]) == (0, 2, 1)
    listener.wait_records(13)
    assert len(listener.records()) == 13
    h = host(listener)
    assert (h.reboots, h.lost_seq, h.lost_msgid, h.duplicates) == (0, 0, 0, 0)


def test_forward_fifo_until_the_writer_closes(listener: Listener, tmp_path: Path) -> None:
    fifo = tmp_path / "kmsg.fifo"
    os.mkfifo(fifo)
    data = kmsg_lines(0, 30)

    def writer() -> None:
        with fifo.open("wb") as f:  # blocks until forward opens the FIFO
            for i in range(0, len(data), 333):  # chunks cut records anywhere
                f.write(data[i : i + 333])
                f.flush()

    t = threading.Thread(target=writer)
    t.start()
    proc = subprocess.run(
        [sys.executable, "-m", "netconsole", "forward", f"127.0.0.1:{listener.port}",
         "--kmsg", str(fifo), "--state", str(tmp_path / "st"), "--no-pstore", "--stats",
         "--local-port", str(free_udp_port())], capture_output=True, timeout=120)
    t.join()
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["sent"] == 30
    listener.wait_records(30)
    assert sorted(r.seq for r in listener.records()) == list(range(30))


def _mark() -> bytes | None:
    """Write a marker record to the real /dev/kmsg; None when it is not writable."""
    marker = b"forward-test-" + uuid.uuid4().hex.encode()
    try:
        with open("/dev/kmsg", "wb", buffering=0) as f:
            f.write(b"<6>" + marker + b"\n")
    except OSError:
        return None
    return marker


@pytest.fixture
def real_kmsg() -> None:
    try:
        os.close(os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        pytest.skip(f"cannot read /dev/kmsg here: {exc}")


def test_forward_real_dev_kmsg_once(real_kmsg: None, listener: Listener,
                                    tmp_path: Path) -> None:
    marker = _mark()
    stats = forward(listener, Path("/dev/kmsg"), tmp_path / "st", free_udp_port(),
                    "--no-pstore")
    assert stats["read"] >= 1 and stats["sent"] == stats["read"]
    listener.wait_records(1)
    if marker is not None:
        wait_for(lambda: any(r.text == marker for r in listener.records()), timeout=20)
        [rec] = [r for r in listener.records() if r.text == marker]
        assert (rec.facility, rec.level) == (1, 6)
        assert rec.seq is not None and stats["state_seq"] >= rec.seq


def test_forward_real_dev_kmsg_follows_reports_on_sigusr1_and_stops_on_sigterm(
        real_kmsg: None, listener: Listener, tmp_path: Path) -> None:
    err = tmp_path / "forward.err"
    state = tmp_path / "st"
    proc = subprocess.Popen(
        [sys.executable, "-m", "netconsole", "forward", f"127.0.0.1:{listener.port}",
         "--state", str(state), "--no-pstore", "--local-port", str(free_udp_port())],
        stdout=subprocess.DEVNULL, stderr=err.open("wb"))
    try:
        listener.wait_records(1)
        marker = _mark()
        if marker is not None:  # written after start: only following the device sends it
            wait_for(lambda: any(r.text == marker for r in listener.records()), timeout=20)
        proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: b'"boot_id"' in err.read_bytes(), timeout=20)
        report = json.loads(next(line for line in err.read_bytes().splitlines()
                                 if line.startswith(b"{")))
        assert report["sent"] >= 1 and report["boot_id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    assert rc == 0, err.read_text()
    saved = json.loads(state.read_text())
    assert saved["seq"] is not None and saved["seq"] >= max(
        r.seq for r in listener.records() if r.seq is not None)
