"""Can netpoll drive this device on this kernel? (kernel-netconsole.md §5)

Two facts decide it:

1. **The kernel.** Up to 4.18, `__netpoll_setup` refuses a device whose driver has
   no `ndo_poll_controller` (`<dev> doesn't support polling, aborting`, -ENOTSUPP =
   524, "Unknown error 524" in userspace). Commit ac3d9dd034e5 (4.19) made the
   hook optional: netpoll polls the NAPI contexts itself. Distribution kernels
   may carry that backport; the evidence is `netpoll_poll_dev` being exported
   (`__ksymtab_netpoll_poll_dev` or a global `T` symbol in /proc/kallsyms), since
   the same commit exported it for bonding.
2. **The driver.** After 4.19 many NAPI drivers dropped the hook (the Sept 2018
   series and later removals in `DRIVER_HISTORY`). Out-of-tree and backported
   drivers (Amazon's ENA 2.x) dropped it too, even on old kernels: that pairing is
   the case that fails. Direct evidence beats the table: a `*_netpoll` or
   `*_poll_controller` symbol of the driver's module in /proc/kallsyms.

From 4.19 on, only `IFF_DISABLE_NETPOLL` (bond teardown, netkit, HSR/PRP, nfp
representors) gives the same error.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from netconsole.kernel.version import KernelVersion, parse_version_number

OPTIONAL_HOOK_SINCE = (4, 19)
OPTIONAL_HOOK_COMMIT = "ac3d9dd034e5"
ENOTSUPP = 524


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverRemoval:
    """When a driver dropped `ndo_poll_controller`."""

    driver: str
    """Module name as in /sys/class/net/<if>/device/driver."""
    kernel: tuple[int, int]
    """First mainline kernel without the hook."""
    commit: str
    """The commit (hash or subject) that removed it."""
    out_of_tree_from: tuple[int, ...] | None = None
    """Driver version (MODULE_VERSION) from which the hook is gone, for drivers also
    shipped out of tree or backported with their own version numbers."""
    confirmed: bool = True
    """False where the reference marks the kernel version [U]."""


# §5.2: the Sept 2018 series (committed 2018-09-23, in 4.19) and later removals.
DRIVER_HISTORY: dict[str, DriverRemoval] = {
    r.driver: r
    for r in (
        DriverRemoval(driver="ixgbe", kernel=(4, 19), commit="ixgbe: remove ndo_poll_controller"),
        DriverRemoval(driver="ixgbevf", kernel=(4, 19), commit="6f5d941ebade"),
        DriverRemoval(driver="fm10k", kernel=(4, 19), commit="dda9d57e2d42"),
        DriverRemoval(driver="ixgb", kernel=(4, 19), commit="ixgb: remove ndo_poll_controller"),
        DriverRemoval(driver="igb", kernel=(4, 19), commit="0542997edece"),
        DriverRemoval(driver="ice", kernel=(4, 19), commit="158a08a694c4"),
        DriverRemoval(driver="i40evf", kernel=(4, 19), commit="1aa28fb98368"),
        DriverRemoval(driver="iavf", kernel=(4, 19), commit="1aa28fb98368 (as i40evf)"),
        DriverRemoval(driver="mlx4_en", kernel=(4, 19), commit="a24b66c249f7"),
        DriverRemoval(driver="mlx4_core", kernel=(4, 19), commit="a24b66c249f7"),
        DriverRemoval(driver="mlx5_core", kernel=(4, 19), commit="9c29bcd189f4"),
        DriverRemoval(driver="bnx2x", kernel=(4, 19), commit="bnx2x: remove ndo_poll_controller"),
        DriverRemoval(driver="bnxt_en", kernel=(4, 19), commit="58e0e22bff63"),
        DriverRemoval(driver="nfp", kernel=(4, 19), commit="0825ce70318e"),
        DriverRemoval(driver="tun", kernel=(4, 19), commit="765cdc209cb8"),
        DriverRemoval(driver="hv_netvsc", kernel=(4, 19), commit="2a7f8c3b1d3f"),
        DriverRemoval(driver="hns", kernel=(4, 19), commit="4bd2c03be707"),
        DriverRemoval(driver="hns_enet_drv", kernel=(4, 19), commit="4bd2c03be707"),
        DriverRemoval(driver="ena", kernel=(4, 19), commit="net: ena: remove ndo_poll_controller",
                      out_of_tree_from=(2, 0)),
        DriverRemoval(driver="ibmvnic", kernel=(4, 19),
                      commit="ibmvnic: remove ndo_poll_controller"),
        DriverRemoval(driver="hns3", kernel=(4, 19), commit="second Sept 2018 batch",
                      confirmed=False),
        DriverRemoval(driver="sfc", kernel=(4, 19), commit="second Sept 2018 batch",
                      confirmed=False),
        DriverRemoval(driver="qlcnic", kernel=(4, 19), commit="second Sept 2018 batch",
                      confirmed=False),
        DriverRemoval(driver="genet", kernel=(6, 7), commit="19537e125cc7 (bcmgenet)",
                      confirmed=False),
        DriverRemoval(driver="bcmgenet", kernel=(6, 7), commit="19537e125cc7",
                      confirmed=False),
        DriverRemoval(driver="stmmac", kernel=(6, 6), commit="stmmac: remove "
                      "ndo_poll_controller (Oct 2023, stable 5.15+)", confirmed=False),
        DriverRemoval(driver="stmmac_pci", kernel=(6, 6), commit="stmmac (Oct 2023)",
                      confirmed=False),
        DriverRemoval(driver="stmmac_platform", kernel=(6, 6), commit="stmmac (Oct 2023)",
                      confirmed=False),
    )
}

# §5.3: devices that set IFF_DISABLE_NETPOLL, by rtnetlink link kind.
DISABLE_NETPOLL_KINDS = frozenset({"netkit", "hsr", "prp"})
# Stacked devices that pass netpoll down to their lower devices (§5.1 step 5b).
STACKED_KINDS = frozenset({"bond", "team", "bridge", "vlan", "macvlan"})


class Verdict(enum.Enum):
    SUPPORTED = "supported"
    UNSUPPORTED = "unsupported"
    UNKNOWN = "unknown"


class KernelHook(enum.Enum):
    """Does the running kernel require `ndo_poll_controller`?"""

    REQUIRED = "required"
    """≤4.18 without the backport."""
    OPTIONAL = "optional"
    """4.19+, or the backport is present."""
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Symbols:
    """What /proc/kallsyms says (None: kallsyms not available)."""

    netpoll_poll_dev_exported: bool | None = None
    """`__ksymtab_netpoll_poll_dev` or a global `netpoll_poll_dev` seen."""
    netpoll_poll_dev_seen: bool | None = None
    driver_hooks: tuple[str, ...] = ()
    """Poll-controller symbols of the driver (e.g. `ena_netpoll`)."""
    driver_has_symbols: bool | None = None
    """True when kallsyms lists any symbol of the driver's module."""


