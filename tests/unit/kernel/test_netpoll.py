"""The netpoll support model: kernel hook requirement, driver history, evidence (§5)."""

from __future__ import annotations

from netconsole.kernel.netpoll import (
    DRIVER_HISTORY,
    DriverHook,
    KernelHook,
    Verdict,
    assess,
    driver_hook,
    kernel_hook,
    scan_kallsyms,
)
from netconsole.kernel.version import parse_release

OLD = parse_release("4.4.0-1072-aws")
NEW = parse_release("4.19.0")

ENA_KALLSYMS = [
    "ffffffff816f1a30 t netpoll_poll_dev",
    "ffffffffc0160000 t ena_com_reset_dev\t[ena]",
    "ffffffffc0161a40 t ena_start_xmit\t[ena]",
]


def test_kernel_hook_required_before_4_19() -> None:
    assert kernel_hook(OLD, None) is KernelHook.REQUIRED
    assert kernel_hook(NEW, None) is KernelHook.OPTIONAL
    assert kernel_hook(None, None) is KernelHook.UNKNOWN


def test_kernel_hook_backport_detected_by_export() -> None:
    syms = scan_kallsyms(["ffffffff8231a0b8 r __ksymtab_netpoll_poll_dev"], None)
    assert syms.netpoll_poll_dev_exported
    assert kernel_hook(OLD, syms) is KernelHook.OPTIONAL


def test_scan_kallsyms_static_netpoll_poll_dev_is_not_an_export() -> None:
    syms = scan_kallsyms(ENA_KALLSYMS, "ena")
    assert syms.netpoll_poll_dev_seen and not syms.netpoll_poll_dev_exported
    assert syms.driver_has_symbols and syms.driver_hooks == ()


def test_scan_kallsyms_finds_driver_hook() -> None:
    syms = scan_kallsyms([*ENA_KALLSYMS, "ffffffffc0162000 t ena_netpoll\t[ena]"], "ena")
    assert syms.driver_hooks == ("ena_netpoll",)


def test_driver_hook_ena_versions() -> None:
    assert driver_hook("ena", "2.0.1K", OLD, None).hook is DriverHook.ABSENT
    assert driver_hook("ena", "2.0.2g", OLD, None).hook is DriverHook.ABSENT
    assert driver_hook("ena", "1.6.0", OLD, None).hook is DriverHook.PRESENT
    assert driver_hook("ena", "1.5.0K", OLD, None).hook is DriverHook.PRESENT


def test_driver_hook_symbol_evidence_beats_table() -> None:
    syms = scan_kallsyms(["x t ena_netpoll\t[ena]"], "ena")
    assert driver_hook("ena", "2.0.1K", OLD, syms).hook is DriverHook.PRESENT


def test_driver_hook_in_tree_driver_on_old_kernel_is_unknown() -> None:
    a = driver_hook("mlx5_core", None, OLD, None)
    assert a.hook is DriverHook.UNKNOWN and a.removal is not None


def test_driver_history_covers_the_issue_list() -> None:
    for drv in ("ena", "mlx4_en", "mlx5_core", "ixgbe", "ixgbevf", "igb", "i40evf", "ice",
                "fm10k", "bnx2x", "bnxt_en", "nfp", "tun", "hv_netvsc", "hns", "ibmvnic",
                "bcmgenet", "stmmac"):
        assert drv in DRIVER_HISTORY
    assert DRIVER_HISTORY["mlx5_core"].commit == "9c29bcd189f4"
    assert DRIVER_HISTORY["mlx5_core"].kernel == (4, 19)


def test_assess_ena_2_on_4_4_is_unsupported() -> None:
    a = assess(kernel=OLD, driver="ena", driver_version="2.0.1K",
               symbols=scan_kallsyms(ENA_KALLSYMS, "ena"))
    assert a.verdict is Verdict.UNSUPPORTED and a.kernel is KernelHook.REQUIRED


def test_assess_ena_2_on_4_19_is_supported() -> None:
    a = assess(kernel=NEW, driver="ena", driver_version="2.0.1K", symbols=None)
    assert a.verdict is Verdict.SUPPORTED


def test_assess_disable_netpoll_kinds() -> None:
    a = assess(kernel=NEW, driver=None, driver_version=None, symbols=None, link_kind="netkit")
    assert a.verdict is Verdict.UNSUPPORTED and a.disable_netpoll


def test_assess_unknown_driver_on_old_kernel() -> None:
    a = assess(kernel=OLD, driver="mystery", driver_version=None, symbols=None)
    assert a.verdict is Verdict.UNKNOWN
