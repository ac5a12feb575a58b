"""End to end: a real `netconsole listen` gets crash.pcap's datagrams over loopback,
stores its incidents, alerts a real webhook, and `netconsole incidents` lists them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from netconsole.cli import main
from netconsole.collector import free_udp_port
from tests.helpers import capture, udp_payloads
from tests.integration.listen_harness import FakeHost, Listener, wait_for
from tests.integration.test_alerts_delivery import Hook

CRASH = capture("6.12.117+deb12-amd64", "crash")


def _replay(path: Path, port: int) -> int:
    host = FakeHost()
    try:
        n = 0
        for _, _, _, _, payload in udp_payloads(path):
            host.sock.sendto(payload, ("127.0.0.1", port))
            n += 1
            if n % 100 == 0:
                time.sleep(0.005)  # like the kernel's own pace, well under the socket buffer
        return n
    finally:
        host.close()


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_listen_replayed_crash_becomes_incidents_and_alerts(tmp_path: Path) -> None:
    hook = Hook()
    config = tmp_path / "listen.toml"
    config.write_text(f'[[alerts]]\nname = "lab"\nwebhook = "{hook.url}"\n'
                      'kinds = ["panic", "oops", "warning"]\n')
    lis = Listener(tmp_path, "--config", str(config))
    try:
        sent = _replay(CRASH, lis.port)
        lis.wait_records(sent)  # one record per datagram in this capture
        wait_for(lambda: len(hook.bodies) == 3, timeout=20)
        wait_for(lambda: lis.metrics().get('netconsole_alerts_total{outcome="sent"}') == 3)
        metrics = lis.metrics()
    finally:
        assert lis.stop() == 0
        hook.close()
    assert metrics['netconsole_alerts_total{outcome="given_up"}'] == 0
    # Every commit is in the latency histogram.
    commits = metrics["netconsole_store_batches_total"]
    assert metrics['netconsole_store_commit_seconds_bucket{le="+Inf"}'] == commits
    assert metrics["netconsole_store_commit_seconds_count"] == commits > 0
    assert sorted((b["kind"], b["count"]) for b in hook.bodies) == [
        ("oops", 1), ("panic", 1), ("warning", 1)]
    db = str(lis.db)
    listed = json.loads(_cli("incidents", "--json", "--db", db))
    assert [(i["kind"], i["title"], i["culprit"], i["state"]) for i in listed] == [
        ("warning", "WARNING: CPU: 1 PID: 160 at /usr/src/netconsole-lab/tr/labtrig.c:98 "
         "labtrig_init+0x2e7/0xff0 [labtrig]", "labtrig_init+0x2e7/0xff0 [labtrig]", "closed"),
        ("oops", "BUG: kernel NULL pointer dereference, address: 0000000000000000",
         "do_oops+0x11/0x30 [labtrig]", "closed"),
        ("panic", "Kernel panic - not syncing: sysrq triggered crash", None, "closed"),
    ]
    assert all(i["sender"]["host"] == "127.0.0.1" for i in listed)
    oops = listed[1]
    shown = _cli("incidents", "show", str(oops["id"]), "--db", db)
    assert "do_oops+0x11/0x30 [labtrig]" in shown and "Oops: Oops: 0002 [#1]" in shown
    assert "labtrig_init+0x10d/0xff0 [labtrig]" in shown  # the parsed trace
    only = json.loads(_cli("incidents", "--kind", "panic", "--json", "--db", db))
    assert [i["kind"] for i in only] == ["panic"]
    top = json.loads(_cli("incidents", "top", "--json", "--db", db))
    assert sorted(g["kind"] for g in top) == ["oops", "panic", "warning"]
    assert all(g["incidents"] == 1 and g["hosts"] == 1 for g in top)


def test_listen_refuses_a_broken_alert_rule(tmp_path: Path) -> None:
    config = tmp_path / "listen.toml"
    config.write_text('[[alerts]]\nname = "typo"\nwebhok = "http://127.0.0.1:9/"\n')
    done = subprocess.run([sys.executable, "-m", "netconsole", "listen", "--config",
                           str(config), "--db", str(tmp_path / "x.db"), "-p",
                           str(free_udp_port()), "--no-http"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "alert rule 'typo': unknown key(s) webhok" in done.stderr


def test_incidents_cli_on_a_store_without_incidents(tmp_path: Path) -> None:
    from netconsole.store import open_store

    db = tmp_path / "empty.db"
    open_store(db).close()
    assert _cli("incidents", "--db", str(db)).strip() == "no incidents"
    assert _cli("incidents", "top", "--db", str(db)).strip() == "no incidents"
    result = CliRunner().invoke(main, ["incidents", "show", "7", "--db", str(db)])
    assert result.exit_code == 1 and "no incident 7" in result.output


def test_incidents_cli_lists_silences(tmp_path: Path) -> None:
    from netconsole.incidents import IncidentTable
    from netconsole.store import open_store
    from tests.unit.incidents.conftest import expire_until, lines_to_records

    db = tmp_path / "s.db"
    store = open_store(db)
    table = IncidentTable()
    panic = lines_to_records("Kernel panic - not syncing: Fatal exception\nRebooting in 1 "
                             "seconds..")
    store.apply(table.process(panic, panic[-1].received))
    store.apply(expire_until(table, panic[-1].received + 60))
    store.close()
    listed = json.loads(_cli("incidents", "silences", "--json", "--db", str(db)))
    assert [(e["kind"], e["detail"]["phase"], e["detail"]["reason"], e["detail"]["title"])
            for e in listed] == [("silence", "started", "after_crash",
                                  "Kernel panic - not syncing: Fatal exception")]
    text = _cli("incidents", "silences", "--db", str(db))
    assert "after_crash" in text and "Kernel panic - not syncing: Fatal exception" in text


WARN_SPLAT = (b"------------[ cut here ]------------",
              b"WARNING: CPU: 0 PID: 1 at lib/x.c:1 f+0x1/0x2",
              b"Modules linked in: e1000e",
              b"RIP: 0010:f+0x1/0x2",
              b"Call Trace:",
              b" <TASK>",
              b" f+0x1/0x2",
              b" </TASK>",
              b"---[ end trace 0000000000000000 ]---")


def test_listen_two_workers_send_one_alert_for_one_crash_on_many_hosts(
        tmp_path: Path) -> None:
    """Hosts are spread over the workers by SO_REUSEPORT; the alert groups by
    fingerprint across all of them (one message, every host counted)."""
    hook = Hook()
    config = tmp_path / "listen.toml"
    config.write_text(f'[[alerts]]\nname = "fleet"\nwebhook = "{hook.url}"\n'
                      'kinds = ["warning"]\ngroup_wait = 3.0\n')
    lis = Listener(tmp_path, "--config", str(config), workers=2)
    hosts = [FakeHost(f"127.0.3.{i + 1}", 6665) for i in range(16)]
    try:
        for line in WARN_SPLAT:
            for h in hosts:
                h.send(h.datagrams(1, line), lis.port)
        lis.wait_records(16 * len(WARN_SPLAT))
        wait_for(lambda: len(hook.bodies) >= 1, timeout=20)
        time.sleep(1.5)  # a second message, if any, would come now
        # The supervisor's alert manager is counted too.
        assert lis.metrics()['netconsole_alerts_total{outcome="sent"}'] == 1
    finally:
        for h in hosts:
            h.close()
        assert lis.stop() == 0
        hook.close()
    [body] = hook.bodies
    assert (body["kind"], body["count"], body["host_count"]) == ("warning", 16, 16)


def test_listen_two_workers_sighup_adds_alert_rules(tmp_path: Path) -> None:
    hook = Hook()
    config = tmp_path / "listen.toml"
    config.write_text("quiet = true\n")
    lis = Listener(tmp_path, "--config", str(config), workers=2)
    host = FakeHost("127.0.3.77", 6665)
    try:
        config.write_text(f'[[alerts]]\nname = "late"\nwebhook = "{hook.url}"\n'
                          'kinds = ["warning"]\ngroup_wait = 0.0\n')
        lis.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)  # the supervisor's loop wakes at least every 0.5 s
        for line in WARN_SPLAT:
            host.send(host.datagrams(1, line), lis.port)
        wait_for(lambda: len(hook.bodies) == 1, timeout=20)
    finally:
        host.close()
        assert lis.stop() == 0
        hook.close()
    assert hook.bodies[0]["kind"] == "warning"
