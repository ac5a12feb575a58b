"""The corpus: real kernel captures and reports in real kernel formats, each
becoming exactly the incidents a person would count, with the right title and
culprit.

Expected lists were written by reading each capture's `*.console.log`:
crash.pcap (6.12) is a WARN in labtrig_init, sysrq l and t (operator
requested dumps: no incident), a NULL dereference in do_oops that kills
insmod, and a sysrq c panic; panic.pcap is one sysrq c panic with its trace;
sysdata.pcap (7.2) is a sysrq t dump: nothing.
"""

from __future__ import annotations

import pytest

from netconsole.incidents import Kind, Severity, SilenceReason
from tests.helpers import KERNELS, SCENARIOS, capture, decode_capture
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import drive, lines_to_records

K612 = "6.12.117+deb12-amd64"
K72 = "7.2.13+deb14-amd64"


def _culprit(incident: object) -> tuple[str, str | None] | None:
    c = getattr(incident, "culprit", None)
    return (c.function, c.module) if c is not None else None


def test_corpus_crash_capture_is_a_warn_an_oops_and_a_panic() -> None:
    run = drive(decode_capture(capture(K612, "crash")), settle=60)
    got = [(i.kind, i.title, _culprit(i), i.task, i.truncated) for i in run.closed]
    assert got == [
        (Kind.WARNING, "WARNING: CPU: 1 PID: 160 at /usr/src/netconsole-lab/tr/labtrig.c:98 "
         "labtrig_init+0x2e7/0xff0 [labtrig]", ("labtrig_init", "labtrig"), "insmod[160]",
         False),
        (Kind.OOPS, "BUG: kernel NULL pointer dereference, address: 0000000000000000",
         ("do_oops", "labtrig"), "insmod[164]", False),
        (Kind.PANIC, "Kernel panic - not syncing: sysrq triggered crash", None, None, False),
    ]
    warn, oops, panic = run.closed
    assert warn.text.startswith("------------[ cut here ]------------\n"
                                "labtrig: deliberate WARN for netconsole lab\nWARNING:")
    assert warn.text.endswith("---[ end trace 0000000000000000 ]---")
    assert warn.severity is Severity.WARNING and oops.severity is Severity.CRITICAL
    assert "Oops: Oops: 0002 [#1] PREEMPT SMP NOPTI" in oops.text
    # the register dump the oops repeats after its end marker is part of it
    assert oops.text.endswith("CR2: ffffffffc03cdff7 CR3: 00000000025be000 CR4: 00000000000006f0")
    assert panic.text.endswith("Rebooting in 1 seconds..")
    assert (oops.first_seq, oops.last_seq) == (1557, 1624)
    # sysrq l/t dumps are not incidents; the host went silent after its panic
    assert [(s.reason, s.incident) for s in run.silences] == [
        (SilenceReason.AFTER_CRASH, panic.key)]


def test_corpus_panic_capture_is_one_panic_with_its_culprit() -> None:
    run = drive(decode_capture(capture(K612, "panic")), settle=60)
    assert len(run.closed) == 1
    panic = run.closed[0]
    assert panic.kind is Kind.PANIC and panic.severity is Severity.CRITICAL
    assert panic.title == "Kernel panic - not syncing: sysrq triggered crash"
    assert _culprit(panic) == ("sysrq_handle_crash", None)
    assert panic.release == "6.12.117+deb12-amd64"
    assert panic.task == "init[1]" and not panic.truncated
    assert [f.function for f in panic.frames if f.reliable][:3] == [
        "panic", "sysrq_handle_crash", "__handle_sysrq"]
    assert run.silences[0].reason is SilenceReason.AFTER_CRASH


@pytest.mark.parametrize(("kernel", "scenario"),
                         [s for s in SCENARIOS if s[1] not in ("crash", "panic")])
def test_corpus_captures_without_a_crash_have_no_incident(kernel: str, scenario: str) -> None:
    """Boot logs, module records, sysrq t dumps (7.2 sysdata), bursts: nothing to count."""
    run = drive(decode_capture(capture(kernel, scenario)), settle=None)
    assert run.incident_events == []


def test_corpus_knows_both_kernels() -> None:
    assert K612 in KERNELS and K72 in KERNELS


# -- synthetic reports, in the formats the kernel prints --------------------------------

