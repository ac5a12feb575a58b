"""Many receivers, one ClickHouse: real `netconsole listen` processes on a real cluster.

Two receivers share one UDP port on two loopback addresses (127.0.0.1 and
127.0.0.2), as two machines behind one ECMP address do: a sender keeps its
stream identity (address, port, local port) whichever receiver gets it. They
write to two ClickHouse servers, the two shards of one cluster.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netconsole.collector import free_udp_port
from netconsole.store import open_reader
from netconsole.wire import OutgoingRecord, encode_extended
from tests.integration.clickhouse.fleet import fleet_senders
from tests.integration.clickhouse.proxy import LossyRelay
from tests.integration.clickhouse.server import Cluster
from tests.integration.listen_harness import Listener

RECEIVERS = ("127.0.0.1", "127.0.0.2")
NET = 20 + os.getpid() % 200
"""The second octet of the senders' loopback addresses (their ports are fixed,
as netconsole's): another test run on the machine uses others."""
ARGS = ("--sender-budget", "0")  # nothing shed: both runs must store the same


def _receivers(tmp: Path, port: int, **where: Any) -> list[Listener]:
    out = []
    for i, address in enumerate(RECEIVERS):
        home = tmp / f"receiver{i}"
        home.mkdir(parents=True, exist_ok=True)
        store = where.get("store")
        if store is not None:
            store += f"&spool={home}"
        out.append(Listener(home, "-b", address, *ARGS, port=port, db=where.get("db"),
                            store=store))
    return out


def _stop(listeners: list[Listener]) -> None:
    for lis in listeners:
        assert lis.stop() == 0, lis.stderr