_HOOK_SYMBOL = re.compile(r"(netpoll|poll_controller)")


def scan_kallsyms(lines: list[str], driver: str | None) -> Symbols:
    """Extract the netpoll evidence from kallsyms lines (`addr type name [module]`).

    Args:
        lines: kallsyms text lines (a filtered subset is fine).
        driver: the module of the interface's driver, or None.
    """
    exported: bool | None = False
    seen = False
    hooks: list[str] = []
    has_driver = False
    prefix = None if driver is None else driver.split("_")[0]
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        typ, name = parts[1], parts[2]
        module = parts[3].strip("[]") if len(parts) > 3 else None
        if name in ("__ksymtab_netpoll_poll_dev", "__kstrtab_netpoll_poll_dev"):
            exported = True
        if name == "netpoll_poll_dev":
            seen = True
            if typ == "T":
                exported = True
        if driver is None:
            continue
        # Module symbols carry `[module]`; a built-in driver's symbols do not, so
        # for those only a name prefix can tie a hook to the driver.
        mine = module == driver if module else (prefix is not None and
                                                name.startswith(prefix + "_"))
        if mine and module:
            has_driver = True
        if mine and _HOOK_SYMBOL.search(name) and not name.startswith("__"):
            hooks.append(name)
    return Symbols(
        netpoll_poll_dev_exported=exported,
        netpoll_poll_dev_seen=seen,
        driver_hooks=tuple(hooks),
        driver_has_symbols=has_driver if driver is not None else None,
    )