SYNTHETIC = [
    # (report, kind, title, culprit (function, module), fatal)
    (reports.HUNG_TASK, Kind.HUNG_TASK,
     "INFO: task kworker/u4:1:57 blocked for more than 120 seconds.",
     ("do_get_write_access", "jbd2"), False),
    (reports.OOM, Kind.OOM, "Out of memory: Killed process 1234 (stress)", None, False),
    (reports.RCU_STALL, Kind.RCU_STALL, "rcu: INFO: rcu_preempt self-detected stall on CPU",
     ("spin_forever", "spinmod"), False),
    (reports.SOFT_LOCKUP, Kind.SOFT_LOCKUP,
     "watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [spin:312]",
     ("spin_forever", "spinmod"), False),
    (reports.HARD_LOCKUP, Kind.HARD_LOCKUP, "watchdog: Watchdog detected hard LOCKUP on cpu 1",
     ("foo_irq_handler", "foo"), True),
    (reports.MCE, Kind.MCE,
     "mce: [Hardware Error]: CPU 2: Machine Check Exception: 5 Bank 4: b200000000070f0f",
     None, True),
    (reports.GPF, Kind.GPF, "general protection fault, probably for non-canonical address "
     "0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI", ("mlx5e_free_rx_descs", "mlx5_core"),
     True),
    (reports.KASAN, Kind.KASAN,
     "BUG: KASAN: slab-use-after-free in nfc_llcp_find_local+0x2d/0x90 [nfc]",
     ("nfc_llcp_find_local", "nfc"), False),
    (reports.UBSAN, Kind.UBSAN,
     "UBSAN: array-index-out-of-bounds in drivers/net/wireless/foo/ie.c:1234:19",
     ("foo_parse_ie", "foo"), False),
    (reports.LOCKDEP, Kind.LOCKDEP, "WARNING: possible circular locking dependency detected",
     ("foo_reset", "foo"), False),
    (reports.KERNEL_BUG, Kind.OOPS, "kernel BUG at fs/ext4/inode.c:2786!",
     ("ext4_writepages", "ext4"), False),
    (reports.SCHED_ATOMIC, Kind.BUG, "BUG: scheduling while atomic: insmod/1234/0x00000002",
     ("foo_init", "foo"), False),
    (reports.NETDEV_WATCHDOG_WARN, Kind.NETDEV_WATCHDOG,
     "NETDEV WATCHDOG: eth0 (e1000e): transmit queue 0 timed out", ("dev_watchdog", None),
     False),
    (reports.warn(), Kind.WARNING, "WARNING: CPU: 1 PID: 160 at drivers/net/foo/foo_main.c:98 "
     "foo_tx+0x2e7/0x2a0 [foo]", ("foo_tx", "foo"), False),
]


@pytest.mark.parametrize(("text", "kind", "title", "culprit", "fatal"), SYNTHETIC,
                         ids=[s[1].value + ("-warn" if "cut here" in s[0] else "")
                              for s in SYNTHETIC])
def test_corpus_synthetic_report_is_one_incident(text: str, kind: Kind, title: str,
                                                 culprit: tuple[str, str | None] | None,
                                                 fatal: bool) -> None:
    records = lines_to_records(text)
    after = lines_to_records("systemd[1]: Started foo.service.", seq=900, t=records[-1].received
                             + 0.01)
    run = drive([*records, *after])
    assert [(i.kind, i.title, _culprit(i), i.fatal) for i in run.closed] == [
        (kind, title, culprit, fatal)]
    incident = run.closed[0]
    assert not incident.truncated
    assert "Started foo.service" not in incident.text
    assert incident.text.strip() in text.strip() or fatal or kind is Kind.KASAN


def test_corpus_oom_report_keeps_the_whole_memory_dump() -> None:
    run = drive(lines_to_records(reports.OOM))
    (oom,) = run.closed
    assert oom.text == reports.OOM
    assert oom.lines == len(reports.OOM.split("\n"))
    assert oom.first_seq == 100 and oom.last_seq == 100 + oom.lines - 1


def test_corpus_fatal_reports_end_with_their_panic() -> None:
    for report in (reports.GPF, reports.MCE, reports.HARD_LOCKUP):
        (incident,) = drive(lines_to_records(report)).closed
        assert incident.fatal and incident.severity is Severity.CRITICAL
        assert incident.text.endswith("]---") and "Kernel panic - not syncing" in incident.text


@pytest.mark.parametrize(("text", "kind", "title", "count"), [
    (reports.EXT4_ERRORS, Kind.FS_ERROR, "EXT4-fs error (device sda1): ext4_find_entry:1580: "
     "inode #2: comm ls: reading directory lblock 0", 3),
    (reports.XFS_ERROR, Kind.FS_ERROR, "XFS (dm-0): Metadata corruption detected at "
     "xfs_dinode_verify+0xa0/0x6f0 [xfs], inode 0x4a1 dinode", 1),
    (reports.BTRFS_ERROR, Kind.FS_ERROR, "BTRFS error (device nvme0n1p2): bdev /dev/nvme0n1p2 "
     "errs: wr 0, rd 1, flush 0, corrupt 0, gen 0", 1),
    (reports.IO_ERRORS, Kind.IO_ERROR, "I/O error, dev sdb, sector 2048 op 0x0:(READ) flags "
     "0x80700 phys_seg 1 prio class 2", 3),
    (reports.NETDEV_WATCHDOG, Kind.NETDEV_WATCHDOG, "virtio_net virtio0 eth0: NETDEV WATCHDOG: "
     "CPU: 1: transmit queue 0 timed out 5120 ms", 1),
], ids=["ext4", "xfs", "btrfs", "io", "netdev"])
def test_corpus_one_line_errors_coalesce_per_device(text: str, kind: Kind, title: str,
                                                    count: int) -> None:
    run = drive(lines_to_records(text))
    assert [(i.kind, i.title, i.count) for i in run.closed] == [(kind, title, count)]
