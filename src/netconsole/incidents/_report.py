"""One report being assembled in one lane, and the table that drives it.

Theory of operation
-------------------
A lane is where one report's lines arrive in order: a `caller=` id (`T160`,
`C1`), else a `cpu=` sysdata value, else the whole host. A lane has at most
one report open. Each line that reaches an open report is classified for it
(`LineClass`: the start of another report, the panic it ends in, its end
marker, a trace line, a register-dump or kind-specific body line, or
anything else), and `TRANSITIONS[greed][(state, class)]` gives the report's
next state and what to do with the line (`Action`).

Two tables, because reports come in two shapes:

- GREEDY reports have an end marker (`---[ end trace ]---`, `</TASK>`, a rule
  of `=`, `Out of memory: Killed process`, `Rebooting in`): every line of the
  lane until that marker is theirs, whatever it looks like (WARN messages,
  OOM memory tables, lockdep chains). A new report's first line closes them
  as truncated.
- STRICT reports have none (RCU stalls, machine checks): they take only the
  lines that look like theirs and end, complete, at the first line that does
  not (or after a quiet spell).

After its end marker a report stays in the lane's TAIL for a moment: the
register dump an oops repeats after `---[ end trace ]---` and the panic it
leads to (`Kernel panic - not syncing: Fatal exception`) are amendments to it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from netconsole.incidents._model import Kind
from netconsole.incidents._patterns import (
    BODY,
    CUT_HERE_HEADLINES,
    END_LINES,
    JOIN_REASONS,
    KIND_BODY,
    OOPS_BODY,
    PANIC_LINE,
    TRACE_LINE,
    End,
    Start,
    match_start,
)
from netconsole.stream.events import Record


class State(enum.Enum):
    HEADER = "header"  # first lines, before any trace
    TRACE = "trace"  # inside a call trace (or after one, for greedy reports)
    TAIL = "tail"  # closed; absorbing the lines that follow an end marker


class LineClass(enum.Enum):
    START = "start"  # first line of another report
    JOIN = "join"  # the panic this report ends in
    END = "end"  # this report's end marker
    TRACE = "trace"  # Call Trace:, a frame, <IRQ>/<TASK> markers
    BODY = "body"  # register dump, Modules linked in, kind-specific lines
    OTHER = "other"


class Action(enum.Enum):
    APPEND = "append"  # the line is the report's
    CLOSE = "close"  # the line is its end marker: append, close complete, go to TAIL
    JOIN = "join"  # a panic caused by this report: append, mark fatal, expect panic's end
    SPLIT = "split"  # another report starts: close this one unfinished, re-read the line
    FINISH = "finish"  # a strict report's first foreign line: close complete, re-read it
    SKIP = "skip"  # not the report's line; re-read it as a lane with nothing open
    LEAVE = "leave"  # (TAIL) the tail is over: re-read the line


class Greed(enum.Enum):
    GREEDY = "greedy"
    STRICT = "strict"
    STRICT_HEADER = "strict_header"  # greedy once its lines looked like a report's


STRICT_HEADER_KINDS = frozenset({Kind.HUNG_TASK})
"""Greedy kinds whose first line is always followed by body or trace lines (`Not
tainted`, `"echo 0 > ..."`, `task:`, `Call Trace:`): a foreign line right after
the header means the line came alone. It is then a report of one line, closed at
once, and the lines after it are nobody's (not appended until `</TASK>` or a
timeout). An outage sends such lines by the hundred."""


_COMMON: dict[tuple[State, LineClass], tuple[State, Action]] = {
    (State.HEADER, LineClass.START): (State.HEADER, Action.SPLIT),
    (State.HEADER, LineClass.JOIN): (State.HEADER, Action.JOIN),
    (State.HEADER, LineClass.END): (State.TAIL, Action.CLOSE),
    (State.HEADER, LineClass.TRACE): (State.TRACE, Action.APPEND),
    (State.HEADER, LineClass.BODY): (State.HEADER, Action.APPEND),
    (State.TRACE, LineClass.START): (State.TRACE, Action.SPLIT),
    (State.TRACE, LineClass.JOIN): (State.TRACE, Action.JOIN),
    (State.TRACE, LineClass.END): (State.TAIL, Action.CLOSE),
    (State.TRACE, LineClass.TRACE): (State.TRACE, Action.APPEND),
    (State.TRACE, LineClass.BODY): (State.TRACE, Action.APPEND),
    (State.TAIL, LineClass.BODY): (State.TAIL, Action.APPEND),
    (State.TAIL, LineClass.JOIN): (State.TRACE, Action.JOIN),
    (State.TAIL, LineClass.START): (State.TAIL, Action.LEAVE),
    (State.TAIL, LineClass.END): (State.TAIL, Action.LEAVE),
    (State.TAIL, LineClass.TRACE): (State.TAIL, Action.LEAVE),
    (State.TAIL, LineClass.OTHER): (State.TAIL, Action.LEAVE),
}

TRANSITIONS: dict[Greed, dict[tuple[State, LineClass], tuple[State, Action]]] = {
    Greed.GREEDY: {
        **_COMMON,
        (State.HEADER, LineClass.OTHER): (State.HEADER, Action.APPEND),
        (State.TRACE, LineClass.OTHER): (State.TRACE, Action.APPEND),
    },
    Greed.STRICT: {
        **_COMMON,
        (State.HEADER, LineClass.OTHER): (State.HEADER, Action.FINISH),
        (State.TRACE, LineClass.OTHER): (State.TRACE, Action.FINISH),
    },
    Greed.STRICT_HEADER: {
        **_COMMON,
        (State.HEADER, LineClass.OTHER): (State.HEADER, Action.FINISH),
        (State.TRACE, LineClass.OTHER): (State.TRACE, Action.APPEND),
    },
}
"""Every (state, line class) pair has an entry: no line can leave a report stuck."""


@dataclass(slots=True, kw_only=True)
class Report:
    """A report being assembled (mutable, private to the detector)."""

    key: str
    kind: Kind
    ends: frozenset[End]
    title: str
    first: Record
    last: Record
    opened_at: float
    last_at: float
    lane: str | None
    lines: list[str] = field(default_factory=list)
    state: State = State.HEADER
    cut_here: bool = False  # opened by `cut here`; the headline is still to come
    headline_seen: bool = False
    one_line: bool = False
    device: str | None = None
    count: int = 1
    dropped: int = 0
    truncated: bool = False
    fatal: bool = False
    saw_frames: bool = False
    closed: bool = False  # CLOSED was emitted; later changes are amendments
    emitted: bool = False  # OPENED (or CLOSED) was emitted at least once
    dirty: bool = True
    task: str | None = None
    previous_boot: bool = False  # its lines are a pstore replay of the boot before

    @property
    def greed(self) -> Greed:
        if End.NONE in self.ends:
            return Greed.STRICT
        return Greed.STRICT_HEADER if self.kind in STRICT_HEADER_KINDS else Greed.GREEDY

    def add(self, line: str, record: Record, now: float, max_lines: int) -> None:
        if len(self.lines) < max_lines:
            self.lines.append(line)
        else:
            self.dropped += 1
        self.last = record
        self.last_at = now
        self.dirty = True
        if not self.saw_frames and TRACE_LINE.match(line) and "+0x" in line:
            self.saw_frames = True

    def ended_by(self, line: str) -> bool:
        """Whether `line` is this open report's end line (an OOM kill after its dump)."""
        if self.state is State.TAIL:
            return False
        return any(pattern.search(line) for end in self.ends
                   if (pattern := END_LINES.get(end)) is not None)

    def classify(self, line: str, found: tuple[Start, re.Match[str]] | None) -> LineClass:
        """What `line` is to this report (see the module docstring).

        One-line kinds (I/O errors, ...) never reach a report: the detector
        coalesces them first. `found` is `match_start(line)` (the caller
        has it already).
        """
        panic = PANIC_LINE.search(line)
        if panic is not None:
            if self.state is State.TAIL and not JOIN_REASONS.search(panic["reason"]):
                return LineClass.START
            return LineClass.JOIN
        if self.state is not State.TAIL:
            for end in self.ends:
                pattern = END_LINES.get(end)
                if pattern is not None and pattern.search(line):
                    return LineClass.END
        if found is not None:
            start, _ = found
            if self.state is State.TAIL:
                return LineClass.START
            if self.cut_here and not self.headline_seen and (
                    CUT_HERE_HEADLINES.match(line) or start.kind is Kind.NETDEV_WATCHDOG):
                return LineClass.BODY
            if self.kind in (Kind.OOPS, Kind.GPF) and OOPS_BODY.match(line):
                return LineClass.BODY
            if self.kind is Kind.MCE and start.kind is Kind.MCE:
                return LineClass.BODY  # every line of a machine check starts like its first
            return LineClass.START
        if TRACE_LINE.match(line):
            return LineClass.TRACE
        if BODY.match(line):
            return LineClass.BODY
        kind_body = KIND_BODY.get(self.kind)
        if kind_body is not None and kind_body.match(line):
            return LineClass.BODY
        return LineClass.OTHER

    def resolve_cut_here(self, line: str) -> None:
        """After `cut here`: learn the kind and title from the lines that follow."""
        found = match_start(line)
        if found is None:
            return
        start, _ = found
        if start.kind is Kind.NETDEV_WATCHDOG:
            self.kind, self.title = Kind.NETDEV_WATCHDOG, line.strip()
            return
        if not CUT_HERE_HEADLINES.match(line):
            return
        self.headline_seen = True
        if self.kind is Kind.NETDEV_WATCHDOG:
            return
        self.kind, self.title = start.kind, line.strip()
        self.ends = self.ends | start.ends