def kernel_hook(version: KernelVersion | None, symbols: Symbols | None) -> KernelHook:
    """Whether the kernel needs the driver's `ndo_poll_controller`."""
    if version is not None and version.at_least(*OPTIONAL_HOOK_SINCE):
        return KernelHook.OPTIONAL
    if symbols is not None and symbols.netpoll_poll_dev_exported:
        return KernelHook.OPTIONAL  # the 4.19 change was backported
    if version is not None:
        return KernelHook.REQUIRED
    return KernelHook.UNKNOWN


class DriverHook(enum.Enum):
    PRESENT = "present"
    ABSENT = "absent"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class DriverAssessment:
    hook: DriverHook
    reason: str
    removal: DriverRemoval | None = None


def driver_hook(
    driver: str | None,
    driver_version: str | None,
    kernel: KernelVersion | None,
    symbols: Symbols | None,
) -> DriverAssessment:
    """Does the driver provide `ndo_poll_controller`? Evidence first, then the table."""
    removal = DRIVER_HISTORY.get(driver) if driver else None
    if symbols is not None and symbols.driver_hooks:
        return DriverAssessment(
            hook=DriverHook.PRESENT, removal=removal,
            reason=f"kallsyms lists {', '.join(symbols.driver_hooks)}")
    if removal is not None and removal.out_of_tree_from is not None and driver_version:
        num = parse_version_number(driver_version)
        if num is not None and num >= removal.out_of_tree_from:
            since = ".".join(map(str, removal.out_of_tree_from))
            return DriverAssessment(
                hook=DriverHook.ABSENT, removal=removal,
                reason=f"{driver} {driver_version} is ≥ {since}, the version that removed "
                "ndo_poll_controller")
        if num is not None:
            return DriverAssessment(
                hook=DriverHook.PRESENT, removal=removal,
                reason=f"{driver} {driver_version} predates the removal of "
                "ndo_poll_controller")
    if symbols is not None and symbols.driver_has_symbols:
        return DriverAssessment(
            hook=DriverHook.ABSENT, removal=removal,
            reason=f"kallsyms lists symbols of {driver} but no *_netpoll/*_poll_controller "
            "function (heuristic: the hook may have another name)")
    if removal is not None and kernel is not None and kernel.at_least(*removal.kernel):
        return DriverAssessment(
            hook=DriverHook.ABSENT, removal=removal,
            reason=f"{driver} dropped ndo_poll_controller in {removal.kernel[0]}."
            f"{removal.kernel[1]} ({removal.commit})")
    if removal is not None:
        return DriverAssessment(
            hook=DriverHook.UNKNOWN, removal=removal,
            reason=f"{driver} had the hook before {removal.kernel[0]}.{removal.kernel[1]}; "
            "a distribution backport may have removed it")
    return DriverAssessment(hook=DriverHook.UNKNOWN, reason="no knowledge of this driver")


@dataclass(frozen=True, slots=True, kw_only=True)
class NetpollAssessment:
    verdict: Verdict
    kernel: KernelHook
    driver: DriverAssessment
    disable_netpoll: bool = False
    reasons: tuple[str, ...] = ()


def assess(
    *,
    kernel: KernelVersion | None,
    driver: str | None,
    driver_version: str | None,
    symbols: Symbols | None,
    link_kind: str | None = None,
) -> NetpollAssessment:
    """Combine kernel and driver facts into one verdict for one device."""
    khook = kernel_hook(kernel, symbols)
    dhook = driver_hook(driver, driver_version, kernel, symbols)
    reasons: list[str] = []
    if link_kind in DISABLE_NETPOLL_KINDS:
        return NetpollAssessment(
            verdict=Verdict.UNSUPPORTED, kernel=khook, driver=dhook, disable_netpoll=True,
            reasons=(f"{link_kind} devices set IFF_DISABLE_NETPOLL",))
    if khook is KernelHook.OPTIONAL:
        reasons.append("this kernel does not need ndo_poll_controller (4.19+ or backport)")
        return NetpollAssessment(verdict=Verdict.SUPPORTED, kernel=khook, driver=dhook,
                                 reasons=tuple(reasons))
    if dhook.hook is DriverHook.PRESENT:
        verdict = Verdict.SUPPORTED
    elif dhook.hook is DriverHook.ABSENT and khook is KernelHook.REQUIRED:
        verdict = Verdict.UNSUPPORTED
    else:
        verdict = Verdict.UNKNOWN
    reasons.append(dhook.reason)
    return NetpollAssessment(verdict=verdict, kernel=khook, driver=dhook, reasons=tuple(reasons))
