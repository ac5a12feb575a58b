"""`netconsole listen` under faults: datagrams the store cannot hold, a full
disk, SIGTERM while records are held, a database from a newer netconsole.

Real processes, real UDP on loopback, real SQLite; the full disk is a real
tmpfs mounted for the test (which needs root: without it those tests skip).
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconsole.collector import free_udp_port
from netconsole.store import SCHEMA_VERSION, open_reader, open_store
from tests.integration.listen_harness import FakeHost, Listener, wait_for

INT64_MAX = (1 << 63) - 1


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of the test's own, to fill up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(fs: Path) -> Path:
    """Fill `fs` up with one file; delete it to give the space back."""
    filler = fs / "filler"
    with filler.open("wb", buffering=0) as f:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def metric(lis: Listener, name: str) -> float:
    return lis.metrics().get(name, 0.0)


def port_of(host: FakeHost) -> int:
    return int(host.sock.getsockname()[1])


def _seqs(lis: Listener, port: int) -> list[int]:
    return sorted(r.seq for r in lis.records() if r.sender.port == port)


# -- one datagram must never stop storage ------------------------------------------------


def test_numbers_sqlite_cannot_hold_do_not_stop_storage(tmp: Path) -> None:
    lis = Listener(tmp)
    bad, four, good = FakeHost(), FakeHost(), FakeHost()
    bad_port, four_port, good_port = port_of(bad), port_of(four), port_of(good)
    try:
        bad.send([
            b"6,18446744073709551616,1000,-;seq",
            b"9223372036854775808,1,1000,-;prefix",
            b"6,2,18446744073709551616,-;ts",
            b"6,3,1000,-;fields\n msgid=18446744073709551616\n cpu=99999999999999999999\n",
        ], lis.port)
        # A seq jump of 2**63 - 1, twice in one batch: the loss sum overflows int64.
        four.send([b"6,0,0,-;a", b"6,9223372036854775807,1,-;b", b"6,0,2,-;c",
                   b"6,9223372036854775807,3,-;d"], lis.port)
        good.send(good.datagrams(20), lis.port)
        lis.wait_records(1 + 4 + 20)
        wait_for(lambda: metric(
            lis, 'netconsole_rejected_datagrams_total{reason="number_too_large"}') == 3)
        good.send(good.datagrams(5), lis.port)  # and storage goes on
        lis.wait_records(1 + 4 + 25)
    finally:
        assert lis.stop() == 0
        for h in (bad, four, good):
            h.close()
    assert _seqs(lis, good_port) == list(range(1, 26))
    [kept] = [r for r in lis.records() if r.sender.port == bad_port]
    assert kept.text == b"fields"
    assert kept.field(b"msgid") == b"18446744073709551616"  # kept as sent, not as a number
    assert (kept.msgid, kept.cpu) == (None, None)
    with open_reader(lis.db) as r:
        hosts = {h.port: h for h in r.hosts(now=time.time())}
    lost = hosts[four_port].lost_seq
    assert lost == INT64_MAX and type(lost) is int  # saturated, not a float


def test_listen_refuses_a_database_from_a_newer_netconsole(tmp: Path) -> None:
    db = tmp / "nc.db"
    open_store(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    done = subprocess.run([sys.executable, "-m", "netconsole", "listen", "--db", str(db),
                           "-p", str(free_udp_port()), "--no-http", "--quiet"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "newer than this netconsole" in lines[0]
    assert "Traceback" not in done.stderr


# -- faults lose nothing silently ---------------------------------------------------------


def test_records_sent_while_the_disk_is_full_are_stored_once_space_is_back(
        tmp: Path, small_fs: Path) -> None:
    lis = Listener(tmp, db=small_fs / "nc.db")
    host = FakeHost()
    port = port_of(host)
    filler: Path | None = None
    try:
        host.send(host.datagrams(10), lis.port)
        lis.wait_records(10)
        filler = fill(small_fs)
        host.send(host.datagrams(50), lis.port)
        wait_for(lambda: metric(lis, "netconsole_held_records") >= 50, timeout=20)
        assert metric(lis, "netconsole_stored_records_total") == 10
        assert metric(lis, "netconsole_store_errors_total") >= 1
        filler.unlink()
        filler = None
        lis.wait_records(60)
        assert metric(lis, "netconsole_held_records") == 0
        host.send(host.datagrams(5), lis.port)
        lis.wait_records(65)
    finally:
        if filler is not None:
            filler.unlink()
        assert lis.stop() == 0
        host.close()
    assert _seqs(lis, port) == list(range(1, 66))
    assert "disk is full" in lis.stderr


def test_sigterm_while_the_disk_is_full_spools_and_the_next_start_stores(
        tmp: Path, small_fs: Path) -> None:
    # The spool lives beside the database; here it is a link to a disk with room.
    spool = tmp / "spool"
    spool.mkdir()
    (small_fs / "nc.db.spool").symlink_to(spool)
    lis = Listener(tmp, db=small_fs / "nc.db")
    host = FakeHost()
    port = port_of(host)
    filler: Path | None = None
    try:
        host.send(host.datagrams(10), lis.port)
        lis.wait_records(10)
        filler = fill(small_fs)
        host.send(host.datagrams(40), lis.port)
        wait_for(lambda: metric(lis, "netconsole_held_records") >= 40, timeout=20)
    finally:
        status = lis.stop()
    assert status == 0, lis.stderr
    assert "40 records" in lis.stderr and "spool" in lis.stderr
    assert any(spool.iterdir())
    assert filler is not None
    filler.unlink()
    lis2 = Listener(tmp, db=lis.db)
    try:
        assert "40 records" in lis2.stderr  # it says what it replayed
        host.send(host.datagrams(5), lis2.port)
        lis2.wait_records(5)
    finally:
        assert lis2.stop() == 0
        host.close()
    assert _seqs(lis2, port) == list(range(1, 56))
    assert not any(spool.iterdir())


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_while_the_disk_is_full_and_nowhere_to_spool_exits_non_zero(
        tmp: Path, small_fs: Path, workers: int) -> None:
    lis = Listener(tmp, db=small_fs / "nc.db", workers=workers)
    host = FakeHost()
    filler: Path | None = None
    try:
        host.send(host.datagrams(10), lis.port)
        lis.wait_records(10)
        filler = fill(small_fs)
        host.send(host.datagrams(30), lis.port)
        wait_for(lambda: metric(lis, "netconsole_held_records") >= 30, timeout=20)
    finally:
        status = lis.stop()
        host.close()
        if filler is not None:
            with contextlib.suppress(OSError):
                filler.unlink()
    assert status != 0
    assert "lost 30 records" in lis.stderr, lis.stderr
    assert "Traceback" not in lis.stderr
