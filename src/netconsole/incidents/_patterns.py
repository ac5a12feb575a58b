"""The kernel's report formats as data: the lines that start, continue and end them.

Each pattern cites the kernel function that prints it. Starts are tried in
order, first match wins, so the specific ones (`BUG: soft lockup`, `BUG:
KASAN:`) come before the general ones (`BUG:`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from netconsole.incidents._model import Kind


class End(enum.Enum):
    """How a report of some kind announces its own end."""

    END_TRACE = "end_trace"  # ---[ end trace 0000000000000000 ]--- (print_oops_end_marker)
    TASK = "task"  # the </TASK> closing its one trace (dump_stack of hung task, lockup, lockdep)
    RULE = "rule"  # a line of `=` (KASAN, KFENCE, UBSAN end_report)
    OOM_KILL = "oom_kill"  # Out of memory: Killed process (__oom_kill_process)
    PANIC = "panic"  # ---[ end Kernel panic ... ]--- or Rebooting in N seconds.. (panic())
    NONE = "none"  # no marker (RCU stall, MCE): ends at the first unrelated line or a timeout


END_LINES: dict[End, re.Pattern[str]] = {
    End.END_TRACE: re.compile(r"^-+\[ end trace [0-9a-f]* ?\]-+\s*$"),
    End.TASK: re.compile(r"^\s*</TASK>\s*$"),
    End.RULE: re.compile(r"^={20,}\s*$"),
    End.OOM_KILL: re.compile(r"(?:^|: )(?:Memory cgroup )?[Oo]ut of memory: Killed process "),
    End.PANIC: re.compile(r"^-+\[ end Kernel panic - not syncing|^Rebooting in -?\d+ seconds"
                          r"|^Rebooting\.?\s*$"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """A line that opens a report: its kind, how it ends, and how it groups.

    `one_line` kinds (I/O and filesystem errors, watchdog timeouts) are not
    multi-line reports: repeated lines about the same device (`device` group
    of the pattern) are coalesced into one incident with a count.
    `cut_here` is the `------------[ cut here ]------------` line, whose kind
    is only known from the lines after it.
    """

    kind: Kind
    ends: frozenset[End]
    pattern: re.Pattern[str]
    one_line: bool = False
    cut_here: bool = False


def _s(kind: Kind, regex: str, *ends: End, one_line: bool = False,
       cut_here: bool = False) -> Start:
    return Start(kind=kind, ends=frozenset(ends), pattern=re.compile(regex),
                 one_line=one_line, cut_here=cut_here)


PANIC_LINE = re.compile(r"(?<!end )Kernel panic - not syncing: ?(?P<reason>.*)$")

STARTS: tuple[Start, ...] = (
    _s(Kind.WARNING, r"^-+\[ cut here \]-+\s*$", End.END_TRACE, cut_here=True),  # __warn/BUG()
    _s(Kind.PANIC, PANIC_LINE.pattern, End.PANIC),  # panic()
    _s(Kind.HARD_LOCKUP, r"detected hard LOCKUP on cpu", End.TASK),  # watchdog_hardlockup_check
    _s(Kind.SOFT_LOCKUP, r"BUG: soft lockup - CPU#", End.TASK),  # watchdog_timer_fn
    _s(Kind.HUNG_TASK, r"^INFO: task .+ blocked for more than \d+ seconds", End.TASK),
    _s(Kind.RCU_STALL, r"^(?:rcu: )?INFO: \S+ (?:detected (?:expedited )?stalls?"
       r"|self-detected stall)", End.NONE),  # print_other_cpu_stall/print_cpu_stall
    _s(Kind.KASAN, r"^BUG: (?:KASAN|KFENCE|KMSAN): ", End.RULE),  # kasan start_report
    _s(Kind.UBSAN, r"^UBSAN: ", End.RULE, End.END_TRACE),  # ubsan_prologue
    _s(Kind.GPF, r"^(?:Oops: )?general protection fault", End.END_TRACE),  # die_addr
    _s(Kind.OOPS, r"^(?:BUG: kernel NULL pointer dereference|BUG: unable to handle"
       r"|Unable to handle kernel (?:NULL pointer dereference|paging request|access)"
       r"|kernel BUG at |Internal error: Oops|Oops(?::| -) |invalid opcode: )",
       End.END_TRACE),  # page_fault_oops, die
    _s(Kind.LOCKDEP, r"^(?:WARNING|INFO): (?:possible circular locking dependency"
       r"|possible recursive locking|inconsistent lock state|suspicious RCU usage"
       r"|possible irq lock inversion|bad unlock balance|held lock freed"
       r"|lock held when returning to user space|Nested lock was not taken"
       r"|lock held at task exit|HARDIRQ-safe -> HARDIRQ-unsafe|SOFTIRQ-safe)",
       End.TASK),  # lockdep print_*_bug
    _s(Kind.BUG, r"^BUG: workqueue lockup", End.NONE),  # show_all_workqueues follows
    _s(Kind.BUG, r"^BUG: ", End.TASK),  # scheduling while atomic, sleeping function, ...
    _s(Kind.WARNING, r"^WARNING: (?:CPU: \d+|at )", End.END_TRACE),  # __warn without cut here
    _s(Kind.OOM, r"invoked oom-killer: ", End.OOM_KILL),  # dump_header
    # The kill line alone: its dump_header was ratelimited (10 per 5 s), as in an OOM
    # storm; kills coalesce like I/O errors. After a dump it ends that report instead.
    _s(Kind.OOM, END_LINES[End.OOM_KILL].pattern, End.OOM_KILL, one_line=True),
    _s(Kind.MCE, r"^(?:mce: )?\[Hardware Error\]: ", End.NONE),  # print_mce
    _s(Kind.NETDEV_WATCHDOG, r"(?:(?P<pre>[^\s:]+): )?NETDEV WATCHDOG: (?:CPU: \d+: )?"
       r"(?:(?P<device>[^\s:]+) \()?", End.NONE, one_line=True),  # dev_watchdog
    _s(Kind.IO_ERROR, r"(?:^|: )(?:\w+ )?(?:I/O|critical medium|medium|critical target"
       r"|critical space allocation|recoverable transport|critical nexus|timeout"
       r"|protection|operation not supported) error, dev (?P<device>[^,\s]+), sector",
       End.NONE, one_line=True),  # blk_print_req_error
    _s(Kind.IO_ERROR, r"^Buffer I/O error on dev(?:ice)? (?P<device>[^,\s]+),",
       End.NONE, one_line=True),  # buffer_io_error
    _s(Kind.FS_ERROR, r"^EXT[234]-fs (?:error|critical) \(device (?P<device>[^)]+)\)",
       End.NONE, one_line=True),  # __ext4_error
    _s(Kind.FS_ERROR, r"^EXT[234]-fs \((?P<device>[^)]+)\): (?:Remounting filesystem "
       r"read-only|I/O error while writing superblock|ext4_\w+:\d+: .*error)",
       End.NONE, one_line=True),
    _s(Kind.FS_ERROR, r"^XFS \((?P<device>[^)]+)\): .*(?:[Cc]orruption|shut ?down"
       r"|I/O [Ee]rror|Metadata CRC error|xfs_do_force_shutdown)", End.NONE, one_line=True),
    _s(Kind.FS_ERROR, r"^BTRFS(?: critical| error|: error) \(device (?P<device>[^)]+)\)",
       End.NONE, one_line=True),
)

CUT_HERE_HEADLINES = re.compile(
    r"^(?:WARNING: |kernel BUG at |BUG: |UBSAN: |Oops|Internal error: )"
)
"""Lines that, after `cut here`, say what the report is (and are not a new one)."""

OOPS_BODY = re.compile(
    r"^(?:Oops|Internal error: Oops|invalid opcode: |#PF: |KASAN: (?:null-ptr-deref|maybe)"
    r"|general protection fault)"
)
"""Lines an oops or GPF prints after its first line that look like starts."""

JOIN_REASONS = re.compile(
    r"Fatal exception|Fatal machine check|Machine check|Hard LOCKUP|softlockup|hung_task"
    r"|[Oo]ut of memory|deadlocked on memory|panic_on_warn|panic_on_oops|RCU Stall"
    r"|rcu_sched|Oops|BUG|Fatal trap|kernel stack overflow|corrupted stack end"
)
"""Panic reasons that mean "because of the report just before": the panic is
then part of that incident (`fatal`), not one of its own."""

BODY = re.compile(
    r"""^(?:\s                                  # indented: frames, lock lists, dumps
    |CPU:\ \d+|Hardware\ name:|Modules\ linked\ in:|Tainted:|RIP:|EIP:|RSP:|ESP:
    |R[A-Z0-9]{2}:\ |E[A-Z]{2}:\ |FS:\ |GS:\ |CS:\ |DS:\ |CR[0-4]:|DR[0-7]:|Code:|PKRU:
    |Stack:|Call\ [Tt]race:|Backtrace:|stack\ backtrace:|\#PF:|PGD\ |P4D\ |PUD\ |PMD\x20
    |Workqueue:|Kernel\ Offset:|Sending\ NMI|NMI\ backtrace\ for\ cpu|task:\S+\s+state:
    |"echo\ 0\ >|pc\ :\ |lr\ :\ |sp\ :\ |pstate:\ |x\d+\s*:\ |Mem\ abort\ info:
    |Data\ abort\ info:|user\ pgtable:|\[[0-9a-f]+\]\ pgd=|Internal\ error:|Process\ .*\(pid:
    |irq\ event\ stamp:|hardirqs\ last|softirqs\ last|\d+\ locks?\ held\ by
    |Showing\ all\ locks\ held|INFO:\ lockdep\ is\ turned\ off|CR2:\ |ORIG_RAX
    |\S+\+0x[0-9a-f]+/0x[0-9a-f]+
    )""",
    re.X,
)
"""Lines of the register dumps and traces every report kind shares."""

KIND_BODY: dict[Kind, re.Pattern[str]] = {
    Kind.RCU_STALL: re.compile(r"^(?:rcu: |\t|\(detected by|\(t=|Task dump for CPU"
                               r"|\d+-\.\.\.|\s*\d+: \()"),
    Kind.MCE: re.compile(r"^(?:mce: |\[Hardware Error\]|EDAC )"),
    Kind.BUG: re.compile(r"^(?:Showing busy workqueues|workqueue |  pwq |pool \d+:|  in-flight:"
                         r"|  pending:|  inactive:)"),
}
"""Lines only some kinds print (for those without an end marker)."""

TRACE_LINE = re.compile(
    r"^\s*(?:Call [Tt]race:|Backtrace:|<(?:IRQ|/IRQ|TASK|NMI|/NMI|EOI|SOFTIRQ)>"
    r"|(?:\[<?[0-9a-f]+>?\]\s+)?(?:\?\s+)?[A-Za-z_.$][\w.$]*\+0x[0-9a-f]+/0x[0-9a-f]+)"
)

TASK_LINE = re.compile(r"\bCPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>\S+)")


_TRIGGER_PARTS: tuple[tuple[str, str], ...] = (
    ("cut here", ""), ("Kernel panic", ""), ("LOCKUP", ""), ("BUG", ""), ("INFO: ", ""),
    ("UBSAN", ""), ("general protection", ""), ("Oops", ""), ("Unable to handle", ""),
    ("Internal error", ""), ("invalid opcode", ""), ("WARNING: ", ""), ("oom-killer", ""),
    ("ut of memory", ""), ("Hardware Error", ""), ("NETDEV WATCHDOG", ""),
    (" error, dev ", ""), ("I/O error", ""), ("XFS (", ""),
    ("BTRFS", r"(?: critical| error|: error)"),
    ("-fs ", r"(?:error|critical|\([^)]*\): (?:Remounting|ext4_))"),
)
"""TRIGGER's alternatives: each a literal, and for the filesystems what must follow it."""

TRIGGER = re.compile("|".join(re.escape(literal) + rest for literal, rest in _TRIGGER_PARTS))
"""What every start contains: one search rules out the common line (a record
that starts nothing) before the STARTS are tried one by one. Literals, but for the
filesystems: `EXT4-fs (sda1): mounted filesystem` and `BTRFS info (device ...)` are
everyday lines, and what passes here takes the receiver's slow path. Keep in step
with STARTS (test_patterns_trigger_covers_every_start checks)."""
TRIGGER_LITERALS: tuple[bytes, ...] = tuple(literal.encode() for literal, _ in _TRIGGER_PARTS)
"""A TRIGGER match contains one of these, by construction: the express lane scans a
record for them in C and asks TRIGGER_BYTES only about a record that has one."""
TRIGGER_BYTES = re.compile(TRIGGER.pattern.encode())
"""The same, over a record's raw text (no decoding for the records that start nothing)."""


def match_start(line: str) -> tuple[Start, re.Match[str]] | None:
    """The first report start `line` matches, with its match."""
    if TRIGGER.search(line) is None:
        return None
    for start in STARTS:
        m = start.pattern.search(line)
        if m is not None:
            return start, m
    return None
