"""Call traces: frames, the culprit frame, normalised titles and fingerprints.

Pure functions over text lines. The formats are the kernel's own: x86
`show_trace_log_lvl` lines (` func+0x1a/0x20 [mod]`, `? ` for frames the
unwinder could not prove), the `RIP: 0010:func+0x11/0x30 [mod]` line of a
register dump, arm64 `pc : func+0x…` and `dump_backtrace` lines, and the old
`[<ffffffff81234567>] func+0x…` form.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from netconsole.incidents._model import Frame, Kind

_FRAME = re.compile(
    r"^\s*(?:\[<?[0-9a-f]+>?\]\s+)?(?P<unrel>\?\s+)?"
    r"(?P<func>[A-Za-z_.$][\w.$]*)\+(?P<off>0x[0-9a-f]+)/(?P<size>0x[0-9a-f]+)"
    r"(?:\s+\[(?P<mod>[\w-]+)\])?\s*$"
)
_RIP = re.compile(
    r"^(?:RIP: [0-9a-f]{4}:|EIP: [0-9a-f]{4}:|pc : |NIP \[[0-9a-f]+\] |epc : [0-9a-f]+ )"
    r"(?P<func>[A-Za-z_.$][\w.$]*)\+(?P<off>0x[0-9a-f]+)/(?P<size>0x[0-9a-f]+)"
    r"(?:\s+\[(?P<mod>[\w-]+)\])?"
)
_TRACE_START = re.compile(r"^(?:Call [Tt]race:|Backtrace:|stack backtrace:)\s*$")

_SUFFIX = re.compile(r"\.(?:cold|constprop|isra|part|llvm|lto_priv|localalias)(?:\.\d+)?")

_HELPER_NAMES = """
    dump_stack dump_stack_lvl show_stack show_regs __show_regs show_trace_log_lvl
    dump_backtrace sched_show_task show_state_filter print_stack_trace
    __warn warn_slowpath_fmt warn_slowpath_null report_bug handle_bug do_error_trap
    do_trap do_invalid_op die __die __die_body oops_end oops_begin page_fault_oops
    no_context __bad_area_nosemaphore bad_area_nosemaphore kernelmode_fixup_or_oops
    do_user_addr_fault do_kern_addr_fault handle_page_fault do_page_fault
    do_general_protection die_addr fixup_exception ex_handler_default
    panic nmi_panic vpanic check_panic_on_warn do_exit make_task_dead
    rewind_stack_and_make_dead
    nmi_cpu_backtrace nmi_trigger_cpumask_backtrace nmi_handle default_do_nmi
    watchdog_overflow_callback watchdog_timer_fn watchdog_hardlockup_check
    __perf_event_overflow perf_event_nmi_handler
    out_of_memory oom_kill_process dump_header __oom_kill_process
    __alloc_pages __alloc_pages_slowpath __alloc_pages_noprof alloc_pages_mpol
    alloc_pages_mpol_noprof __folio_alloc folio_alloc vma_alloc_folio
    __schedule schedule schedule_timeout schedule_preempt_disabled io_schedule
    io_schedule_timeout schedule_hrtimeout_range schedule_hrtimeout_range_clock
    __mutex_lock mutex_lock __mutex_lock_slowpath mutex_lock_nested
    rwsem_down_read_slowpath rwsem_down_write_slowpath down_read down_write
    wait_for_completion __wait_for_common wait_for_common bit_wait bit_wait_io
    __wait_on_bit out_of_line_wait_on_bit __wait_on_buffer wait_on_page_bit_common
    folio_wait_bit_common __wait_on_bit_lock out_of_line_wait_on_bit_lock __lock_buffer
    __schedule_bug msleep usleep_range_state __might_resched __might_sleep __might_fault
    __list_del_entry_valid __list_add_valid __list_del_entry_valid_or_report
    __list_add_valid_or_report
    handle_mm_fault __handle_mm_fault do_anonymous_page do_fault do_read_fault
    process_one_work worker_thread
    native_queued_spin_lock_slowpath queued_spin_lock_slowpath do_raw_spin_lock
    lock_acquire __lock_acquire lock_release print_circular_bug check_noncircular
    check_prev_add validate_chain
    kasan_report kasan_check_range __asan_load8 __asan_store8 print_report
    ubsan_epilogue
    rcu_dump_cpu_stacks print_cpu_stall rcu_sched_clock_irq update_process_times
    tick_sched_handle tick_sched_timer tick_nohz_highres_handler
    __hrtimer_run_queues hrtimer_interrupt handle_softirqs __do_softirq
    irq_exit_rcu __irq_exit_rcu common_interrupt
    ret_from_fork ret_from_fork_asm kthread do_syscall_64 do_syscall_x64
    x64_sys_call entry_SYSCALL_64_after_hwframe
