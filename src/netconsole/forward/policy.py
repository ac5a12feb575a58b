"""Which `/dev/kmsg` records forward sends: the level filter and the rate limit.

Both stand in for printk's own console filters (kernel-netconsole.md §6), and
both step aside for crash output, as printk does: an oops or panic calls
`console_verbose()`, which lifts the console loglevel so the whole report
reaches every console. Crash output is what the receiver calls so, in its own
words (incidents/_patterns.py). A line it starts an incident with passes; one
that starts a multi-line report also opens a *crash window*: everything logged
in the next `CRASH_WINDOW_USEC` of kernel time passes the level filter and the
rate limit, so the whole report is sent. A report's own lines (a trace, an end marker, a
register line) pass wherever they stand, so the trace of a report whose first
line no pattern knows is still sent.

The rate limit is a token bucket driven by the records' own timestamps
(`ts_usec`), not by a wall clock: it limits how fast the kernel *logged*,
so the replay of the ring buffer at start (seconds of boot log arriving in
one read) is not mistaken for a flood, and the policy stays deterministic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from netconsole.forward.kmsg import KmsgRecord
from netconsole.incidents._patterns import (
    BODY,
    END_LINES,
    TRACE_LINE,
    TRIGGER_BYTES,
    Start,
    match_start,
)

# How long after a crash line everything passes (kernel time). An oops report
# takes well under a second to print; a hung-task or OOM report a few.
CRASH_WINDOW_USEC = 10_000_000

_END_LINES = tuple(END_LINES.values())


# printk's level names (kern_levels.h) and the usual aliases. The same table as
# the store's; kept here so forward, which runs on the hosts being watched,
# does not import the store (and sqlite3, absent from minimal Pythons).
LEVEL_NAMES: dict[str, int] = {
    "emerg": 0, "alert": 1, "crit": 2, "err": 3, "error": 3,
    "warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7,
}


def parse_level(text: str) -> int:
    """`warning`, `4`, ... -> the printk level number.

    Raises:
        ValueError: neither 0-7 nor a level name.
    """
    value = text.strip().lower()
    if value.isdigit() and 0 <= int(value) <= 7:
        return int(value)
    if value in LEVEL_NAMES:
        return LEVEL_NAMES[value]
    raise ValueError(f"not a level: {text!r} (use 0-7 or {', '.join(LEVEL_NAMES)})")


def _lines(text: bytes) -> list[str]:
    """A record's lines, decoded as the receiver's incident detector decodes them."""
    return [line.rstrip("\r") for line in text.decode("utf-8", "replace").split("\n")]


def _starts(text: bytes) -> list[Start]:
    """The incidents the lines of `text` start at the receiver."""
    if TRIGGER_BYTES.search(text) is None:  # the receiver's own fast way out
        return []
    return [found[0] for line in _lines(text) if (found := match_start(line)) is not None]


def _report_line(line: str) -> bool:
    # BODY takes any indented line inside a report; alone, indentation says nothing.
    return TRACE_LINE.match(line) is not None or any(e.search(line) for e in _END_LINES) \
        or (BODY.match(line) is not None and not line[:1].isspace())


def is_crash_line(text: bytes) -> bool:
    """True when `text` is crash output that must never be filtered out: a report's
    start, or one of a report's own lines, in the receiver's words."""
    return bool(_starts(text)) or _has_report_line(text)


def _has_report_line(text: bytes) -> bool:
    return any(_report_line(line) for line in _lines(text))


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; one token per record.

    Time is the caller's (seconds, any origin, non-decreasing expected; a step
    back counts as no time passing).
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def take(self, now: float) -> bool:
        """Spend a token if there is one."""
        if self._last is not None and now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyConfig:
    """The filters of one forward run.

    Attributes:
        max_level: send records at this level or more severe (0 emerg .. 7 debug).
        rate: records per second allowed on average; None for no limit.
        burst: records allowed at once before the rate applies.
    """

    max_level: int = 7
    rate: float | None = None
    burst: int = 1000

    def __post_init__(self) -> None:
        if not 0 <= self.max_level <= 7:
            raise ValueError("max_level is a printk level, 0..7")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.burst < 1:
            raise ValueError("burst must be at least 1")


class Verdict(enum.Enum):
    """What `Policy.judge` decided; the values name the counters."""

    SEND = "send"
    CRASH = "crash"  # sent because it is crash output or inside a crash window
    LEVEL = "filtered_level"
    RATE = "rate_limited"


class Policy:
    """Level filter + rate limit + crash window; see the module docstring."""

    __slots__ = ("_bucket", "_crash_until", "config")

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._bucket = TokenBucket(config.rate, config.burst) if config.rate else None
        self._crash_until = -1

    def judge(self, rec: KmsgRecord) -> Verdict:
        """Decide for one record; records must come in seq order."""
        starts = _starts(rec.text)
        if starts:
            # A one-line kind (an I/O error) has no report after it to let through.
            if not all(s.one_line for s in starts):
                self._crash_until = max(self._crash_until, rec.ts_usec + CRASH_WINDOW_USEC)
            return Verdict.CRASH
        if rec.ts_usec <= self._crash_until or _has_report_line(rec.text):
            return Verdict.CRASH
        if rec.level > self.config.max_level:
            return Verdict.LEVEL
        if self._bucket is not None and not self._bucket.take(rec.ts_usec / 1e6):
            return Verdict.RATE
        return Verdict.SEND
