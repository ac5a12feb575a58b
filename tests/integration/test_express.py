"""The C express lane stores exactly what the all-Python path stores.

Two real `netconsole listen` processes, one with the express lane and one
with NETCONSOLE_EXPRESS=0, get the same traffic over loopback: every shipped
kernel capture (basic, extended, fragments, sysdata msgid/release, crash
reports, panics), each from its own source address, plus synthetic senders
that exercise what the lane must hand over (gaps, holes filled late or
reaching the window's end, duplicates, reordering,
reboots, escapes, pstore, incidents). Their databases must hold the same
records, hosts, events and incidents, field for field (times aside).
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from netconsole.collector import free_udp_port
from netconsole.collector._express import available
from netconsole.wire import OutgoingRecord, encode_extended
from tests.helpers import SCENARIOS, capture, udp_payloads
from tests.integration.listen_harness import FakeHost, Listener

pytestmark = pytest.mark.skipif(not available(), reason="the C express lane is not built")

PER_CAPTURE = 1500


def _record(seq: int, text: bytes, **kw: Any) -> list[bytes]:
    return encode_extended(OutgoingRecord(facility=0, level=kw.pop("level", 6), seq=seq,
                                          ts_usec=kw.pop("ts", 1_000_000 + seq * 10), text=text,
                                          **kw))


def synthetic() -> list[list[bytes]]:
    """Per synthetic sender, its datagrams in sending order."""
    host = ((b"hostname", b"web-1"),)
    plain = []  # mostly the lane's case, with everything it must hand over mixed in
    for seq in range(1, 400):
        if seq in (50, 51, 52):
            continue  # a gap
        text = b"eth0: link up %d" % seq
        kw: dict[str, Any] = {"userdata": host}
        if seq % 37 == 0:
            text = b"tab\there and a backslash \\ and \xc3\xa9"  # escaped on the wire
        if seq % 41 == 0:
            kw["caller"] = f"T{seq}"
        if seq % 53 == 0:
            text = b"long " * 300  # fragmented
        if seq == 120:
            text = b"BUG: kernel NULL pointer dereference, address: 0000000000000008"
        if seq in (121, 122):
            text = b"RIP: 0010:foo+0x1/0x2"
        if seq == 200:
            kw["userdata"] = ((b"hostname", b"web-1"), (b"pstore", b"1"))
        if seq == 250:
            kw["userdata"] = ((b"hostname", b"web-2"),)  # renamed
        dg = _record(seq, text, **kw)
        plain.extend(dg)
        if seq % 29 == 0:
            plain.extend(dg)  # a duplicate
    plain[300], plain[301] = plain[301], plain[300]  # reordered

    msgid = []  # 6.17+ sysdata: msgid, with a msgid gap and the release as sysdata
    n = 0
    for seq in range(1, 300):
        n += 2 if seq == 100 else 1
        msgid += _record(seq, b"sysdata %d" % seq, sysdata=(
            (b"cpu", b"%d" % (seq % 4)), (b"taskname", b"kworker/0:1"),
            (b"release", b"6.17.0"), (b"msgid", b"%d" % n)))

    lossy = []  # a receiver that dropped datagrams: seq and msgid holes, a few filled late
    late = []
    for seq in range(1, 2600):
        dg = _record(seq, b"lossy %d" % seq, sysdata=((b"msgid", b"%d" % seq),))
        if seq % 97 in (0, 1) or 1500 <= seq < 1503:  # 1500: no late arrival, 1,100 after
            if seq % 194 == 0:
                late.append(dg)
            continue
        lossy += dg
        if late and seq % 97 == 5:
            lossy += late.pop()

    reboots = []  # header release; then time back, seq back, a new release
    for seq in range(1, 151):
        reboots += _record(seq, b"boot one %d" % seq, release="6.12.0", ts=60_000_000 + seq)
    for seq in range(151, 201):  # a minute earlier: a new boot
        reboots += _record(seq, b"boot two %d" % seq, release="6.12.0", ts=1000 + seq)
    for seq in [*range(3000, 3051), *range(1, 51)]:  # a gap, then far below: a new boot
        reboots += _record(seq, b"boot three %d" % seq, release="6.12.0", ts=2000 + seq)
    for seq in range(51, 101):
        reboots += _record(seq, b"boot four %d" % seq, release="6.13.0", ts=3000 + seq)
    return [plain, msgid, lossy, reboots]


TWO_PORTS = 1000  # a sender index past this: the same host, to the listener's second port


def _traffic() -> list[tuple[int, bytes]]:
    """(sender index, payload), senders interleaved round-robin."""
    streams = []
    for kernel, scenario in SCENARIOS:
        payloads = [p for *_, dport, p in udp_payloads(capture(kernel, scenario))
                    if dport == 6666]
        streams.append(payloads[:PER_CAPTURE])
    streams += synthetic()
    # One host's second target, on another port: another stream, same source.
    streams.append([d for seq in range(1, 200) for d in _record(seq + 70, b"second target")])
    out: list[tuple[int, bytes]] = []
    pos = [0] * len(streams)
    while any(pos[i] < len(s) for i, s in enumerate(streams)):
        for i, s in enumerate(streams):
            for _ in range(7):  # a few at a time, like a chatty host
                if pos[i] < len(s):
                    sender = TWO_PORTS + len(streams) - 2 if i == len(streams) - 1 else i
                    out.append((sender, s[pos[i]]))
                    pos[i] += 1
    return out


def _run(tmp: Path, traffic: list[tuple[int, bytes]], senders: int) -> Listener:
    second = free_udp_port()
    lis = Listener(tmp, "-p", str(second))
    hosts = [FakeHost(f"127.0.3.{i + 1}", 6665) for i in range(senders)]
    try:
        for k, (i, payload) in enumerate(traffic):
            if i >= TWO_PORTS:
                hosts[i - TWO_PORTS].sock.sendto(payload, ("127.0.0.1", second))
            else:
                hosts[i].sock.sendto(payload, ("127.0.0.1", lis.port))
            if k % 100 == 99:
                time.sleep(0.003)  # stay far below the socket buffer
        deadline = time.monotonic() + 20
        while lis.metrics().get("netconsole_datagrams_total", 0) < len(traffic):
            assert time.monotonic() < deadline, lis.metrics()
            time.sleep(0.05)
        lis.metrics_seen = lis.metrics()  # type: ignore[attr-defined]
    finally:
        assert lis.stop() == 0
        for h in hosts:
            h.close()
    return lis


def _contents(db: Path, main: int) -> dict[str, list[tuple[Any, ...]]]:
    """The database's contents, times and the listener's own ports aside
    (`:main` marks the stream that came to the first port)."""
    conn = sqlite3.connect(db)
    try:
        return {
            "records": conn.execute(
                "SELECT h.address, h.local_port = :main, r.mode, r.release, r.facility,"
                " r.level, r.seq, r.ts_usec, r.flag, r.caller, r.text, r.text_raw, r.fields,"
                " r.header_extra, r.msgid,"
                " r.cpu, r.taskname, r.complete, r.missing, r.boot, typeof(r.release),"
                " typeof(r.caller), typeof(r.msgid), typeof(r.cpu), typeof(r.taskname),"
                " typeof(r.fields) FROM records r JOIN hosts h ON h.id = r.host_id"
                # Two sockets: records are in order per stream, not across streams.
                " ORDER BY 1, 2, r.id", {"main": main}).fetchall(),
            "fts": conn.execute(
                "SELECT h.address, h.local_port = :main, r.seq"
                " FROM records_fts f JOIN records r"
                " ON r.id = f.rowid JOIN hosts h ON h.id = r.host_id"
                " WHERE records_fts MATCH 'link OR sysdata OR target' ORDER BY 1, 2, r.id",
                {"main": main}).fetchall(),
            "hosts": conn.execute(
                "SELECT address, port, local_port = :main, name,"
                " release, records, lost_seq, lost_msgid, dropped, duplicates, reboots,"
                " incomplete, rejected, boot FROM hosts ORDER BY address, 3",
                {"main": main}).fetchall(),
            "events": conn.execute(
                "SELECT h.address, h.local_port = :main, e.kind,"
                " e.detail FROM events e JOIN hosts h ON h.id = e.host_id"
                " WHERE e.kind != 'silence' ORDER BY 1, 2, e.id", {"main": main}).fetchall(),
            "incidents": conn.execute(
                "SELECT h.address, i.kind, i.title, i.fingerprint, i.first_seq, i.last_seq,"
                " i.lines, i.count, i.boot, i.state FROM incidents i JOIN hosts h"
                " ON h.id = i.host_id ORDER BY h.address, i.key").fetchall(),
        }
    finally:
        conn.close()


def test_express_lane_stores_what_the_python_path_stores(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    traffic = _traffic()
    senders = 1 + max(i for i, _ in traffic if i < TWO_PORTS)
    (tmp_path / "express").mkdir()
    (tmp_path / "python").mkdir()
    fast = _run(tmp_path / "express", traffic, senders)
    monkeypatch.setenv("NETCONSOLE_EXPRESS", "0")
    slow = _run(tmp_path / "python", traffic, senders)

    took = fast.metrics_seen["netconsole_express_records_total"]  # type: ignore[attr-defined]
    stored = fast.metrics_seen["netconsole_stored_records_total"]  # type: ignore[attr-defined]
    assert took > stored / 5, "the lane took too little to be tested here"
    assert slow.metrics_seen["netconsole_express_records_total"] == 0  # type: ignore[attr-defined]

    a, b = _contents(fast.db, fast.port), _contents(slow.db, slow.port)
    for table in a:
        assert len(a[table]) == len(b[table]), table
        for i, (x, y) in enumerate(zip(a[table], b[table], strict=True)):
            assert x == y, (table, i)
    assert len(a["records"]) > 5000
    assert {e[2] for e in a["events"]} >= {"gap", "reboot"}
    assert a["incidents"]
    # The JSON lines (shown records) agree too, times aside.
    assert _shown(fast.jsonl, fast.port) == _shown(slow.jsonl, slow.port)


def _shown(path: Path, main: int) -> dict[tuple[str, bool], list[str]]:
    """The JSON lines of each stream, in order, times and ports aside."""
    out: dict[tuple[str, bool], list[str]] = {}
    for line in path.read_text().splitlines():
        obj = json.loads(line)
        obj.pop("received", None)
        stream = (obj["host"], obj.pop("local_port") == main)
        out.setdefault(stream, []).append(json.dumps(obj, sort_keys=True))
    return out


def _burst(lis: Listener, host: FakeHost, seqs: range, text: bytes) -> None:
    """Send `seqs` while the receiver is stopped (SIGSTOP), so that all of them
    wait in its socket before it takes the first: a burst, whatever the timing."""
    lis.proc.send_signal(signal.SIGSTOP)
    try:
        for seq in seqs:
            for d in _record(seq, text + b" %d" % seq):
                host.sock.sendto(d, ("127.0.0.1", lis.port))
    finally:
        lis.proc.send_signal(signal.SIGCONT)


def _received(lis: Listener, total: int) -> dict[str, float]:
    deadline = time.monotonic() + 20
    while (m := lis.metrics()).get("netconsole_datagrams_total", 0) < total:
        assert time.monotonic() < deadline, m
        time.sleep(0.05)
    return m


def test_lane_takes_a_new_senders_burst_and_after_a_restart(tmp_path: Path) -> None:
    """The lane engages from a sender's second record: not after the first
    commit, which a burst (or every sender right after a restart) never waits for."""
    host = FakeHost("127.0.4.1", 6665)
    lis = Listener(tmp_path)
    try:
        _burst(lis, host, range(1, 1000), b"link up")
        # A reboot inside the next burst: the lane goes on with the new boot.
        _burst(lis, host, range(1000, 1100), b"before")
        _burst(lis, host, range(1, 400), b"after reboot")
        m = _received(lis, 999 + 100 + 399)
        # Everything but the first record, and the one that made the reboot.
        assert m["netconsole_express_records_total"] == 999 + 100 + 399 - 2, m
    finally:
        assert lis.stop() == 0
    lis = Listener(tmp_path, db=lis.db, port=lis.port)  # a restart: the host is known
    try:
        _burst(lis, host, range(400, 900), b"resumed")
        m = _received(lis, 500)
        assert m["netconsole_express_records_total"] == 499, m
    finally:
        assert lis.stop() == 0
        host.close()
    conn = sqlite3.connect(lis.db)
    try:
        assert conn.execute(
            "SELECT records, lost_seq, duplicates, reboots, boot FROM hosts").fetchall() == [
                (999 + 100 + 399 + 500, 0, 0, 1, 1)]
        boots = conn.execute("SELECT boot, count(*), min(seq), max(seq) FROM records"
                             " GROUP BY boot ORDER BY boot").fetchall()
        assert boots == [(0, 1099, 1, 1099), (1, 899, 1, 899)]
    finally:
        conn.close()
