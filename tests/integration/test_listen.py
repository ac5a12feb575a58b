"""`netconsole listen` end to end: real processes, real UDP on loopback, real SQLite."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netconsole.store import open_reader
from tests.helpers import capture, udp_payloads
from tests.integration.listen_harness import FakeHost, Listener, wait_for


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def test_listen_stores_a_real_kernel_capture(tmp: Path) -> None:
    lis = Listener(tmp)
    host = FakeHost()
    try:
        payloads = [p for *_, dport, p in udp_payloads(capture("7.2.13+deb14-amd64", "sysdata"))
                    if dport == 6666]
        host.send(payloads, lis.port)
        lis.wait_records(1029)
        assert lis.get("/api/v1/seen?nonce=first%20message%20with%20sysdata")["seen"] is True
        assert lis.get("/api/v1/seen?nonce=not-a-thing-sent")["seen"] is False
    finally:
        assert lis.stop() == 0
        host.close()
    recs = lis.records()
    assert len(recs) == 1029
    assert [r.msgid for r in recs[:3]] == [1, 2, 3]
    m_lines = lis.jsonl.read_text().splitlines()
    assert len(m_lines) == 1029


def test_listen_many_senders_two_workers(tmp: Path) -> None:
    lis = Listener(tmp, workers=2)
    hosts = [FakeHost(f"127.0.{i // 200}.{i % 200 + 2}", 6665) for i in range(300)]
    try:
        for _round in range(5):
            for h in hosts:
                h.send(h.datagrams(2), lis.port)
        lis.wait_records(3000)
        metrics = lis.metrics()
        assert metrics["netconsole_workers"] == 2
    finally:
        assert lis.stop() == 0
        for h in hosts:
            h.close()
    recs = lis.records()
    assert len(recs) == 3000
    assert len({r.sender.host for r in recs}) == 300
    with open_reader(lis.db) as r:
        infos = r.hosts(now=time.time())
    assert all(i.records == 10 and i.lost_seq == 0 for i in infos)


def test_listen_fragments_out_of_order_loss_and_duplicates(tmp: Path) -> None:
    lis = Listener(tmp)
    host = FakeHost()
    rnd = random.Random(7)
    try:
        sent = []
        for seq in range(1, 41):
            host.seq = seq - 1
            dgs = list(host.datagrams(1, text=b"long record %d " + b"x" * 2500))
            sent.append(dgs)
        wire: list[bytes] = []
        for seq, dgs in enumerate(sent, 1):
            if seq in (10, 20):
                continue  # lost entirely: a seq gap
            if seq == 30:
                dgs = dgs[:-1]  # lost its last fragment: incomplete
            rnd.shuffle(dgs)
            # the first fragment again, after the record completed: a duplicate
            wire += dgs + [d for d in dgs if b"ncfrag=0/" in d] if seq % 7 == 0 else dgs
        host.send(wire, lis.port)
        host.send(list(host.datagrams(1)) * 2, lis.port)  # a duplicated record
        lis.wait_records(39)
        time.sleep(2.0)
    finally:
        assert lis.stop() == 0
        host.close()
    recs = lis.records()
    by_seq = {r.seq: r for r in recs}
    assert sorted(by_seq) == [s for s in range(1, 42) if s not in (10, 20)]
    assert not by_seq[30].complete and by_seq[30].missing
    assert all(r.complete for s, r in by_seq.items() if s != 30)
    assert by_seq[5].text == b"long record 5 " + b"x" * 2500
    with open_reader(lis.db) as r:
        [info] = r.hosts(now=time.time())
    assert (info.lost_seq, info.incomplete, info.duplicates) == (2, 1, 6)


def test_listen_ipv6_sender(tmp: Path) -> None:
    lis = Listener(tmp)
    host = FakeHost("::1", 0)
    try:
        host.send(host.datagrams(5), lis.port)
        lis.wait_records(5)
    finally:
        lis.stop()
        host.close()
    assert {r.sender.host for r in lis.records()} == {"::1"}


def test_listen_allow_drops_and_counts_others(tmp: Path) -> None:
    lis = Listener(tmp, "--allow", "127.0.0.5/32")
    good, bad = FakeHost("127.0.0.5"), FakeHost("127.0.0.6")
    try:
        bad.send(bad.datagrams(7), lis.port)
        good.send(good.datagrams(3), lis.port)
        lis.wait_records(3)
        wait_for(lambda: lis.metrics().get(
            'netconsole_rejected_datagrams_total{reason="not_allowed"}', 0) == 7)
    finally:
        lis.stop()
        good.close()
        bad.close()
    assert {r.sender.host for r in lis.records()} == {"127.0.0.5"}


def test_listen_kill_9_loses_nothing_it_reported(tmp: Path) -> None:
    lis = Listener(tmp, workers=2)
    hosts = [FakeHost(f"127.0.1.{i + 2}", 6665) for i in range(20)]
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            for h in hosts:
                h.send(h.datagrams(20), lis.port)
        lis.kill_all()  # mid-load: supervisor and workers at once
    finally:
        for h in hosts:
            h.close()
    reported = lis.jsonl.read_text().splitlines()
    complete = [line for line in reported if line.endswith("}")]
    stored = lis.records()
    assert len(complete) > 1000
    assert len(stored) >= len(complete)
    stored_keys = {(r.sender.host, r.seq) for r in stored}
    for line in complete:
        o = json.loads(line)
        assert (o["host"], o["seq"]) in stored_keys


def _one_host_accounting(db: Path) -> tuple[int, int, int, int, list[str]]:
    """The only host's records, lost_seq, reboots, duplicates, and the event kinds."""
    with open_reader(db) as r:
        [info] = r.hosts(now=time.time())
        kinds = [e.kind for e in r.events()]
    return info.records, info.lost_seq, info.reboots, info.duplicates, kinds


