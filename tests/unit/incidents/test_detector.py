"""IncidentDetector and IncidentTable: lanes, truncation, joins, silence, bounds."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netconsole.incidents import (
    DetectorConfig,
    Incident,
    IncidentDetector,
    IncidentTable,
    Kind,
    Phase,
    SilencePhase,
    SilenceReason,
)
from netconsole.incidents._report import TRANSITIONS, Greed, LineClass, State
from netconsole.stream.events import Reboot, RebootReason
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import (
    HOST,
    OTHER,
    T0,
    drive,
    expire_until,
    lines_to_records,
)


def _interleave(*streams: list) -> list:  # type: ignore[type-arg]
    out = []
    for group in itertools.zip_longest(*streams):
        out += [r for r in group if r is not None]
    return sorted(out, key=lambda r: r.received)


def test_transitions_cover_every_state_and_line_class() -> None:
    for greed in Greed:
        for state in State:
            for line_class in LineClass:
                assert (state, line_class) in TRANSITIONS[greed]


def test_detector_untangles_concurrent_warns_by_caller() -> None:
    a = lines_to_records(reports.warn(cpu=0, pid=100, off="10"), caller="T100", seq=100)
    b = lines_to_records(reports.warn(cpu=1, pid=200, off="20").replace("foo_tx", "bar_rx"),
                         caller="T200", seq=500, t=T0 + 0.0001)
    run = drive(_interleave(a, b))
    got = sorted((i.lane, i.culprit.function if i.culprit else None, i.lines, i.truncated)
                 for i in run.closed)
    n = len(a)
    assert got == [("T100", "foo_tx", n, False), ("T200", "bar_rx", n, False)]


def test_detector_untangles_concurrent_reports_by_cpu_sysdata() -> None:
    hung = lines_to_records(reports.HUNG_TASK, cpu=0, seq=100)
    lockup = lines_to_records(reports.SOFT_LOCKUP, cpu=1, seq=500, t=T0 + 0.0002)
    run = drive(_interleave(hung, lockup))
    got = sorted((i.kind.value, i.lane, i.text) for i in run.closed)
    assert got == [("hung_task", "cpu0", reports.HUNG_TASK),
                   ("soft_lockup", "cpu1", reports.SOFT_LOCKUP)]


def test_detector_without_lanes_splits_at_the_second_report() -> None:
    """No caller, no cpu: a second report's first line ends the first, as truncated."""
    first = reports.warn().split("\n")[:8]
    second = reports.KERNEL_BUG
    run = drive(lines_to_records("\n".join(first) + "\n" + second))
    assert [(i.kind, i.truncated) for i in run.closed] == [(Kind.WARNING, True),
                                                            (Kind.OOPS, False)]


def test_detector_closes_a_report_cut_short_on_timeout_as_truncated() -> None:
    half = reports.warn().split("\n")[:12]  # the host died mid-trace
    records = lines_to_records("\n".join(half))
    table = IncidentTable(DetectorConfig(report_timeout=5.0))
    run = drive(records, table=table, settle=4.0)
    assert run.closed == []
    assert run.incident_events and run.incident_events[-1].phase is Phase.UPDATED
    out = expire_until(table, records[-1].received + 5.0)
    closed = [e for e in out if isinstance(e, Incident)]
    assert [(i.phase, i.truncated, i.lines) for i in closed] == [(Phase.CLOSED, True, 12)]


def test_detector_closes_a_report_on_reboot_before_the_reboot_event() -> None:
    half = lines_to_records("\n".join(reports.OOM.split("\n")[:20]))
    reboot = Reboot(sender=HOST, at=half[-1].received + 30, reason=RebootReason.SEQ_BACK,
                    previous_seq=119, seq=0, previous_release=None, release=None)
    table = IncidentTable()
    out = table.process(half, half[-1].received)
    out += table.process([reboot], reboot.at)
    closed = [i for i, e in enumerate(out) if isinstance(e, Incident) and e.phase is Phase.CLOSED]
    assert len(closed) == 1
    incident = out[closed[0]]
    assert isinstance(incident, Incident) and incident.truncated and incident.kind is Kind.OOM
    assert out.index(reboot) > closed[0]  # so the store gives it the boot of its records


def test_detector_joins_a_fatal_exception_panic_to_its_oops() -> None:
    run = drive(lines_to_records(reports.GPF))
    (gpf,) = run.closed
    assert gpf.kind is Kind.GPF and gpf.fatal and gpf.phase is Phase.AMENDED


