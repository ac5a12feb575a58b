"""`listen --forward` into a real rsyslog, and `listen --files` with the real logrotate.

rsyslogd is Debian's, started by the test on a loopback port with its own
configuration (tests/integration/rsyslog.py); what it wrote is what it
parsed: severity, hostname, app-name and the structured data (mmpstrucdata).
Every record the store holds must arrive, once, as the store has it.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from netconsole.collector import free_udp_port
from netconsole.outputs import SD_ID, safe_name
from netconsole.store import StoredRecord, open_reader
from netconsole.wire import OutgoingRecord, encode_extended
from tests.helpers import SCENARIOS, capture, udp_payloads
from tests.integration.listen_harness import FakeHost, Listener, wait_for
from tests.integration.rsyslog import RSYSLOGD, Rsyslog

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"

# Skipped on a developer's machine without them; CI installs them
# (tests/integration/ci-prepare.sh), so there a missing one fails.
needs_rsyslog = pytest.mark.skipif(
    shutil.which(RSYSLOGD) is None and not os.environ.get("CI"),
    reason="rsyslogd is not installed (tests/integration/ci-prepare.sh installs it)")

USERDATA = ((b"hostname", b"web-1"), (b"rack", b'r"1]\\x'), (b"odd key", b"v"))


def _userdata_records(host: FakeHost, n: int) -> list[bytes]:
    """An extended sender with userdata: a hostname and values RFC 5424 must escape."""
    out = []
    for _ in range(n):
        host.seq += 1
        out += encode_extended(OutgoingRecord(
            facility=0, level=host.seq % 8, seq=host.seq, ts_usec=5_000_000 + host.seq,
            text=b"userdata record %d" % host.seq, userdata=USERDATA,
            sysdata=((b"cpu", b"1"), (b"taskname", b"kworker/1:0"))))
    return out


def _send_captures(lis: Listener, second: int) -> int:
    """Every shipped capture from a sender of its own, the 6667 target to `second`;
    plus a sender with userdata. Returns how many datagrams went out."""
    sent = 0
    hosts = []
    for i, (kernel, scenario) in enumerate(SCENARIOS):
        host = FakeHost(f"127.0.171.{i + 1}")
        hosts.append(host)
        for k, (*_, dport, payload) in enumerate(udp_payloads(capture(kernel, scenario))):
            host.sock.sendto(payload, ("127.0.0.1", lis.port if dport == 6666 else second))
            sent += 1
            if k % 100 == 99:
                time.sleep(0.003)  # far below the socket buffer
    extra = FakeHost("127.0.171.200")
    hosts.append(extra)
    sent += extra.send(_userdata_records(extra, 300), lis.port)
    for h in hosts:
        h.close()
    return sent


def _stored(lis: Listener) -> list[StoredRecord]:
    with open_reader(lis.db) as r:
        return list(r.export())


def _expected(s: StoredRecord) -> tuple[Any, ...]:
    """What rsyslog should have parsed from a stored record."""
    r = s.record
    host = r.field(b"hostname")
    sd: dict[str, str] = {}
    if r.seq is not None:
        sd["seq"] = str(r.seq)
    sd["boot"] = str(s.boot)
    if r.kernel_release is not None:
        sd["release"] = r.kernel_release
    for key in ("cpu", "taskname", "msgid"):
        value = r.field(key.encode())
        if value is not None:
            sd[key] = value.decode()
    if not r.complete:
        sd["incomplete"] = "1"
    return (host.decode() if host else r.sender.host,
            str(r.level if r.level is not None else 6), str(r.facility or 0),
            r.text.decode("utf-8", "surrogateescape"),
            tuple(sorted((k, v) for k, v in sd.items())))


def _got(m: dict[str, Any]) -> tuple[Any, ...]:
    sd = m["parsed"]["rfc5424-sd"][SD_ID.lower()]
    own = {k: v for k, v in sd.items()
           if k in ("seq", "boot", "release", "cpu", "taskname", "msgid", "incomplete")}
    return (m["host"], m["severity"], m["facility"], m["msg"], tuple(sorted(own.items())))


@needs_rsyslog
def test_every_capture_record_reaches_rsyslog_over_tcp(tmp_path: Path) -> None:
    rs = Rsyslog(tmp_path)
    second = free_udp_port()
    lis = Listener(tmp_path, "-p", str(second), "--forward", f"syslog+tcp://127.0.0.1:{rs.port}")
    try:
        sent = _send_captures(lis, second)
        wait_for(lambda: lis.metrics()["netconsole_datagrams_total"] >= sent, 60)
        assert lis.stop() == 0  # flushes every stream, then the forwarder's queue
        stored = _stored(lis)
        wait_for(lambda: len(rs.messages()) >= len(stored), 30)
    finally:
        lis.stop()
        rs.stop()
    assert "not forwarded" not in lis.stderr
    got = rs.messages()
    assert len(stored) > 25_000
    assert Counter(_got(m) for m in got) == Counter(_expected(s) for s in stored)
    # The userdata sender: its hostname= is the HOSTNAME, its values came through escaping.
    web = [m for m in got if m["host"] == "web-1"]
    assert len(web) == 300
    sd = web[0]["parsed"]["rfc5424-sd"][SD_ID.lower()]
    assert sd["rack"] == 'r"1]\\x' and sd["odd_key"] == "v" and sd["hostname"] == "web-1"
    # The timestamp is when the record was received.
    first = next(s for s in stored if s.record.field(b"hostname") == b"web-1")
    when = datetime.datetime.fromisoformat(web[0]["time"]).timestamp()
    assert abs(when - first.record.received) < 1e-3


@needs_rsyslog
def test_records_reach_rsyslog_over_udp(tmp_path: Path) -> None:
    rs = Rsyslog(tmp_path)
    lis = Listener(tmp_path, "--forward", f"syslog+udp://127.0.0.1:{rs.port}")
    host = FakeHost("127.0.172.1")
    try:
        payloads = [p for *_, dport, p in udp_payloads(capture("7.2.13+deb14-amd64", "extended"))
                    if dport == 6666]
        for i in range(0, len(payloads), 50):
            host.send(payloads[i:i + 50], lis.port)
            time.sleep(0.01)
        host.send(_userdata_records(host, 20), lis.port)
        wait_for(lambda: lis.metrics()["netconsole_datagrams_total"] >= len(payloads) + 20)
        assert lis.stop() == 0
        stored = _stored(lis)
        wait_for(lambda: len(rs.messages()) >= len(stored), 30)
    finally:
        lis.stop()
        host.close()
        rs.stop()
    assert len(stored) == 417
    assert Counter(_got(m) for m in rs.messages()) == Counter(_expected(s) for s in stored)


@needs_rsyslog
def test_tcp_loses_nothing_when_rsyslog_restarts_mid_load(tmp_path: Path) -> None:
    rs = Rsyslog(tmp_path)
    lis = Listener(tmp_path, "--forward", f"syslog+tcp://127.0.0.1:{rs.port}")
    host = FakeHost("127.0.172.2")
    total = 6000
    sent = [0]

    def send() -> None:
        for _ in range(total // 50):
            sent[0] += host.send(host.datagrams(50), lis.port)
            time.sleep(0.01)

    sender = threading.Thread(target=send)
    try:
        sender.start()
        wait_for(lambda: len(rs.messages()) >= 1000, 30)
        rs.stop()  # mid-load: records keep coming
        at_stop = sent[0]
        wait_for(lambda: sent[0] >= at_stop + 1000, 30)
        rs.start()  # the same port, the same output file
        sender.join()
        lis.wait_records(total)
        wait_for(lambda: {m["parsed"]["rfc5424-sd"][SD_ID.lower()]["seq"]
                          for m in rs.messages()} >= {str(i) for i in range(1, total + 1)}, 60)
        label = f'output="syslog+tcp://127.0.0.1:{rs.port}"'
        reconnects = f"netconsole_output_reconnects_total{{{label}}}"
        wait_for(lambda: lis.metrics()[reconnects] >= 1)  # reported once a second
        metrics = lis.metrics()
    finally:
        sender.join()
        assert lis.stop() == 0
        host.close()
        rs.stop()
    assert at_stop < total  # it was stopped while records still came
    assert metrics[f"netconsole_output_records_total{{outcome=\"dropped\",{label}}}"] == 0
    # At least once: what was in flight when rsyslog stopped may come twice, nothing less.
    texts = Counter(m["msg"] for m in rs.messages())
    assert set(texts) == {f"message {i}" for i in range(1, total + 1)}


# -- --files ------------------------------------------------------------------------------


def _today() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def _hostile_records(host: FakeHost, name: bytes, n: int, first_seq: int = 1) -> list[bytes]:
    out = []
    for seq in range(first_seq, first_seq + n):
        out += encode_extended(OutgoingRecord(
            facility=0, level=4, seq=seq, ts_usec=1_000_000 * seq + 42,
            text=b"line %d of \x1b[31mthis\nsecond line" % seq,
            userdata=((b"hostname", name),)))
    return out


def test_files_one_per_host_and_day_never_truncated(tmp_path: Path) -> None:
    out = tmp_path / "logs"
    lis = Listener(tmp_path, "--files", str(out))
    evil = FakeHost("127.0.173.1")
    plain = FakeHost("127.0.173.2")
    try:
        evil.send(_hostile_records(evil, b"../../etc/x\x07" + b"y" * 300, 5), lis.port)
        plain.send(plain.datagrams(3), lis.port)
        plain.seq += 10  # ten records never sent: a loss mark
        plain.send(plain.datagrams(2), lis.port)
        lis.wait_records(10)
    finally:
        assert lis.stop() == 0
    names = sorted(p.name for p in out.iterdir())
    evil_dir = safe_name("../../etc/x\x07" + "y" * 300)
    assert names == sorted([evil_dir, "127.0.173.2"])
    assert evil_dir.startswith("_") and "/" not in evil_dir and len(evil_dir) <= 64
    assert sorted(p.name for p in (tmp_path).iterdir() if p.name == "etc") == []
    day = _today()
    evil_log = (out / evil_dir / f"{day}.log").read_text()
    assert evil_log.splitlines()[:2] == ["[    1.000042] line 1 of \\x1b[31mthis",
                                         "[    1.000042] second line"]
    plain_lines = (out / "127.0.173.2" / f"{day}.log").read_text().splitlines()
    # The loss is marked when the stream gives up waiting for the missing records.
    assert plain_lines == [
        "[    1.000001] message 1", "[    1.000002] message 2", "[    1.000003] message 3",
        "[    1.000014] message 14", "[    1.000015] message 15",
        "--- netconsole: 10 records lost (seq 4-13) ---"]
    # A restart appends: nothing written before is lost.
    lis = Listener(tmp_path, "--files", str(out), db=lis.db)
    try:
        plain.send(plain.datagrams(1), lis.port)
        lis.wait_records(1)
    finally:
        assert lis.stop() == 0
        evil.close()
        plain.close()
    again = (out / "127.0.173.2" / f"{day}.log").read_text().splitlines()
    assert again[:6] == plain_lines and again[6:] == ["[    1.000016] message 16"]


def test_contrib_logrotate_snippet_with_sighup(tmp_path: Path) -> None:
    """contrib/netconsole.logrotate as shipped, but for its path and reload command,
    run by the real logrotate: the file is rotated, SIGHUP makes listen write a new
    one at the path, and no record is lost between them."""
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not Path(logrotate).exists() and not os.environ.get("CI"):
        pytest.skip("logrotate is not installed (tests/integration/ci-prepare.sh installs it)")
    out = tmp_path / "logs"
    lis = Listener(tmp_path, "--files", str(out))
    host = FakeHost("127.0.173.3")
    snippet = (CONTRIB / "netconsole.logrotate").read_text()
    assert "/var/log/netconsole/*/*.log" in snippet
    assert "systemctl reload netconsole-listen.service" in snippet
    conf = tmp_path / "logrotate.conf"
    conf.write_text(snippet.replace("/var/log/netconsole/", f"{out}/").replace(
        "systemctl reload netconsole-listen.service", f"kill -HUP {lis.proc.pid}"))
    log = out / "127.0.173.3" / f"{_today()}.log"
    try:
        host.send(host.datagrams(5), lis.port)
        lis.wait_records(5)
        wait_for(lambda: log.exists() and len(log.read_text().splitlines()) == 5)
        subprocess.run([logrotate, "--force", "--state", str(tmp_path / "state"), str(conf)],
                       check=True, timeout=60, capture_output=True)
        rotated = log.with_name(log.name + ".1")
        assert rotated.exists() and len(rotated.read_text().splitlines()) == 5
        # The SIGHUP reached listen: it writes a new file at the path.
        deadline = time.monotonic() + 20
        while not log.exists():  # records sent until listen has reopened
            assert time.monotonic() < deadline
            host.send(host.datagrams(1), lis.port)
            time.sleep(0.1)
        n = host.seq
        lis.wait_records(n)
        wait_for(lambda: len(log.read_text().splitlines())
                 + len(rotated.read_text().splitlines()) == n)
    finally:
        assert lis.stop() == 0
        host.close()
    lines = rotated.read_text().splitlines() + log.read_text().splitlines()
    assert lines == [f"[    1.{i:06d}] message {i}" for i in range(1, n + 1)]


def test_a_dead_syslog_server_never_stalls_receiving(tmp_path: Path) -> None:
    """Nothing listens at the target: every record is stored all the same, the
    forwarder's queue holds them, and at shutdown it says how many it could not send."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again: connections are refused
    lis = Listener(tmp_path, "--forward", f"syslog+tcp://127.0.0.1:{dead}")
    host = FakeHost("127.0.173.4")
    label = f'output="syslog+tcp://127.0.0.1:{dead}"'
    try:
        host.send(host.datagrams(500), lis.port)
        lis.wait_records(500)
        wait_for(lambda: lis.metrics().get(f"netconsole_output_queued{{{label}}}") == 500)
        assert lis.metrics()[f'netconsole_output_records_total{{outcome="dropped",{label}}}'] == 0
    finally:
        assert lis.stop() == 0  # the store has every record: not a failure of listen
        host.close()
    assert len(lis.records()) == 500
    assert "500 records not forwarded at shutdown" in lis.stderr
