"""IncidentDetector: one host's records in, incidents and silences out.

Theory of operation
-------------------
Driven by three things, all with the time as an argument (no clock is read):

- `feed(event, now)` with the stream's events: each `Record`'s text lines go
  to the record's lane (`caller=` id, else `cpu=` sysdata, else the host) and
  through that lane's open `Report` (see `_report` for the per-line state
  machine); a line that opens nothing and belongs to nothing is ignored. A
  `Reboot` closes every open report as truncated (the kernel that was
  printing it is gone) and ends a silence.
- `expire(now)` at `next_deadline()`: closes reports that stopped arriving
  (`report_timeout`: truncated, the host died mid-trace), tails, coalesced
  one-line incidents, and starts silences.
- `events()` drains what was decided: CLOSED/AMENDED incidents and silences in
  the order they happened, then OPENED/UPDATED for reports still open (one
  per report per drain, however many lines it got).

One-line kinds (I/O errors, filesystem errors, NETDEV WATCHDOG) are not
reports: the same kind on the same device is coalesced into one incident with
a `count` until `coalesce_window` passes without another.

A panic whose reason says it was caused by the report before it (`Fatal
exception`, `Hard LOCKUP`, ...) joins that report (`fatal`) instead of being
an incident of its own: an oops with `panic_on_oops` is one crash, not two.

pstore replays: records with a `pstore=` field (`netconsole forward` sends the
previous boot's crash dump after the reboot) go to lanes of their own, and
their reports are `previous_boot` incidents: never joined with live lines,
keyed by the dump and its kernel time (a replay sent twice is one incident),
and no reason for "went silent after a crash" -- the host that sends them is
up again.

Silence: after a crash kind (or a fatal report) a host that sends nothing for
`after_crash` seconds has probably died; a host that sent at least
`chatty_records` records in the last `quiet_after` seconds and then nothing
for `quiet_after` has gone quiet. Either is a `Silence(STARTED)`; the next
record or reboot ends it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

from netconsole.incidents._model import (
    CRASH_KINDS,
    SEVERITY,
    Incident,
    IncidentEvent,
    Kind,
    Phase,
    Severity,
    Silence,
    SilencePhase,
    SilenceReason,
)
from netconsole.incidents._patterns import (
    END_LINES,
    JOIN_REASONS,
    PANIC_LINE,
    TASK_LINE,
    TRIGGER_BYTES,
    End,
    Start,
    match_start,
)
from netconsole.incidents._report import TRANSITIONS, Action, Greed, Report, State
from netconsole.incidents._trace import culprit, fingerprint, parse_frames
from netconsole.stream._sender import PSTORE_FIELD
from netconsole.stream.events import Event, Reboot, Record, Sender


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorConfig:
    """Timeouts (seconds) and bounds of a detector."""

    report_timeout: float = 5.0
    """A report with an end marker that gets no line for this long is closed,
    truncated. netconsole sends a whole trace within milliseconds, so five
    seconds of nothing means the host died or the rest was lost."""
    max_report_age: float = 60.0
    """A report still open this long after its first line is closed, truncated: a
    report whose end was lost would otherwise take every later line of a chatty
    host (netconsole sends even an OOM report of thousands of lines in a second)."""
    strict_idle: float = 2.0
    """A report without an end marker (RCU stall, MCE) is complete after this."""
    tail_window: float = 1.0
    """How long after its end marker a report still takes its repeated register dump."""
    join_window: float = 10.0
    """A `Fatal exception`-style panic this soon after a report joins it."""
    coalesce_window: float = 5.0
    """One-line incidents (I/O errors, ...) on one device group while closer than this."""
    coalesce_span: float = 60.0
    """... but one such incident closes after this long, so a storm reports every minute."""
    after_crash: float = 10.0
    """Silence after a crash: nothing for this long after a panic/oops."""
    crash_recent: float = 60.0
    """A crash counts for `after_crash` only if the host's last record came this soon after it."""
    quiet_after: float = 600.0
    """A chatty host is silent after this long without a record."""
    chatty_records: int = 20
    """Records within `quiet_after` that make a host chatty."""
    max_lines: int = 5000
    """Lines kept per report (an OOM task list of a big machine fits); more are counted."""
    max_lanes: int = 64
    """Reports open at once per host; the oldest is closed (truncated) beyond."""
    max_coalesced_lines: int = 50
    """Lines kept of a coalesced one-line incident; `count` counts them all."""

    def __post_init__(self) -> None:
        for name in ("report_timeout", "max_report_age", "strict_idle", "tail_window",
                     "join_window", "coalesce_window", "coalesce_span", "after_crash",
                     "quiet_after"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if min(self.max_lines, self.max_lanes, self.max_coalesced_lines,
               self.chatty_records) < 1:
            raise ValueError("bounds must be at least 1")


DEFAULT_CONFIG = DetectorConfig()

RECENT = 8
"""Closed reports remembered per host for a later panic to join."""

_KILL_TITLE = re.compile(
    r"(?:^|: )((?:Memory cgroup )?[Oo]ut of memory: Killed process \d+ \([^)]*\))")
_MCE_TITLE = re.compile(r"Machine [Cc]heck|MCE|Hardware Error\]: (?!Run|PROCESSOR|TSC|RIP)")


def lane_of(record: Record) -> str | None:
    """Where a record's report lines arrive in order: caller, else cpu, else the host."""
    if record.caller:
        return record.caller
    if not record.fields:
        return None
    cpu = record.cpu
    return f"cpu{cpu}" if cpu is not None else None


# Shared read-only empties: most senders never open a report, and an idle
# sender's detector must stay small (DESIGN: memory per idle sender). Writes go
# through the `_own_*` helpers; a write that forgets fails loudly.
_NONE_OPEN: dict[Any, Report] = cast("dict[Any, Report]", MappingProxyType({}))
_NOTHING: list[Any] = cast("list[Any]", ())


class IncidentDetector:
    """One sender's incidents. See the module docstring for what drives it."""

    # One per sender, kept while the sender is watched for silence: slots keep an
    # idle sender's cost down (DESIGN: memory per idle sender).
    __slots__ = (
        "_coalesced", "_crash", "_crash_at", "_lanes", "_name_raw", "_out", "_previous_count",
        "_recent", "_silence", "_window_count", "_window_start", "config", "last_record", "name",
        "sender",
    )

    def __init__(self, sender: Sender, config: DetectorConfig = DEFAULT_CONFIG) -> None:
        self.sender = sender
        self.config = config
        self._lanes: dict[str | None, Report] = _NONE_OPEN
        self._coalesced: dict[tuple[Kind, str], Report] = _NONE_OPEN
        self._recent: list[tuple[float, Report]] = _NOTHING
        self._out: list[IncidentEvent] = _NOTHING
        self.last_record: float | None = None
        self._window_start: float | None = None
        self._window_count = 0
        self._previous_count = 0
        self._crash: Report | None = None
        self._crash_at = 0.0
        self._silence: Silence | None = None
        self.name: str | None = None
        self._name_raw: bytes | None = None  # what `took` last decoded into `name`

    # -- input ----------------------------------------------------------------------

    def feed(self, event: Event, now: float) -> None:
        """Take one stream event; other senders' events are a caller error."""
        if event.sender != self.sender:
            raise ValueError(f"event of {event.sender} fed to the detector of {self.sender}")
        self.take(event, now)

    def take(self, event: Event, now: float) -> None:
        """`feed` without the sender check, for a caller that routes by sender (the table)."""
        if isinstance(event, Record):
            self._record(event, now)
        elif isinstance(event, Reboot):
            self._reboot(now)

    @property
    def busy(self) -> bool:
        """A report is open or a silence is on: every record must come here."""
        return bool(self._lanes) or self._silence is not None

    def took(self, count: int, now: float, name: bytes | None) -> None:
        """`count` records received at `now` that start nothing (the trigger
        does not match), while not `busy`: what `take` would do, in one step."""
        if name is not None and name is not self._name_raw:
            # The lane keeps one bytes object until the name changes: decode once.
            self._name_raw = name
            self.name = name.decode("utf-8", "replace")
        self._activity(now)
        self._window_count += count - 1  # same `now`: the window cannot roll again

    def _record(self, record: Record, now: float) -> None:
        if record.fields:
            name = record.field(b"hostname")
            if name is not None:
                self.name = name.decode("utf-8", "replace")
                self._name_raw = None
        self._end_silence(now, rebooted=False)
        self._activity(now)
        if not self._lanes and TRIGGER_BYTES.search(record.text) is None:
            return  # nothing open, nothing starting: most records end here
        lane = lane_of(record)
        if record.fields and record.field(PSTORE_FIELD) is not None:
            lane = f"pstore:{lane or ''}"  # never mixed with the live boot's lines
        text = record.text.decode("utf-8", "replace")
        if "\n" not in text:
            self._line(text.rstrip("\r"), record, lane, now, 0)
            return
        for index, line in enumerate(text.split("\n")):
            self._line(line.rstrip("\r"), record, lane, now, index)

    def _line(self, line: str, record: Record, lane: str | None, now: float,
              index: int) -> None:
        found = match_start(line)
        report = self._lanes.get(lane)
        if report is None and found is None:
            return  # the common case: a line that neither starts nor continues a report
        pending_cut = report is not None and report.cut_here and not report.headline_seen
        if (found is not None and found[0].one_line and not pending_cut
                and (report is None or not report.ended_by(line))):
            self._coalesce(found[0], found[1], line, record, now, index)
            return
        if report is not None:
            line_class = report.classify(line, found)
            state, action = TRANSITIONS[report.greed][(report.state, line_class)]
            if action in (Action.APPEND, Action.CLOSE, Action.JOIN):
                report.add(line, record, now, self.config.max_lines)
                self._learn(report, line)
                if action is Action.JOIN:
                    report.fatal = True
                    report.ends = frozenset({End.PANIC})
                report.state = state
                if action is Action.CLOSE:
                    self._close(report, now, truncated=False)
                return
            if action is Action.SPLIT:
                self._close(report, now, truncated=report.greed is not Greed.STRICT)
            elif action is Action.FINISH:
                self._close(report, now, truncated=False)
            else:  # LEAVE: the tail is over
                self._leave_tail(report, now)
            del self._lanes[lane]
        if found is not None:
            self._idle(found, line, record, lane, now, index)

    def _idle(self, found: tuple[Start, re.Match[str]], line: str, record: Record,
              lane: str | None, now: float, index: int) -> None:
        """A line that starts a report in a lane with nothing open."""
        start, _ = found
        previous_boot = lane is not None and lane.startswith("pstore:")
        if start.kind is Kind.PANIC and self._join_recent(line, record, lane, now,
                                                          previous_boot):
            return
        if len(self._lanes) >= self.config.max_lanes:
            oldest = min(self._lanes, key=lambda k: self._lanes[k].last_at)
            self._close(self._lanes.pop(oldest), now, truncated=True)
        key = self._pstore_key(record, index) if previous_boot else self._key(record, index)
        report = Report(key=key, kind=start.kind, ends=start.ends,
                        title=line.strip(), first=record, last=record, opened_at=now,
                        last_at=now, lane=lane, cut_here=start.cut_here,
                        previous_boot=previous_boot)
        report.add(line, record, now, self.config.max_lines)
        self._learn(report, line)
        self._own_lanes()[lane] = report
        if start.kind is Kind.OOM and END_LINES[End.OOM_KILL].search(line):
            report.state = State.TAIL
            self._close(report, now, truncated=False)

    def _join_recent(self, line: str, record: Record, lane: str | None, now: float,
                     previous_boot: bool) -> bool:
        """A panic caused by a report that just closed: amend that report."""
        m = PANIC_LINE.search(line)
        if m is None or not JOIN_REASONS.search(m["reason"]):
            return False
        for closed_at, report in reversed(self._recent):
            if now - closed_at > self.config.join_window:
                break
            if report.fatal or report.previous_boot != previous_boot:
                continue
            for other, open_report in list(self._lanes.items()):
                if open_report is report:
                    del self._lanes[other]
            report.add(line, record, now, self.config.max_lines)
            report.fatal = True
            report.ends = frozenset({End.PANIC})
            report.state = State.TRACE
            self._own_lanes()[lane] = report
            return True
        return False

    def _coalesce(self, start: Start, m: re.Match[str], line: str, record: Record,
                  now: float, index: int) -> None:
        groups = m.groupdict()
        device = groups.get("device") or groups.get("pre") or ""
        group = (start.kind, device)
        report = self._coalesced.get(group)
        if report is not None and now - report.opened_at > self.config.coalesce_span:
            self._close(self._coalesced.pop(group), now, truncated=False)
            report = None
        if report is None:
            report = Report(key=self._key(record, index), kind=start.kind, ends=start.ends,
                            title=line.strip(), first=record, last=record, opened_at=now,
                            last_at=now, lane=None, one_line=True, device=device or None,
                            count=0)
            if self._coalesced is _NONE_OPEN:
                self._coalesced = {}
            self._coalesced[group] = report
        report.count += 1
        report.add(line, record, now, self.config.max_coalesced_lines)

    def _reboot(self, now: float) -> None:
        for report in self._lanes.values():
            if report.state is State.TAIL:
                self._leave_tail(report, now)
            else:
                self._close(report, now, truncated=True)
        for report in self._coalesced.values():
            self._close(report, now, truncated=False)
        self._lanes = _NONE_OPEN
        self._coalesced = _NONE_OPEN
        self._recent = _NOTHING
        self._crash = None
        self._end_silence(now, rebooted=True)

    # -- what a report learns from its lines ------------------------------------------

    @staticmethod
    def _learn(report: Report, line: str) -> None:
        if report.cut_here and not report.headline_seen:
            report.resolve_cut_here(line)
        if report.task is None:
            m = TASK_LINE.search(line)
            if m is not None:
                report.task = f"{m['comm']}[{m['pid']}]"
        if report.kind is Kind.OOM:
            kill = _KILL_TITLE.search(line)
            if kill is not None:
                report.title = kill.group(1)
        elif (report.kind is Kind.MCE and not _MCE_TITLE.search(report.title)
              and _MCE_TITLE.search(line)):
            report.title = line.strip()

    def _key(self, record: Record, index: int) -> str:
        seq = "-" if record.seq is None else str(record.seq)
        return f"{seq}@{round(record.received * 1e6):x}.{index}"

    @staticmethod
    def _pstore_key(record: Record, index: int) -> str:
        """The same for every replay of one dump: its name and the record's kernel time."""
        dump = (record.field(PSTORE_FIELD) or b"").decode("utf-8", "replace")
        ts = "-" if record.ts_usec is None else str(record.ts_usec)
        return f"pstore:{dump}:{ts}.{index}"

    # -- output ---------------------------------------------------------------------

    def _incident(self, report: Report, phase: Phase, now: float) -> Incident:
        frames = parse_frames(report.lines)
        title = report.title
        fp_title = re.sub(r", sector .*$", "", title) if report.kind is Kind.IO_ERROR else title
        first, last = report.first, report.last
        return Incident(
            sender=self.sender, at=now, phase=phase, key=report.key, kind=report.kind,
            severity=Severity.CRITICAL if report.fatal else SEVERITY[report.kind],
            title=title, text="\n".join(report.lines), frames=frames,
            culprit=culprit(frames), fingerprint=fingerprint(report.kind, fp_title, frames),
            release=first.kernel_release or last.kernel_release,
            first_seq=first.seq, last_seq=last.seq,
            first_received=first.received, last_received=last.received,
            first_ts_usec=first.ts_usec, last_ts_usec=last.ts_usec,
            lines=len(report.lines), dropped_lines=report.dropped, count=report.count,
            truncated=report.truncated, fatal=report.fatal, lane=report.lane,
            task=report.task, name=self.name, previous_boot=report.previous_boot,
        )

    def _close(self, report: Report, now: float, *, truncated: bool) -> None:
        report.truncated = report.truncated or truncated
        phase = Phase.AMENDED if report.closed else Phase.CLOSED
        report.closed = True
        report.state = State.TAIL
        self._emit(self._incident(report, phase, now))
        report.emitted = True
        report.dirty = False
        if not report.one_line:
            self._recent = [*self._recent[1 - RECENT:], (now, report)]
        if (report.fatal or report.kind in CRASH_KINDS) and not report.previous_boot:
            self._crash, self._crash_at = report, now

    def _leave_tail(self, report: Report, now: float) -> None:
        if report.dirty:
            self._emit(self._incident(report, Phase.AMENDED, now))
            report.dirty = False

    def _own_lanes(self) -> dict[str | None, Report]:
        if self._lanes is _NONE_OPEN:
            self._lanes = {}
        return self._lanes

    def _emit(self, event: IncidentEvent) -> None:
        if self._out is _NOTHING:
            self._out = []
        self._out.append(event)

    def events(self, *, open_reports: bool = True) -> list[IncidentEvent]:
        """What was decided since the last call, in order (see the module docstring);
        then, with `open_reports`, each open report that changed, as it is now."""
        out = self._out if self._out is not _NOTHING else []
        self._out = _NOTHING
        if open_reports:
            out.extend(self.open_reports())
        return out

    def open_reports(self) -> list[IncidentEvent]:
        """OPENED/UPDATED for each open report that changed since it was last given.
        Each costs a snapshot of the report's lines (frames, fingerprint): a receiver
        asks once per store batch, not once per record (an outage's stream of one-line
        OOM kills grows one coalesced report record by record)."""
        out: list[IncidentEvent] = []
        for report in [*self._lanes.values(), *self._coalesced.values()]:
            if report.closed or not report.dirty:
                continue
            out.append(self._incident(report, Phase.UPDATED if report.emitted
                                      else Phase.OPENED, report.last_at))
            report.emitted = True
            report.dirty = False
        return out

    # -- time -----------------------------------------------------------------------

    def _timeout(self, report: Report) -> float:
        if report.state is State.TAIL:
            return report.last_at + self.config.tail_window
        cap = report.opened_at + self.config.max_report_age
        if report.greed is Greed.STRICT:
            return min(report.last_at + self.config.strict_idle, cap)
        return min(report.last_at + self.config.report_timeout, cap)

    def _coalesce_deadline(self, report: Report) -> float:
        return min(report.last_at + self.config.coalesce_window,
                   report.opened_at + self.config.coalesce_span)

    def _silence_deadline(self) -> tuple[float, SilenceReason] | None:
        if self._silence is not None or self.last_record is None:
            return None
        if self._crash is not None and self.last_record - self._crash_at <= \
                self.config.crash_recent:
            return self.last_record + self.config.after_crash, SilenceReason.AFTER_CRASH
        if max(self._window_count, self._previous_count) >= self.config.chatty_records:
            return self.last_record + self.config.quiet_after, SilenceReason.QUIET
        return None

    def next_deadline(self) -> float | None:
        """When `expire` next has something to do, or None."""
        times = [self._timeout(r) for r in self._lanes.values()]
        times += [self._coalesce_deadline(r) for r in self._coalesced.values()]
        silence = self._silence_deadline()
        if silence is not None:
            times.append(silence[0])
        elif not times and self._silence is None and self.last_record is not None:
            times.append(self.last_record + self.config.quiet_after)  # when to forget it
        return min(times) if times else None

    def expire(self, now: float) -> None:
        """Close what timed out by `now`; start a silence that is due."""
        for lane, report in list(self._lanes.items()):
            if self._timeout(report) > now:
                continue
            del self._lanes[lane]
            if report.state is State.TAIL:
                self._leave_tail(report, now)
            else:
                self._close(report, now, truncated=report.greed is not Greed.STRICT)
        for group, report in list(self._coalesced.items()):
            if self._coalesce_deadline(report) <= now:
                del self._coalesced[group]
                self._close(report, now, truncated=False)
        silence = self._silence_deadline()
        if silence is not None and silence[0] <= now and self.last_record is not None:
            crash = self._crash if silence[1] is SilenceReason.AFTER_CRASH else None
            self._silence = Silence(
                sender=self.sender, at=now, phase=SilencePhase.STARTED, reason=silence[1],
                last_record=self.last_record, incident=crash.key if crash else None,
                title=crash.title if crash else None, name=self.name)
            self._emit(self._silence)

    def _activity(self, now: float) -> None:
        quiet = self.config.quiet_after
        if self._window_start is None or now - self._window_start >= quiet:
            recent = self._window_start is not None and now - self._window_start < 2 * quiet
            self._previous_count = self._window_count if recent else 0
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        self.last_record = now

    def _end_silence(self, now: float, *, rebooted: bool) -> None:
        if self._silence is None:
            return
        s = self._silence
        self._emit(Silence(sender=self.sender, at=now, phase=SilencePhase.ENDED,
                                 reason=s.reason, last_record=s.last_record,
                                 incident=s.incident, title=s.title, rebooted=rebooted,
                                 name=self.name))
        self._silence = None
        if rebooted:
            self._crash = None

    def idle(self, now: float) -> bool:
        """Nothing open, no silence to watch for, nothing heard for `quiet_after`:
        the detector can be dropped (a host that comes back gets a new one)."""
        return (not self._lanes and not self._coalesced and self._silence is None
                and self._silence_deadline() is None and self.last_record is not None
                and now - self.last_record >= self.config.quiet_after)