def test_detector_keeps_an_unrelated_panic_separate() -> None:
    """crash.pcap's case: an oops, then a second later a sysrq panic: two crashes."""
    oops = lines_to_records(reports.KERNEL_BUG)
    panic = lines_to_records("sysrq: Trigger a crash\nKernel panic - not syncing: sysrq "
                             "triggered crash\nRebooting in 1 seconds..", seq=900,
                             t=oops[-1].received + 1)
    run = drive([*oops, *panic])
    assert [(i.kind, i.fatal) for i in run.closed] == [(Kind.OOPS, False), (Kind.PANIC, False)]


def test_detector_panic_long_after_a_report_is_its_own() -> None:
    oops = lines_to_records(reports.KERNEL_BUG)
    panic = lines_to_records("Kernel panic - not syncing: Fatal exception", seq=900,
                             t=oops[-1].received + 60)
    run = drive([*oops, *panic])
    assert [i.kind for i in run.closed] == [Kind.OOPS, Kind.PANIC]


def test_detector_silence_after_crash_and_reboot_ends_it() -> None:
    panic = lines_to_records("Kernel panic - not syncing: Attempted to kill init! "
                             "exitcode=0x00000009\nRebooting in 10 seconds..")
    table = IncidentTable(DetectorConfig(after_crash=10.0))
    run = drive(panic, table=table, settle=9.0)
    assert run.silences == []
    silences = [e for e in expire_until(table, panic[-1].received + 10.0)]
    assert [(s.phase, s.reason, s.title) for s in silences] == [  # type: ignore[union-attr]
        (SilencePhase.STARTED, SilenceReason.AFTER_CRASH, "Kernel panic - not syncing: "
         "Attempted to kill init! exitcode=0x00000009")]
    reboot = Reboot(sender=HOST, at=panic[-1].received + 40, reason=RebootReason.SEQ_BACK,
                    previous_seq=101, seq=0, previous_release=None, release=None)
    out = table.process([reboot, *lines_to_records("Linux version 6.1.0", seq=0,
                                                   t=reboot.at)], reboot.at)
    ended = [e for e in out if not isinstance(e, (Incident, Reboot)) and hasattr(e, "phase")]
    assert [(e.phase, e.rebooted) for e in ended] == [(SilencePhase.ENDED, True)]


def test_detector_silence_when_a_chatty_host_goes_quiet() -> None:
    chatty = [r for i in range(30) for r in lines_to_records(f"tick {i}", seq=i, t=T0 + i)]
    quiet = [r for i in range(3) for r in lines_to_records(f"tick {i}", seq=i, t=T0 + i,
                                                           sender=OTHER)]
    table = IncidentTable(DetectorConfig(quiet_after=60.0, chatty_records=20))
    run = drive([*chatty, *quiet], table=table, settle=59.0)
    assert run.silences == []
    out = expire_until(table, T0 + 29 + 61)
    assert [(s.sender, s.reason) for s in out] == [(HOST, SilenceReason.QUIET)]  # type: ignore[union-attr]
    assert OTHER not in table.detectors  # idle and not chatty: forgotten
    back = table.process(lines_to_records("tick again", seq=31, t=T0 + 200), T0 + 200)
    assert [(e.phase, e.rebooted) for e in back if hasattr(e, "rebooted")] == [
        (SilencePhase.ENDED, False)]


def test_detector_bounds_lines_and_lanes() -> None:
    config = DetectorConfig(max_lines=10, max_lanes=2)
    big = lines_to_records(reports.OOM)
    run = drive(big, table=IncidentTable(config))
    (oom,) = run.closed
    assert oom.lines == 10 and oom.dropped_lines == len(big) - 10
    lanes = [lines_to_records("------------[ cut here ]------------", caller=f"T{i}", seq=i,
                              t=T0 + i * 0.01) for i in range(3)]
    run = drive([r for lane in lanes for r in lane], table=IncidentTable(config), settle=None)
    assert [(i.lane, i.truncated) for i in run.closed] == [("T0", True)]


def test_detector_rejects_another_senders_event() -> None:
    detector = IncidentDetector(HOST)
    with pytest.raises(ValueError, match="fed to the detector"):
        detector.feed(lines_to_records("x", sender=OTHER)[0], T0)


def test_detector_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="report_timeout"):
        DetectorConfig(report_timeout=0)
    with pytest.raises(ValueError, match="bounds"):
        DetectorConfig(max_lines=0)


def test_detector_emits_one_update_per_batch_not_per_line() -> None:
    table = IncidentTable()
    records = lines_to_records(reports.HUNG_TASK)
    out = table.process(records[:10], records[9].received)
    assert [e.phase for e in out if isinstance(e, Incident)] == [Phase.OPENED]
    out = table.process(records[10:20], records[19].received)
    assert [e.phase for e in out if isinstance(e, Incident)] == [Phase.UPDATED]
    out = table.process(records[20:], records[-1].received)
    assert [e.phase for e in out if isinstance(e, Incident)] == [Phase.CLOSED]


