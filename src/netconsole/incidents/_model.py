"""What the incident detector emits: incidents (a crash report, grouped) and silences.

Events are frozen, slotted, keyword-only dataclasses, like the stream's. An
incident is emitted several times over its life with the same `key` (its
`phase` says which moment); a consumer that stores it upserts by
`(sender, key)`, and one that alerts acts on `CLOSED`, when the title, trace
and fingerprint are final.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from netconsole.stream.events import Sender


class Kind(enum.Enum):
    """What happened: one value per kind of kernel report the detector knows."""

    PANIC = "panic"  # Kernel panic - not syncing
    OOPS = "oops"  # page fault, NULL dereference, kernel BUG at, Oops:
    GPF = "gpf"  # general protection fault
    BUG = "bug"  # other `BUG:` reports (scheduling while atomic, bad page state, ...)
    WARNING = "warning"  # WARNING: ... ---[ end trace ]---
    SOFT_LOCKUP = "soft_lockup"
    HARD_LOCKUP = "hard_lockup"
    HUNG_TASK = "hung_task"  # INFO: task ... blocked for more than N seconds
    RCU_STALL = "rcu_stall"
    OOM = "oom"  # invoked oom-killer ... Out of memory: Killed process
    MCE = "mce"  # machine check
    KASAN = "kasan"
    UBSAN = "ubsan"
    LOCKDEP = "lockdep"
    IO_ERROR = "io_error"
    FS_ERROR = "fs_error"  # ext4 / xfs / btrfs
    NETDEV_WATCHDOG = "netdev_watchdog"  # NIC transmit queue timed out


class Severity(enum.IntEnum):
    """How bad, ordered so alert rules can say "at least error"."""

    WARNING = 1
    ERROR = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r}; one of {names}") from None


SEVERITY: dict[Kind, Severity] = {
    Kind.PANIC: Severity.CRITICAL,
    Kind.OOPS: Severity.CRITICAL,
    Kind.GPF: Severity.CRITICAL,
    Kind.MCE: Severity.CRITICAL,
    Kind.HARD_LOCKUP: Severity.CRITICAL,
    Kind.BUG: Severity.ERROR,
    Kind.SOFT_LOCKUP: Severity.ERROR,
    Kind.HUNG_TASK: Severity.ERROR,
    Kind.RCU_STALL: Severity.ERROR,
    Kind.OOM: Severity.ERROR,
    Kind.KASAN: Severity.ERROR,
    Kind.IO_ERROR: Severity.ERROR,
    Kind.FS_ERROR: Severity.ERROR,
    Kind.NETDEV_WATCHDOG: Severity.ERROR,
    Kind.WARNING: Severity.WARNING,
    Kind.UBSAN: Severity.WARNING,
    Kind.LOCKDEP: Severity.WARNING,
}
"""Each kind's severity; an incident that ended in a panic (`fatal`) is critical."""

CRASH_KINDS = frozenset({Kind.PANIC, Kind.OOPS, Kind.GPF, Kind.MCE, Kind.HARD_LOCKUP})
"""Kinds after which a host that stops sending has most likely died."""