"""
HELPERS_EXACT = frozenset(_HELPER_NAMES.split())
"""Functions that report, trap, schedule or lock for everyone: never the culprit."""

HELPER_PREFIXES = (
    "__pfx_", "exc_", "asm_exc_", "asm_sysvec_", "sysvec_", "__sysvec_", "_raw_spin_",
    "_raw_read_", "_raw_write_", "__raw_spin_", "kasan_", "__kasan_", "__ubsan_handle_",
    "ubsan_", "lockdep_", "__x64_sys_", "__arm64_sys_", "__do_sys_", "el0_", "el1_",
    "dump_stack", "arch_stack_walk", "stack_trace_", "__hrtimer_", "hrtimer_",
)

TOP_FRAMES = 5
"""Reliable non-helper function names a fingerprint keeps: enough to tell two
crashes in one function apart by their callers, few enough that a change deep
in the syscall path does not split one crash into many."""


def base_name(function: str) -> str:
    """The symbol without compiler suffixes (`.cold`, `.constprop.0`, `.isra.0`, ...)."""
    return _SUFFIX.split(function, maxsplit=1)[0]


def is_helper(function: str) -> bool:
    name = base_name(function)
    return name in HELPERS_EXACT or name.startswith(HELPER_PREFIXES)


def parse_frame(line: str, *, section: int = 0) -> Frame | None:
    """A trace line as a Frame, or None when the line is not a frame."""
    m = _FRAME.match(line)
    if m is None:
        return None
    return Frame(
        function=m["func"],
        offset=int(m["off"], 16),
        size=int(m["size"], 16),
        module=m["mod"],
        reliable=m["unrel"] is None,
        section=section,
    )


def parse_rip(line: str) -> Frame | None:
    """The kernel function of a `RIP: 0010:func+0x…` (or arm64 `pc : `) line.

    User-space RIPs (`RIP: 0033:0x47fbe9`) have no symbol and give None.
    """
    m = _RIP.match(line.strip())
    if m is None:
        return None
    return Frame(function=m["func"], offset=int(m["off"], 16), size=int(m["size"], 16),
                 module=m["mod"], rip=True)


def is_trace_start(line: str) -> bool:
    return _TRACE_START.match(line.strip()) is not None


def parse_frames(lines: Iterable[str]) -> tuple[Frame, ...]:
    """Every frame of a report, numbering the traces it contains.

    A new section starts at a `Call Trace:` or after a `</TASK>` once the
    current section has frames (KASAN's "Allocated by task" stack, the NMI
    backtraces of other CPUs). `RIP:` lines give `rip=True` frames in the
    section they appear in. When a lockdep `stack backtrace:` is present, its
    trace is section 0 (the dependency chains before it come after).
    """
    out: list[Frame] = []
    section = 0
    seen_in_section = False
    closed = False
    main: int | None = None
    for line in lines:
        stripped = line.strip()
        if is_trace_start(line) or (closed and seen_in_section):
            if seen_in_section:
                section += 1
                seen_in_section = False
            closed = False
            if stripped == "stack backtrace:":
                main = section
            if is_trace_start(line):
                continue
        if stripped == "</TASK>":
            closed = True
            continue
        frame = parse_frame(line, section=section)
        if frame is not None:
            out.append(frame)
            seen_in_section = True
            continue
        rip = parse_rip(line)
        if rip is not None:  # belongs to the trace that follows (or contains) it
            out.append(Frame(function=rip.function, offset=rip.offset, size=rip.size,
                             module=rip.module, section=section, rip=True))
    if main:
        out = [Frame(function=f.function, offset=f.offset, size=f.size, module=f.module,
                     reliable=f.reliable, rip=f.rip,
                     section=0 if f.section == main else f.section + (f.section < main))
               for f in out]
    return tuple(out)


def _first_section(frames: Sequence[Frame]) -> list[Frame]:
    return [f for f in frames if f.section == 0]


def culprit(frames: Sequence[Frame]) -> Frame | None:
    """The frame a person would blame.

    The faulting `RIP:` function if it is not a generic helper (a WARN's or an
    oops's own function); else the first reliable trace frame that is not a
    helper (a panic's caller, the driver a hung task waits in). Only the
    first trace counts: later ones are other CPUs or allocation stacks.
    """
    first = _first_section(frames)
    rips = [f for f in first if f.rip]
    if rips and not is_helper(rips[0].function):
        return rips[0]
    for f in first:
        if not f.rip and f.reliable and not is_helper(f.function):
            return f
    return None


def top_functions(frames: Sequence[Frame], n: int = TOP_FRAMES) -> list[str]:
    """The culprit and the reliable non-helper callers after it, without suffixes."""
    out: list[str] = []
    lead = culprit(frames)
    if lead is not None:
        out.append(base_name(lead.function))
    for f in _first_section(frames):
        if len(out) >= n:
            break
        if f.rip or not f.reliable or is_helper(f.function):
            continue
        name = base_name(f.function)
        if out and out[-1] == name:
            continue
        if f is not lead:
            out.append(name)
    return out[:n]


_OFFSETS = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+")
_CPU_PID = re.compile(r"\b(?:CPU|PID|UID): \d+\s*")
_DECIMAL = re.compile(r"(?<![A-Za-z_])\d+")
_SPACES = re.compile(r"\s+")


def normalise_title(title: str) -> str:
    """A title without what differs between hosts, boots and layouts.

    Drops `CPU: n PID: n` and `+0xoff/0xsize`, writes addresses and hex words
    as `X` and decimal numbers as `N` (but keeps digits inside names such as
    `ext4`, `sda1`, `do_syscall_64`).
    """
    text = _OFFSETS.sub("", title)
    text = _CPU_PID.sub("", text)
    text = re.sub(r"\b(?:0x)?[0-9a-fA-F]{8,}\b", "X", text)
    text = re.sub(r"\b0x[0-9a-fA-F]+\b", "X", text)
    text = _DECIMAL.sub("N", text)
    return _SPACES.sub(" ", text).strip()


def fingerprint(kind: Kind, title: str, frames: Sequence[Frame]) -> str:
    """16 hex digits naming "the same crash" across hosts, boots and KASLR."""
    parts = [kind.value, normalise_title(title), *top_functions(frames)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