def test_listen_restart_has_no_false_gaps_or_reboots(tmp: Path) -> None:
    host = FakeHost("127.0.0.9", 6665)
    lis = Listener(tmp)
    host.send(host.datagrams(50), lis.port)
    lis.wait_records(50)
    assert lis.stop() == 0
    lis2 = Listener(tmp, db=lis.db, port=lis.port)
    try:
        host.send(host.datagrams(50), lis2.port)
        lis2.wait_records(50)
    finally:
        assert lis2.stop() == 0
        host.close()
    assert _one_host_accounting(lis.db) == (100, 0, 0, 0, [])


def test_listen_restart_after_kill_9_has_no_false_gaps_or_reboots(tmp: Path) -> None:
    """Stream states are saved now and then, records with every batch: after a
    `kill -9` the restart replays the stored records onto the saved state, so
    the stream goes on where the store ends (a fresh stream would miss this
    host's reboot: its seq 1 would be just a first record)."""
    host = FakeHost("127.0.0.9", 6665)
    lis = Listener(tmp)
    host.send(host.datagrams(50), lis.port)
    lis.wait_records(50)
    lis.kill_all()
    last_sent = time.monotonic()
    lis2 = Listener(tmp, db=lis.db, port=lis.port)
    try:
        time.sleep(max(0.0, last_sent + 1.5 - time.monotonic()))  # a reboot takes a while
        host.seq = 0  # the host rebooted while the receiver was down
        host.send(host.datagrams(30), lis2.port)
        lis2.wait_records(30)
    finally:
        assert lis2.stop() == 0
        host.close()
    assert _one_host_accounting(lis.db) == (80, 0, 1, 0, ["reboot"])


def test_listen_sighup_reopens_jsonl_and_keeps_running(tmp: Path) -> None:
    cfg = tmp / "listen.toml"
    cfg.write_text("[listen]\nallow = [\"127.0.0.0/8\"]\n")
    lis = Listener(tmp, "--config", str(cfg))
    host = FakeHost()
    try:
        host.send(host.datagrams(3), lis.port)
        lis.wait_records(3)
        lis.jsonl.rename(tmp / "rotated.jsonl")
        cfg.write_text("[listen]\nallow = [\"10.0.0.0/8\"]\n")  # now 127/8 is refused
        lis.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert lis.proc.poll() is None
        host.send(host.datagrams(4), lis.port)
        wait_for(lambda: lis.metrics().get(
            'netconsole_rejected_datagrams_total{reason="not_allowed"}', 0) == 4)
        cfg.write_text("[listen]\n")
        lis.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        host.send(host.datagrams(2), lis.port)
        lis.wait_records(5)
    finally:
        assert lis.stop() == 0
        host.close()
    assert len((tmp / "rotated.jsonl").read_text().splitlines()) == 3
    assert len(lis.jsonl.read_text().splitlines()) == 2


def test_listen_refuses_a_port_in_use(tmp: Path) -> None:
    lis = Listener(tmp)
    try:
        with pytest.raises(RuntimeError, match="already in use"):
            Listener(tmp / "..", port=lis.port, db=tmp / "other.db")
    finally:
        lis.stop()


def test_listen_print_config_merges_file_and_options(tmp: Path) -> None:
    cfg = tmp / "c.toml"
    cfg.write_text("[listen]\nports = [6666, 6667]\nretain = \"30d\"\nquiet = true\n")
    out = subprocess.run([sys.executable, "-m", "netconsole", "listen", "-c", str(cfg),
                          "--retain", "7d", "--print-config"], capture_output=True, text=True,
                         check=True).stdout
    assert "ports = [6666, 6667]" in out and 'retain = "7d"' in out and "quiet = true" in out
    bad = subprocess.run([sys.executable, "-m", "netconsole", "listen", "--allow", "nonsense",
                          "--print-config"], capture_output=True, text=True)
    assert bad.returncode == 2 and "CIDR" in bad.stderr



def test_listen_workers_die_with_their_supervisor(tmp: Path) -> None:
    import os
    lis = Listener(tmp, workers=2)
    children = [int(p) for p in
                Path(f"/proc/{lis.proc.pid}/task/{lis.proc.pid}/children").read_text().split()]
    assert len(children) == 2
    os.kill(lis.proc.pid, signal.SIGKILL)  # only the supervisor
    lis.proc.wait(timeout=10)
    wait_for(lambda: not any(Path(f"/proc/{c}").exists() for c in children))


def test_listen_retention_deletes_old_records(tmp: Path) -> None:
    lis = Listener(tmp, "--retain", "2s")
    host = FakeHost()
    try:
        host.send(host.datagrams(20), lis.port)
        lis.wait_records(20)
        # the first pass runs 5 s after start; records are then older than 2 s
        wait_for(lambda: len(lis.records()) == 0, timeout=20)
    finally:
        lis.stop()
        host.close()