def _settled(listeners: list[Listener], timeout: float = 60) -> int:
    """Wait until every receiver has stored what it took and holds nothing; the
    records stored in all."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while True:
        metrics = [lis.metrics() for lis in listeners]
        stored = sum(m.get("netconsole_stored_records_total", 0) for m in metrics)
        held = sum(m.get("netconsole_held_records", 0) for m in metrics)
        if stored != last or held:
            last, since = stored, time.monotonic()
        elif time.monotonic() - since > 1.5:
            drops = sum(m.get("netconsole_kernel_drops_total", 0) for m in metrics)
            assert not drops, "a receiver dropped datagrams: the machine is too busy"
            return int(stored)
        assert time.monotonic() < deadline, f"not settled: {metrics}"
        time.sleep(0.1)


def _send(port: int, copies: int) -> int:
    """Every fleet host's datagrams, hosts split over the two receivers, interleaved."""
    hosts = []
    for i, (address, payloads) in enumerate(fleet_senders(copies, NET)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((address, 6665))
        hosts.append((sock, RECEIVERS[i % 2], iter(payloads)))
    sent = 0
    try:
        while hosts:
            for host in list(hosts):
                sock, target, payloads = host
                for _ in range(10):
                    payload = next(payloads, None)
                    if payload is None:
                        hosts.remove(host)
                        break
                    sock.sendto(payload, (target, port))
                    sent += 1
            time.sleep(0.005)  # the kernel's pace, well under the receive buffers
    finally:
        for sock, *_ in hosts:
            sock.close()
    return sent


def _cli(*args: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "netconsole", *args], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout.strip()
    if not text:
        return []
    try:
        return json.loads(text)
    except ValueError:
        return [json.loads(line) for line in text.splitlines()]


_TIMES = {"id", "received", "first_seen", "last_seen", "last_record", "first_received",
          "last_received", "updated_at", "closed_at", "first_record_id", "last_record_id",
          "key", "first", "last", "latest_id"}
"""What differs between two runs of the same traffic: receive times (and what is
made of them: incident keys), and ids."""


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in _TIMES}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _by_host(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Each host's records in order (hosts interleave differently on each run)."""
    out: dict[str, list[Any]] = {}
    for r in _plain(records):
        out.setdefault(f"{r['host']}:{r['port']}", []).append(r)
    return out


def _answers(target: str) -> dict[str, Any]:
    """Every reader command's output, as JSON, without times and ids."""
    out: dict[str, Any] = {
        "hosts": _plain(_cli("hosts", "--json", "--db", target)),
        "machines": _plain(_cli("hosts", "--machines", "--json", "--db", target)),
        "tail": _by_host(_cli("tail", "-n", "100000", "--json", "--db", target)),
        "tail-host": _plain(_cli("tail", "-n", "40", "--host", f"127.{NET}.11.12", "--json",
                                 "--db", target)),
        "tail-level": _by_host(_cli("tail", "-n", "100000", "--level", "err", "--json",
                                    "--db", target)),
        "export": _by_host(_cli("export", "--db", target)),
        "search": _by_host(_cli("search", "Call", "Trace", "-n", "100000", "--json",
                                "--db", target)),
        "search-host": _plain(_cli("search", "labtrig", "--host", f"127.{NET}.10.11", "-n", "5",
                                   "--json", "--db", target)),
        # Groups as many are ordered by last time, which differs between two runs;
        # SQLite lists up to five host names in no particular order.
        "top": sorted(({**g, "host_names": sorted(g["host_names"])} for g in _plain(
            _cli("incidents", "top", "--json", "--db", target))), key=lambda g: g["fingerprint"]),
        "silences": _plain(_cli("incidents", "silences", "--json", "--db", target)),
    }
    incidents = _cli("incidents", "-n", "1000", "--json", "--db", target)
    shown = [_cli("incidents", "show", str(i["id"]), "--json", "--db", target)
             for i in incidents]
    assert _plain(shown) == _plain(incidents)
    key = "sender", "first_seq", "kind", "title"
    out["incidents"] = sorted(_plain(incidents), key=lambda i: json.dumps([i[k] for k in key]))
    return out


def test_two_receivers_on_clickhouse_answer_as_on_sqlite(clickhouse: Cluster,
                                                         tmp_path: Path) -> None:
    port = free_udp_port()
    copies = 2
    sqlite = tmp_path / "fleet.db"
    listeners = _receivers(tmp_path / "sqlite", port, db=sqlite)
    try:
        _send(port, copies)
        sqlite_count = _settled(listeners)
    finally:
        _stop(listeners)

    url = clickhouse.url()
    listeners = _receivers(tmp_path / "clickhouse", port, store=url)
    followed = tmp_path / "followed.jsonl"
    follow = subprocess.Popen([sys.executable, "-m", "netconsole", "tail", "-f", "-n", "0",
                               "--json", "--interval", "0.2", "--db", url],
                              stdout=followed.open("w"), stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # the follower has started
        _send(port, copies)
        count = _settled(listeners)
        assert count == sqlite_count > 10_000
        for lis in listeners:  # /api/v1/seen, as `netconsole setup` asks it
            assert lis.get("/api/v1/seen?nonce=labtrig")["seen"] is True
            assert lis.get("/api/v1/seen?nonce=nowhere-to-be-seen")["seen"] is False
    finally:
        _stop(listeners)
        time.sleep(1)
        follow.send_signal(signal.SIGINT)  # it stops as at Ctrl-C, its output flushed
    _, complaints = follow.communicate(timeout=30)
    assert not complaints

    ch, sq = _answers(url), _answers(str(sqlite))
    for name in sq:
        assert ch[name] == sq[name], name
    assert sum(map(len, ch["export"].values())) == count
    assert ch["incidents"] and ch["top"] and ch["search"]
    # `tail -f` over two receivers saw every record once.
    seen = _by_host([json.loads(line) for line in followed.read_text().splitlines()])
    assert {h: len(r) for h, r in seen.items()} == {h: len(r) for h, r in ch["export"].items()}
    assert {h: sorted(map(json.dumps, r)) for h, r in seen.items()} == {
        h: sorted(map(json.dumps, r)) for h, r in ch["export"].items()}


def _records(first: int, last: int) -> Iterator[bytes]:
    for seq in range(first, last + 1):
        yield from encode_extended(OutgoingRecord(facility=0, level=6, seq=seq,
                                                  ts_usec=1_000_000 + seq * 10,
                                                  text=b"moving host record %d" % seq))


def _stream(url: str, host: str) -> tuple[list[int], list[Any]]:
    with open_reader(url) as reader:
        seqs = [s.record.seq for s in reader.export(host=host)]
        events = reader.events(host=host, limit=1000)
    return seqs, events


def test_a_host_moving_between_receivers_keeps_its_stream(clickhouse: Cluster,
                                                          tmp_path: Path) -> None:
    """The second receiver resumes a host's stream from the store: no gap or
    reboot is made up when the host moves, and a record lost right at the move
    is a gap (a stream started afresh on B would not know it was missing)."""
    port = free_udp_port()
    url = clickhouse.url()
    a, b = _receivers(tmp_path, port, store=url)
    lossless, lossy = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
    lossless.bind((f"127.{NET}.0.77", 6665))
    lossy.bind((f"127.{NET}.0.78", 6665))
    try:
        for sock in (lossless, lossy):
            for d in _records(1, 300):
                sock.sendto(d, (RECEIVERS[0], port))
        a.wait_records(600)
        time.sleep(2.5)  # past B's reload of the hosts the store knows
        # ECMP rehashed: both hosts now reach B; one lost its record 301 on the way.
        for sock, first in ((lossless, 301), (lossy, 302)):
            for d in _records(first, 500):
                sock.sendto(d, (RECEIVERS[1], port))
        b.wait_records(399)
    finally:
        lossless.close()
        lossy.close()
        _stop([a, b])
    seqs, events = _stream(url, f"127.{NET}.0.77")
    assert seqs == list(range(1, 501))
    assert events == []
    seqs, events = _stream(url, f"127.{NET}.0.78")
    assert seqs == [*range(1, 301), *range(302, 501)]
    assert [(e.kind, e.detail) for e in events] == [
        ("gap", {"gap": "seq", "first": 301, "count": 1})]
    with open_reader(url) as reader:
        hosts = {h.address: h for h in reader.hosts(now=time.time())}
    assert [(hosts[h].records, hosts[h].lost_seq, hosts[h].reboots, hosts[h].duplicates)
            for h in (f"127.{NET}.0.77", f"127.{NET}.0.78")] == [(500, 0, 0, 0), (499, 1, 0, 0)]


class _Load:
    """Hosts 127.<NET>.<net>.1-8 each sending records 1..`per_host`, split over the
    two receivers, in a thread."""

    def __init__(self, port: int, net: int, per_host: int, hosts: int = 8) -> None:
        self.port, self.per_host = port, per_host
        self.addresses = [f"127.{NET}.{net}.{i + 1}" for i in range(hosts)]
        self.socks = []
        for address in self.addresses:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((address, 6665))
            self.socks.append(sock)
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        for seq in range(1, self.per_host + 1):
            for i, sock in enumerate(self.socks):
                for d in encode_extended(OutgoingRecord(
                        facility=0, level=6, seq=seq, ts_usec=seq * 1000,
                        text=b"load %d from host %d" % (seq, i))):
                    sock.sendto(d, (RECEIVERS[i % 2], self.port))
            time.sleep(0.003)

    def join(self) -> None:
        self.thread.join()
        for sock in self.socks:
            sock.close()

    def check(self, url: str) -> None:
        """Every record of every host stored, and read, exactly once; no gap,
        duplicate or reboot made up."""
        with open_reader(url) as reader:
            for address in self.addresses:
                seqs = [s.record.seq for s in reader.export(host=address)]
                assert seqs == list(range(1, self.per_host + 1)), address
                assert reader.events(host=address) == []
            hosts = {h.address: h for h in reader.hosts(now=time.time())}
        for address in self.addresses:
            h = hosts[address]
            assert (h.records, h.lost_seq, h.duplicates, h.reboots) == (self.per_host, 0, 0, 0)


def _rows(clickhouse: Cluster, url: str, what: str) -> int:
    database = url.split("/")[3].split("?")[0]
    return sum(int(s.query(f"SELECT {what} FROM {database}.records_local"))
               for s in clickhouse.servers)


def test_kill9_of_clickhouse_servers_mid_load_loses_and_doubles_nothing(
        clickhouse: Cluster, tmp_path: Path) -> None:
    """Receivers hold (and spool) while a server is down, and deliver once it
    is back: first a shard, then the server they send to."""
    port = free_udp_port()
    url = clickhouse.url()
    listeners = _receivers(tmp_path, port, store=url)
    load = _Load(port, 20, per_host=2000)
    try:
        for server in reversed(clickhouse.servers):
            time.sleep(0.8)
            server.kill9()  # mid-load, mid-insert perhaps
            time.sleep(1.5)
            assert sum(lis.metrics().get("netconsole_held_records", 0)
                       for lis in listeners) > 0
            server.start()
        load.join()
        assert _settled(listeners, timeout=120) == load.per_host * len(load.addresses)
        assert sum(lis.metrics().get("netconsole_store_errors_total", 0)
                   for lis in listeners) > 0
    finally:
        load.join()
        for server in clickhouse.servers:
            if not server.up():
                server.start()
        _stop(listeners)
    load.check(url)
    assert _rows(clickhouse, url, "uniqExact(id)") == load.per_host * len(load.addresses)


def test_answers_lost_after_inserts_store_nothing_twice(clickhouse: Cluster,
                                                        tmp_path: Path) -> None:
    """The server stores an insert but its answer is lost: the receiver holds
    the batch and sends it again, and again, with the same row keys, so the
    copies are one record to every reader, and merges fold them."""
    port = free_udp_port()
    relay = LossyRelay(clickhouse.servers[0].http_port)
    url = clickhouse.url()
    listeners = _receivers(tmp_path, port,  # the receivers reach the first server through it
                           store=url.replace(clickhouse.servers[0].address, relay.address))
    database = url.split("/")[3].split("?")[0]
    for server in clickhouse.servers:  # keep the copies apart, to count them
        server.query(f"SYSTEM STOP MERGES {database}.records_local")
    load = _Load(port, 30, per_host=1200)
    try:
        time.sleep(1.0)
        relay.losing = True
        time.sleep(1.5)
        relay.losing = False
        load.join()
        assert _settled(listeners, timeout=120) == load.per_host * len(load.addresses)
    finally:
        load.join()
        _stop(listeners)
        relay.close()
    assert relay.lost > 0
    total = load.per_host * len(load.addresses)
    assert _rows(clickhouse, url, "count()") > _rows(clickhouse, url, "uniqExact(id)") == total
    load.check(url)
    for server in clickhouse.servers:
        server.query(f"SYSTEM START MERGES {database}.records_local")
        server.query(f"OPTIMIZE TABLE {database}.records_local FINAL")
    assert _rows(clickhouse, url, "count()") == total


def test_kill9_of_a_receiver_resumes_from_the_store(clickhouse: Cluster,
                                                     tmp_path: Path) -> None:
    """As on SQLite: what was stored before a `kill -9` is the restarted
    receiver's starting point (records replayed onto a fresh stream)."""
    port = free_udp_port()
    url = clickhouse.url()
    home = tmp_path / "r"
    home.mkdir()
    store = url + f"&spool={home}"
    lis = Listener(home, "-b", RECEIVERS[0], port=port, store=store)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((f"127.{NET}.0.88", 6665))
    try:
        for d in _records(1, 200):
            sock.sendto(d, (RECEIVERS[0], port))
        lis.wait_records(200)
        lis.kill_all()
        lis = Listener(home, "-b", RECEIVERS[0], port=port, store=store)
        for d in _records(202, 400):  # 201 lost while it restarted: a real gap
            sock.sendto(d, (RECEIVERS[0], port))
        lis.wait_records(199)
    finally:
        sock.close()
        lis.stop()
    seqs, events = _stream(url, f"127.{NET}.0.88")
    assert seqs == [*range(1, 201), *range(202, 401)]
    # Resumed from the store: the stream knows 200 came last, invents nothing else.
    assert [(e.kind, e.detail) for e in events] == [
        ("gap", {"gap": "seq", "first": 201, "count": 1})]


@pytest.mark.parametrize("url", ["clickhouse://127.0.0.1:1/nc",
                                 "clickhouse://127.0.0.1:1/nc?cluster=x",
                                 "clickhouse://127.0.0.1/nc?bogus=1"])
def test_listen_says_in_one_line_what_is_wrong_with_the_store(url: str) -> None:
    done = subprocess.run([sys.executable, "-m", "netconsole", "listen", "--store", url,
                           "-p", str(free_udp_port()), "--no-http", "-q"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr
    assert "Traceback" not in done.stderr