def test_table_deadlines_come_from_every_sender() -> None:
    table = IncidentTable(DetectorConfig(report_timeout=5.0))
    a = lines_to_records("------------[ cut here ]------------")
    b = lines_to_records("------------[ cut here ]------------", sender=OTHER, t=T0 + 1)
    table.process(a, T0)
    table.process(b, T0 + 1)
    assert table.next_deadline() == pytest.approx(T0 + 5.0)
    first = table.expire(T0 + 5.0)
    assert [e.sender for e in first] == [HOST]
    assert table.next_deadline() == pytest.approx(T0 + 6.0)
    assert [e.sender for e in table.expire(T0 + 6.0)] == [OTHER]


def _corpus_lines() -> list[str]:
    return reports.corpus_lines()


def test_patterns_trigger_covers_every_start() -> None:
    """The prefilter never hides a start: every line a start pattern matches has a trigger."""
    from netconsole.incidents._patterns import STARTS, TRIGGER

    matched = 0
    for line in _corpus_lines():
        if any(s.pattern.search(line) for s in STARTS):
            matched += 1
            assert TRIGGER.search(line), line
    assert matched > 30


LINES = _corpus_lines()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=80)), max_size=200),
       st.lists(st.sampled_from([None, "T1", "T2", "C0"]), min_size=1, max_size=200))
def test_detector_closes_everything_it_opens(lines: list[str], callers: list[str | None]) -> None:
    """Any mix of report lines and noise, in any lanes: no error, every incident that
    opened is closed once time passes, and each is closed once."""
    records = [r for i, line in enumerate(lines)
               for r in lines_to_records(line.replace("\n", " "), seq=i, t=T0 + i * 0.001,
                                         caller=callers[i % len(callers)])]
    run = drive(records, settle=10_000)
    opened = {e.key for e in run.incident_events if e.phase is Phase.OPENED}
    closed = [e.key for e in run.incident_events if e.phase is Phase.CLOSED]
    assert opened <= set(closed)
    assert len(closed) == len(set(closed))
    assert all(i.lines >= 1 and i.fingerprint for i in run.closed)


def test_detector_caps_a_report_whose_end_was_lost() -> None:
    """A WARN without its end marker on a host that keeps talking does not swallow
    the host's log: it is closed, truncated, `max_report_age` after it opened."""
    head = lines_to_records("\n".join(reports.warn().split("\n")[:6]))
    chatter = [r for i in range(120) for r in lines_to_records(
        f"systemd[1]: tick {i}", seq=200 + i, t=T0 + 1 + i)]
    table = IncidentTable(DetectorConfig(max_report_age=60.0))
    run = drive([*head, *chatter], table=table, settle=None)
    (warn,) = run.closed
    assert warn.truncated and warn.at == pytest.approx(T0 + 60.0, abs=1.0)
    assert warn.lines < 70


def _pstore(records: list, dump: bytes = b"dmesg-ramoops-0") -> list:  # type: ignore[type-arg]
    from dataclasses import replace
    return [replace(r, fields=(*r.fields, (b"pstore", dump), (b"boot", b"previous")))
            for r in records]


def test_a_pstore_replay_is_the_previous_boot_not_a_crash_now() -> None:
    """After a reboot `netconsole forward` ships the last panic from pstore: an
    incident of the previous boot, and no "went silent after a crash" for the
    quiet seconds that follow (the host that sends it is up)."""
    panic = _pstore(lines_to_records(
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009\n"
        "Rebooting in 10 seconds..", seq=5000, t=T0 + 100))
    live = lines_to_records("systemd[1]: Started netconsole forward", seq=200, t=T0 + 99)
    table = IncidentTable(DetectorConfig(after_crash=10.0))
    run = drive([*live, *panic], table=table, settle=1.0)
    assert [(i.kind, i.previous_boot) for i in run.closed] == [(Kind.PANIC, True)]
    quiet = expire_until(table, panic[-1].received + 60.0)
    assert not [e for e in quiet if hasattr(e, "reason")], quiet
    # The same dump replayed again (forward restarted): the same incident key.
    from dataclasses import replace
    again = drive([replace(r, received=r.received + 100) for r in panic], settle=1.0)
    assert [i.key for i in again.closed] == [i.key for i in run.closed]


def test_a_live_fatal_exception_does_not_join_a_replayed_oops() -> None:
    oops = _pstore(lines_to_records(reports.KERNEL_BUG, seq=10))
    panic = lines_to_records("Kernel panic - not syncing: Fatal exception", seq=900,
                             t=oops[-1].received + 0.5)
    run = drive([*oops, *panic])
    assert sorted((i.kind.value, i.previous_boot, i.fatal) for i in run.closed) == [
        ("oops", True, False), ("panic", False, False)]