class Phase(enum.Enum):
    """Where an incident is in its life.

    OPENED: its first line was seen. UPDATED: more lines (emitted at most once
    per batch of lines). CLOSED: the report ended (end marker, the end of its
    trace, a timeout or the host's reboot); the fields are final for alerting.
    AMENDED: lines that belong to a closed report arrived after it (the
    register dump an oops repeats after its end marker, or the panic it led to).
    """

    OPENED = "opened"
    UPDATED = "updated"
    CLOSED = "closed"
    AMENDED = "amended"


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One call trace line: `[? ]function+0xoffset/0xsize [module]`.

    Attributes:
        function: the symbol as printed (`__handle_sysrq.cold`).
        offset, size: the hex offsets, as ints (None when not printed).
        module: the `[module]` suffix, for functions in a loadable module.
        reliable: False for `? ` frames, which the unwinder found on the stack
            but could not prove are callers.
        section: which trace of the report it belongs to (0 = the first, the
            one that describes the report; later ones are NMI backtraces of
            other CPUs, KASAN alloc/free stacks, ...).
        rip: the faulting instruction pointer (`RIP:`/`pc :` line), not a trace line.
    """

    function: str
    offset: int | None = None
    size: int | None = None
    module: str | None = None
    reliable: bool = True
    section: int = 0
    rip: bool = False

    def __post_init__(self) -> None:
        if not self.function:
            raise ValueError("a frame needs a function name")

    def __str__(self) -> str:
        out = ("? " if not self.reliable else "") + self.function
        if self.offset is not None and self.size is not None:
            out += f"+{self.offset:#x}/{self.size:#x}"
        if self.module:
            out += f" [{self.module}]"
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Incident:
    """A kernel report of one host, grouped from its records.

    Attributes:
        sender: the host's stream.
        at: when the detector decided this (the `now` it was given).
        phase: see `Phase`.
        key: unique among this sender's incidents; the same on every phase.
        kind, severity: what it is and how bad.
        title: the line a person would quote (`BUG: kernel NULL pointer
            dereference, address: 0000000000000000`).
        text: the whole report, its lines joined with newlines (decoded
            UTF-8 with replacement: this is for people and search, the exact
            bytes stay in the records it was built from).
        frames: every call trace frame of the report, with the `RIP:` frame.
        culprit: the first reliable frame outside the generic reporting,
            exception, scheduling and locking helpers (see `_trace.HELPERS`);
            the `RIP:` function when that is not a helper.
        fingerprint: 16 hex digits, the same for the same crash on any host,
            boot or address layout: kind, the title without numbers and
            addresses, and the top reliable non-helper function names.
        release: the kernel release, when the stream carries it.
        first_seq, last_seq: printk sequence numbers of the first and last
            record (extended mode; None in basic mode).
        first_received, last_received: receive times of those records.
        first_ts_usec, last_ts_usec: their kernel timestamps.
        lines: how many text lines the report has (`dropped_lines` more were
            left out because the report outgrew `MAX_LINES`).
        count: for coalesced one-line kinds (I/O and filesystem errors,
            watchdog timeouts): how many such lines it groups.
        truncated: the report ended without its end (the host died or
            rebooted mid-report, or it stopped arriving).
        fatal: the report led to a panic (`Kernel panic - not syncing:
            Fatal exception` after an oops, `Hard LOCKUP`, ...).
        lane: the `caller=` id (`T160`, `C0`) or `cpu<N>` that untangled it
            from concurrent output, when the stream carried one.
        task: the command and pid from the report's `CPU: ... PID: ... Comm:` line.
        name: the host's `hostname=` userdata, when its records carry one.
        previous_boot: replayed from pstore (`netconsole forward`, records with
            a `pstore=` field) after the host rebooted: it happened in the boot
            before the one the host is in now, which it says nothing about.
    """

    sender: Sender
    at: float
    phase: Phase
    key: str
    kind: Kind
    severity: Severity
    title: str
    text: str
    frames: tuple[Frame, ...] = ()
    culprit: Frame | None = None
    fingerprint: str
    release: str | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    first_received: float
    last_received: float
    first_ts_usec: int | None = None
    last_ts_usec: int | None = None
    lines: int = 0
    dropped_lines: int = 0
    count: int = 1
    truncated: bool = False
    fatal: bool = False
    lane: str | None = None
    task: str | None = None
    name: str | None = None
    previous_boot: bool = False

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("an incident needs a key")
        if len(self.fingerprint) != 16:
            raise ValueError(f"fingerprint must be 16 hex digits, got {self.fingerprint!r}")


class SilenceReason(enum.Enum):
    AFTER_CRASH = "after_crash"  # nothing since a panic/oops: the host is probably down
    QUIET = "quiet"  # a host that was sending steadily stopped


class SilencePhase(enum.Enum):
    STARTED = "started"
    ENDED = "ended"


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence:
    """A host went silent, or came back.

    Attributes:
        at: when the detector decided (`now`).
        phase: STARTED when the threshold passed; ENDED when a record or a
            reboot arrived (`rebooted` says which).
        reason: why its silence is worth reporting.
        last_record: receive time of the host's last record before the silence.
        incident: the key of the crash it followed (AFTER_CRASH).
        title: that crash's title, for alerts.
        rebooted: ENDED by a reboot the stream detected.
        name: the host's `hostname=` userdata, when known.
    """

    sender: Sender
    at: float
    phase: SilencePhase
    reason: SilenceReason
    last_record: float
    incident: str | None = None
    title: str | None = None
    rebooted: bool = False
    name: str | None = None

    @property
    def severity(self) -> Severity:
        """Critical after a crash (the host is probably down), error otherwise."""
        return Severity.CRITICAL if self.reason is SilenceReason.AFTER_CRASH else Severity.ERROR


IncidentEvent = Incident | Silence
