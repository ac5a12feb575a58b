"""Frames, culprits, normalised titles and fingerprints."""

from __future__ import annotations

from netconsole.incidents import (
    Frame,
    Kind,
    culprit,
    fingerprint,
    is_helper,
    normalise_title,
    parse_frame,
    parse_frames,
)
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import OTHER, drive, lines_to_records


def test_parse_frame_reads_function_offsets_module_and_reliability() -> None:
    assert parse_frame(" ? __pfx_labtrig_init+0x10/0x10 [labtrig]") == Frame(
        function="__pfx_labtrig_init", offset=0x10, size=0x10, module="labtrig", reliable=False)
    assert parse_frame(" __handle_sysrq.cold+0xba/0x1b9") == Frame(
        function="__handle_sysrq.cold", offset=0xBA, size=0x1B9)
    assert parse_frame(" [<ffffffff8100d0c2>] intel_idle+0x87/0x130") == Frame(
        function="intel_idle", offset=0x87, size=0x130)
    assert parse_frame("RIP: 0033:0x47fbe9") is None
    assert parse_frame(" <TASK>") is None


def test_parse_frames_marks_rip_and_numbers_sections() -> None:
    frames = parse_frames(reports.KASAN.split("\n"))
    assert [f.function for f in frames if f.section == 0][:4] == [
        "dump_stack_lvl", "print_report", "kasan_report", "nfc_llcp_find_local"]
    assert {f.section for f in frames} == {0, 1}  # the allocation/free stacks come after
    rip = [f for f in parse_frames(reports.SOFT_LOCKUP.split("\n")) if f.rip]
    assert [(f.function, f.module) for f in rip] == [("spin_forever", "spinmod")]


def test_parse_frames_puts_lockdeps_stack_backtrace_first() -> None:
    frames = parse_frames(reports.LOCKDEP.split("\n"))
    assert [f.function for f in frames if f.section == 0][:6] == [
        "dump_stack_lvl", "check_noncircular", "__lock_acquire", "lock_acquire",
        "__mutex_lock", "foo_reset"]


def test_culprit_skips_reporting_and_locking_helpers() -> None:
    assert is_helper("__warn") and is_helper("asm_exc_invalid_op") and is_helper("schedule")
    assert is_helper("__pfx_foo") and is_helper("oom_kill_process.cold")
    assert not is_helper("ext4_writepages")
    frames = parse_frames(reports.HARD_LOCKUP.split("\n"))
    c = culprit(frames)
    assert c is not None and (c.function, c.module) == ("foo_irq_handler", "foo")


def test_culprit_is_none_when_every_frame_is_generic() -> None:
    assert culprit(parse_frames(reports.OOM.split("\n"))) is None
    assert culprit(()) is None


def test_normalise_title_drops_numbers_addresses_and_offsets() -> None:
    assert normalise_title(
        "WARNING: CPU: 1 PID: 160 at drivers/net/foo/foo_main.c:98 foo_tx+0x2e7/0x2a0 [foo]"
    ) == "WARNING: at drivers/net/foo/foo_main.c:N foo_tx [foo]"
    assert normalise_title("BUG: unable to handle page fault for address: ffffc90000a3b000") \
        == "BUG: unable to handle page fault for address: X"
    assert normalise_title("watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:99]") \
        == "watchdog: BUG: soft lockup - CPU#N stuck for Ns! [kworker/N:N:N]"
    assert normalise_title("EXT4-fs error (device sda1): ext4_lookup:1855: inode #2") \
        == "EXT4-fs error (device sda1): ext4_lookup:N: inode #N"


def _only(text: str, **kw: object) -> object:
    (incident,) = drive(lines_to_records(text, **kw)).closed  # type: ignore[arg-type]
    return incident


def test_fingerprint_is_stable_across_hosts_boots_and_address_layout() -> None:
    a = _only(reports.warn(cpu=1, pid=160, comm="insmod", line=98, off="2e7",
                           addr="c04dfe90"))
    b = _only(reports.warn(cpu=3, pid=4242, comm="kworker/3:1", line=98, off="2e7",
                           addr="d1e2f3a4"), sender=OTHER, seq=77, release="6.1.0-19-amd64")
    assert a.fingerprint == b.fingerprint  # type: ignore[attr-defined]
    assert a.title != b.title  # type: ignore[attr-defined]


def test_fingerprint_differs_for_a_different_crash() -> None:
    a = _only(reports.warn())
    other_site = _only(reports.warn().replace("foo_xmit", "foo_poll"))
    other_kind = _only(reports.SOFT_LOCKUP)
    assert len({a.fingerprint, other_site.fingerprint,  # type: ignore[attr-defined]
                other_kind.fingerprint}) == 3  # type: ignore[attr-defined]


def test_fingerprint_ignores_compiler_suffixes_and_offsets() -> None:
    frames_a = (Frame(function="foo.cold", offset=1, size=2), Frame(function="bar"))
    frames_b = (Frame(function="foo", offset=9, size=9), Frame(function="bar.isra.0"))
    assert fingerprint(Kind.OOPS, "Oops", frames_a) == fingerprint(Kind.OOPS, "Oops", frames_b)
    assert fingerprint(Kind.OOPS, "Oops", frames_a) != fingerprint(Kind.BUG, "Oops", frames_a)
