"""Remedies 4 and 5 of the netpoll case as files (kernel-netconsole.md §5.4).

Remedy 5 is `np_shim`, a module that gives one device a copy of its
`net_device_ops` with an empty `ndo_poll_controller`; remedy 4 is a patch that
adds the same empty hook to Amazon's out-of-tree ENA driver. Both only matter on
a kernel that still requires the hook (< 4.19 without the backport) and for a
device whose driver lacks it; `assess` says whether that is the case, and why
not, from the same netpoll model the doctor uses. `bundle` gives the files to
write: the shipped `np_shim.c` and `Makefile` (package data in
`netconsole/data/np_shim/`), a README of caveats naming the device, and, on
request, the ENA patch and its steps.

No I/O here but reading the package's own data: the command
(`netconsole shim write`, cli/shim.py) reads the host, writes, builds and loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from netconsole.kernel import netpoll
from netconsole.kernel.version import KernelVersion, parse_version_number

MODULE = "np_shim"
SHIPPED = ("np_shim.c", "Makefile")
ENA_PATCH = "ena_netpoll.patch"
ENA_STEPS = "ENA-REBUILD.md"
README = "README"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShimCase:
    """What is known about the device and the kernel the module is meant for."""

    device: str
    kernel: KernelVersion | None
    """The running kernel of the host in question (None: unknown)."""
    exists: bool | None = None
    kind: str | None = None
    """rtnetlink link kind (`hsr`, `netkit`, ...); None for a NIC."""
    driver: str | None = None
    driver_version: str | None = None
    symbols: netpoll.Symbols | None = None
    build_release: str | None = None
    """The release of the headers the module is built against (`--kdir`)."""
    build_has_poll_controller: bool | None = None
    """CONFIG_NET_POLL_CONTROLLER=y in those headers' .config."""
    loaded: bool | None = None
    """np_shim is loaded already."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """Why the shim does not apply; `--force` writes (and builds, loads) all the same."""

    code: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ShimVerdict:
    applies: bool
    reasons: tuple[Reason, ...]
    """Why it does not apply (empty when it does)."""
    notes: tuple[str, ...]
    """What the verdict rests on, for the person reading it."""


def describe_driver(case: ShimCase) -> str:
    """`ena 2.0.1K`, for messages."""
    return " ".join(x for x in (case.driver, case.driver_version) if x) or "unknown driver"


def assess(case: ShimCase) -> ShimVerdict:
    """Does giving `case.device` an empty ndo_poll_controller fix netpoll on this kernel?"""
    a = netpoll.assess(kernel=case.kernel, driver=case.driver,
                       driver_version=case.driver_version, symbols=case.symbols,
                       link_kind=case.kind)
    reasons: list[Reason] = []
    notes: list[str] = []
    dev, kver = case.device, str(case.kernel) if case.kernel else "the running kernel"
    drv = describe_driver(case)
    if case.exists is False:
        reasons.append(Reason(code="device-missing", text=f"there is no interface {dev} here"))
    if a.disable_netpoll:
        reasons.append(Reason(
            code="device-disables-netpoll",
            text=f"{dev} is a {case.kind} device: it sets IFF_DISABLE_NETPOLL, which netpoll "
            "checks before the hook, so a poll controller changes nothing"))
    if a.kernel is netpoll.KernelHook.OPTIONAL:
        if case.kernel is not None and case.kernel.at_least(*netpoll.OPTIONAL_HOOK_SINCE):
            why = (f"kernel {kver} is 4.19 or newer: since {netpoll.OPTIONAL_HOOK_COMMIT} "
                   "netpoll polls the NAPI contexts itself and needs no ndo_poll_controller")
        else:
            why = (f"kernel {kver} exports netpoll_poll_dev: it carries the 4.19 change "
                   f"({netpoll.OPTIONAL_HOOK_COMMIT}) and needs no ndo_poll_controller")
        reasons.append(Reason(code="kernel-optional-hook", text=why))
    elif a.kernel is netpoll.KernelHook.REQUIRED:
        notes.append(f"kernel {kver} is older than 4.19: netpoll refuses a device without "
                     "ndo_poll_controller")
    else:
        notes.append("the kernel version is unknown")
    if a.driver.hook is netpoll.DriverHook.PRESENT and not a.disable_netpoll:
        reasons.append(Reason(
            code="device-has-hook",
            text=f"{dev} ({drv}) already has ndo_poll_controller: {a.driver.reason}"))
    elif a.driver.hook is netpoll.DriverHook.ABSENT:
        notes.append(f"{dev} ({drv}) has no ndo_poll_controller: {a.driver.reason}")
    elif case.driver is not None and not a.disable_netpoll:
        notes.append(f"whether {dev} ({drv}) has the hook is unknown "
                     f"({a.driver.reason}); the module refuses a device that has it")
    if case.loaded:
        reasons.append(Reason(code="already-loaded",
                              text=f"{MODULE} is loaded already (rmmod {MODULE} first)"))
    if case.build_release is not None and case.kernel is not None \
            and case.build_release != case.kernel.release:
        reasons.append(Reason(
            code="release-mismatch",
            text=f"the headers are for {case.build_release} but the kernel is "
            f"{case.kernel.release}: insmod refuses a module built for another kernel"))
    if case.build_has_poll_controller is False:
        reasons.append(Reason(
            code="no-poll-controller-config",
            text="the headers' .config has no CONFIG_NET_POLL_CONTROLLER=y: that kernel has "
            "no ndo_poll_controller at all (nor netpoll)"))
    return ShimVerdict(applies=not reasons, reasons=tuple(reasons), notes=tuple(notes))


# --- the files ---------------------------------------------------------------------------


def shipped() -> dict[str, str]:
    """np_shim.c, its Makefile and the ENA patch as installed with the package."""
    base = resources.files("netconsole").joinpath("data", "np_shim")
    return {name: base.joinpath(name).read_text() for name in (*SHIPPED, ENA_PATCH)}


def readme(case: ShimCase, verdict: ShimVerdict) -> str:
    """Caveats and commands for this device, as a plain-text README."""
    dev, release = case.device, case.build_release or (
        case.kernel.release if case.kernel else "$(uname -r)")
    lines = [
        f"np_shim for {dev} ({describe_driver(case)}), kernel {release}",
        "",
        "What it does: it copies the net_device_ops of one device, adds an empty",
        "ndo_poll_controller and points the device at the copy. On kernels before 4.19",
        "netpoll (netconsole) refuses a device without that hook: `doesn't support",
        "polling, aborting`, ENOTSUPP, \"Unknown error 524\". With an empty one it",
        "polls the NAPI contexts that interrupts have scheduled. Unloading it puts",
        "the original net_device_ops back.",
        "",
        "Caveats:",
        "- It taints the kernel (out-of-tree module). Try it on a spare machine first.",
        "- It holds a reference on the device: disable the netconsole targets on it and",
        "  rmmod np_shim before unloading the NIC driver or removing the device.",
        "- With interrupts off (a panic) the TX ring is only cleaned by those polls,",
        "  so the tail of a long panic can be lost.",
        "- It refuses a device that already has ndo_poll_controller (EEXIST, \"File",
        "  exists\") or does not exist (ENODEV). It cannot help a device that sets",
        "  IFF_DISABLE_NETPOLL (HSR/PRP, netkit): netpoll refuses those first.",
        "- The kernel needs CONFIG_NET_POLL_CONTROLLER=y (every kernel with netpoll).",
        "- It is not loaded at boot: netconsole targets set up at boot (netconsole= on",
        "  the command line, modprobe.d) need it loaded first, e.g. from",
        "  /etc/modules-load.d after copying np_shim.ko to /lib/modules/$(uname -r)/extra/",
        "  and running depmod -a.",
        "",
        "Build (needs the headers of the running kernel, /lib/modules/$(uname -r)/build):",
        "  make                      # or: make KDIR=/path/to/headers",
        "Load, then set netconsole up:",
        f"  sudo insmod np_shim.ko ifname={dev}",
        f"  sudo dmesg | tail -1     # np_shim: {dev} has an empty ndo_poll_controller now",
        "Unload (after disabling the netconsole targets on the device):",
        "  sudo rmmod np_shim",
    ]
    if verdict.notes or verdict.reasons:
        lines += ["", "Why this host needs it (or not), when it was written:"]
        lines += [f"- {n}" for n in verdict.notes]
        lines += [f"- DOES NOT APPLY: {r.text}" for r in verdict.reasons]
    return "\n".join(lines) + "\n"


def ena_tag(driver_version: str | None) -> str:
    """The amzn-drivers tag of an ENA version (`2.0.1K` -> `ena_linux_2.0.1`)."""
    num = parse_version_number(driver_version or "")
    if num is None or len(num) < 2:
        return "ena_linux_2.0.2"
    return "ena_linux_" + ".".join(str(n) for n in (*num, 0, 0)[:3])


def ena_steps(case: ShimCase) -> str:
    """Remedy 4 for ENA: rebuild amzn-drivers' ena.ko with an empty hook, step by step."""
    release = case.kernel.release if case.kernel else "$(uname -r)"
    dev = case.device
    tag = ena_tag(case.driver_version if case.driver == "ena" else None)
    return "\n".join([
        f"# Rebuild Amazon's ENA driver with an empty ndo_poll_controller ({dev})",
        "",
        "ENA 2.x has no `ndo_poll_controller` (1.x had `ena_netpoll`). Kernels before",
        "4.19 refuse such a device for netpoll. `ena_netpoll.patch` adds an empty hook",
        "to `kernel/linux/ena/ena_netdev.c` of amzn-drivers: netpoll then polls the",
        "NAPI contexts that interrupts have scheduled (the same caveat as np_shim: in a",
        "panic, with interrupts off, the tail of a long panic can be lost).",
        "",
        "Steps, on the host (its kernel headers installed):",
        "",
        "```",
        f"ethtool -i {dev}        # `version:` is the release to rebuild, e.g. 2.0.1K",
        "git clone https://github.com/amzn/amzn-drivers && cd amzn-drivers",
        f"git checkout {tag}   # the release the host runs",
        f"patch -p1 < {ENA_PATCH}  # (this file's directory)",
        "cd kernel/linux/ena && make",
        "modinfo ./ena.ko | grep -E '^(version|vermagic)'  # vermagic must be "
        f"{release}",
        f"sudo cp ena.ko /lib/modules/{release}/updates/ && sudo depmod -a {release}",
        "sudo update-initramfs -u   # Debian/Ubuntu; RHEL/Amazon Linux: sudo dracut -f",
        "sudo reboot               # swapping the driver of the only NIC over ssh cuts",
        "                          # the machine off: reboot, or use the serial console",
        "grep ena_netpoll /proc/kallsyms   # after the reboot: the hook is there",
        "```",
        "",
        "The patch only adds lines; `patch` finds its place by the lines around",
        "`static const struct net_device_ops ena_netdev_ops = {`, so it applies to",
        "every 2.x release that has them. Keep the rebuilt driver pinned: a distribution",
        "update of the ENA package replaces it.",
        "",
    ])


def bundle(case: ShimCase, verdict: ShimVerdict, sources: Mapping[str, str], *,
           ena: bool = False) -> dict[str, str]:
    """File name -> text: np_shim.c, Makefile, README; with `ena`, the patch and steps."""
    out = {name: sources[name] for name in SHIPPED}
    out[README] = readme(case, verdict)
    if ena:
        out[ENA_PATCH] = sources[ENA_PATCH]
        out[ENA_STEPS] = ena_steps(case)
    return out
