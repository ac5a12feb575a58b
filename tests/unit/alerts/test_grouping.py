"""Dedup by fingerprint and rate limits (sans-IO)."""

from __future__ import annotations

import dataclasses

from netconsole.alerts import AlertRule, Grouper
from netconsole.incidents import (
    IncidentTable,
    Phase,
    Silence,
    SilencePhase,
    SilenceReason,
)
from netconsole.stream.events import Sender
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import T0, lines_to_records


def _crash(n: int, text: str = "") -> object:
    """The closed incident of host n for the same WARN (another for `text`)."""
    sender = Sender(host=f"10.0.{n // 250}.{n % 250 + 1}", port=6665, local_port=6666)
    table = IncidentTable()
    report = text or reports.warn(cpu=n % 4, pid=100 + n)
    out = table.process(lines_to_records(report, sender=sender), T0)
    (closed,) = [e for e in out if getattr(e, "phase", None) is Phase.CLOSED]
    return closed


RULE = AlertRule(name="r", webhook="http://127.0.0.1:9/", group_wait=0.25, window=300.0,
                 max_per_minute=20)


def test_grouper_sends_a_fleet_wide_crash_once_with_its_count() -> None:
    grouper = Grouper((RULE,))
    for n in range(1000):
        assert grouper.offer(_crash(n), T0 + n * 0.0001) == 1  # type: ignore[arg-type]
    assert grouper.due(T0 + 0.2) == []
    (alert,) = grouper.due(T0 + 0.25)
    assert alert.count == 1000 and alert.host_count == 1000 and len(alert.hosts) == 20
    assert not alert.summary and "1000 incidents on 1000 hosts" in alert.text()
    assert alert.payload()["incident"]["kind"] == "warning"


def test_grouper_summarises_repeats_once_per_window() -> None:
    grouper = Grouper((RULE,))
    grouper.offer(_crash(0), T0)  # type: ignore[arg-type]
    assert len(grouper.due(T0 + 1)) == 1
    for n in range(1, 6):
        grouper.offer(_crash(n), T0 + 10 + n)  # type: ignore[arg-type]
    assert grouper.due(T0 + 100) == []
    (summary,) = grouper.due(T0 + 301)
    assert summary.summary and summary.count == 5 and summary.host_count == 5
    assert grouper.due(T0 + 601) == []  # nothing more came: forgotten
    assert grouper.next_deadline() is None


def test_grouper_keeps_different_crashes_apart() -> None:
    grouper = Grouper((RULE,))
    grouper.offer(_crash(0), T0)  # type: ignore[arg-type]
    grouper.offer(_crash(1, reports.SOFT_LOCKUP), T0)  # type: ignore[arg-type]
    assert sorted(a.kind for a in grouper.due(T0 + 1)) == ["soft_lockup", "warning"]


def test_grouper_rate_limit_counts_what_it_held_back() -> None:
    rule = dataclasses.replace(RULE, max_per_minute=2)
    grouper = Grouper((rule,))
    kinds = [reports.SOFT_LOCKUP, reports.HUNG_TASK, reports.KERNEL_BUG, reports.UBSAN]
    for n, text in enumerate(kinds):
        grouper.offer(_crash(n, text), T0)  # type: ignore[arg-type]
    assert len(grouper.due(T0 + 1)) == 2  # two tokens; two held back
    grouper.offer(_crash(9, reports.GPF), T0 + 61)  # type: ignore[arg-type]
    (later,) = grouper.due(T0 + 62)
    assert later.suppressed == 2 and "+2 alerts held back" in later.text()


def test_grouper_ignores_open_incidents_and_unmatched_rules() -> None:
    grouper = Grouper((dataclasses.replace(RULE, kinds=frozenset({"panic"})),))
    crash = _crash(0)
    assert grouper.offer(dataclasses.replace(crash, phase=Phase.UPDATED), T0) == 0  # type: ignore[type-var]
    assert grouper.offer(crash, T0) == 0  # type: ignore[arg-type]
    assert grouper.next_deadline() is None


def test_grouper_groups_silences_by_reason() -> None:
    grouper = Grouper((RULE,))
    for n in range(3):
        sender = Sender(host=f"192.0.2.{n}", port=6665, local_port=6666)
        grouper.offer(Silence(sender=sender, at=T0, phase=SilencePhase.STARTED,
                              reason=SilenceReason.AFTER_CRASH, last_record=T0 - 10,
                              title="Kernel panic - not syncing: Fatal exception"), T0)
    (alert,) = grouper.due(T0 + 1)
    assert alert.kind == "silence" and alert.count == 3
    assert alert.text().startswith("[critical] silence on 192.0.2.0, 192.0.2.1, 192.0.2.2: "
                                   "went silent after: Kernel panic")


def test_alert_slack_format_is_text_only() -> None:
    grouper = Grouper((dataclasses.replace(RULE, format="slack"),))
    grouper.offer(_crash(0), T0)  # type: ignore[arg-type]
    (alert,) = grouper.due(T0 + 1)
    assert list(alert.payload()) == ["text"]
    assert alert.payload()["text"].startswith("[warning] warning on 10.0.0.1: WARNING: CPU: 0")
