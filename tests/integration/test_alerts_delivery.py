"""Alert delivery to a real HTTP server on loopback, and to a real command."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netconsole.alerts import AlertManager, AlertRule
from netconsole.incidents import Incident, IncidentTable, Phase
from netconsole.stream.events import Sender
from tests.integration.listen_harness import wait_for
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import T0, lines_to_records


class Hook:
    """A webhook receiver on 127.0.0.1: records each JSON body; fails the first
    `fail` requests with HTTP 500; holds requests while `gate` is clear."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.gate.wait(30)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                if hook.attempts <= hook.fail:
                    self.send_response(500)
                else:
                    hook.bodies.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.close()


def _crash(n: int, text: str | None = None) -> Incident:
    sender = Sender(host=f"10.0.0.{n + 1}", port=6665, local_port=6666)
    out = IncidentTable().process(lines_to_records(text or reports.warn(pid=100 + n),
                                                   sender=sender), T0)
    (closed,) = [e for e in out if isinstance(e, Incident) and e.phase is Phase.CLOSED]
    return closed


def test_webhook_gets_one_message_with_the_count_for_a_fleet_wide_crash(hook: Hook) -> None:
    manager = AlertManager((AlertRule(name="fleet", webhook=hook.url, group_wait=0.3),)).start()
    try:
        assert manager.submit([_crash(n) for n in range(50)]) == 50
        wait_for(lambda: hook.bodies)
    finally:
        manager.close()
    (body,) = hook.bodies
    assert body["count"] == 50 and body["host_count"] == 50 and body["rule"] == "fleet"
    assert body["kind"] == "warning" and body["culprit"] == "foo_tx+0x2e7/0x2a0 [foo]"
    assert body["incident"]["title"].startswith("WARNING: CPU: 1 PID: 100 at ")
    assert "50 incidents on 50 hosts" in body["text"]


def test_webhook_slack_format_posts_text_only(hook: Hook) -> None:
    rule = AlertRule(name="chat", webhook=hook.url, format="slack", group_wait=0.0)
    manager = AlertManager((rule,)).start()
    try:
        manager.submit([_crash(0, reports.GPF)])
        wait_for(lambda: hook.bodies)
    finally:
        manager.close()
    assert hook.bodies == [{"text": "[critical] gpf on 10.0.0.1: general protection fault, "
                            "probably for non-canonical address 0xdead000000000122: 0000 [#1] "
                            "PREEMPT SMP NOPTI — in mlx5e_free_rx_descs+0x5e/0x160 "
                            "[mlx5_core]"}]


def test_command_action_gets_the_alert_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    rule = AlertRule(name="cmd", command=f"cat > {out}", group_wait=0.0)
    manager = AlertManager((rule,)).start()
    try:
        manager.submit([_crash(0, reports.HUNG_TASK)])
        wait_for(lambda: out.exists() and out.stat().st_size > 0)
    finally:
        manager.close()
    body = json.loads(out.read_text())
    assert body["kind"] == "hung_task" and body["count"] == 1
    assert body["culprit"] == "do_get_write_access+0x2a3/0x3c0 [jbd2]"
    assert body["incident"]["text"] == reports.HUNG_TASK


def test_failed_webhook_is_retried_with_backoff_and_logged() -> None:
    hook = Hook(fail=2)
    logs: list[str] = []
    manager = AlertManager((AlertRule(name="flaky", webhook=hook.url, group_wait=0.0),),
                           log=logs.append, backoff=0.05).start()
    try:
        manager.submit([_crash(0)])
        wait_for(lambda: hook.bodies)
    finally:
        manager.close()
        hook.close()
    assert hook.attempts == 3 and len(hook.bodies) == 1
    assert [line.split("; ")[1] for line in logs] == ["retry 1 in 0.05s", "retry 2 in 0.1s"]
    assert "HTTP Error 500" in logs[0]
    assert manager.stats["sent"] == 1 and manager.stats["retried"] == 2


def test_failing_command_gives_up_after_its_attempts() -> None:
    logs: list[str] = []
    manager = AlertManager((AlertRule(name="broken", command="echo nope >&2; exit 3",
                                      group_wait=0.0),),
                           log=logs.append, backoff=0.01, attempts=3).start()
    try:
        manager.submit([_crash(0)])
        wait_for(lambda: manager.stats["given_up"] == 1)
    finally:
        manager.close()
    assert "failed 3 times, giving up: exit status 3: nope" in logs[-1]


def test_a_hanging_webhook_never_blocks_submit(hook: Hook) -> None:
    """The endpoint holds every request; submit still returns, and a full queue
    drops (and counts) instead of waiting."""
    hook.gate.clear()
    logs: list[str] = []
    manager = AlertManager((AlertRule(name="slow", webhook=hook.url, group_wait=0.0),),
                           log=logs.append, queue_size=5, timeout=30).start()
    try:
        crash = _crash(0)
        manager.submit([crash])
        wait_for(lambda: hook.attempts == 0 and manager.stats["sent"] == 0 and
                 manager._queue.empty())  # the thread is now stuck in the request
        assert manager.submit([crash] * 20) == 20
        assert manager.stats["dropped"] >= 15
        assert logs and logs[0].startswith("alert queue full")
    finally:
        hook.gate.set()
        manager.close()
