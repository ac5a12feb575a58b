"""Ranked remedies for the case that started this project: a kernel that needs
`ndo_poll_controller` (≤ 4.18) and a driver that no longer has it (§5.2, §5.4).

The order is the issue's: fix the kernel, fix netpoll, fix the driver (three
ways, one advised against), patch the running kernel, or go around the kernel.
"""

from __future__ import annotations

from netconsole.doctor.findings import Remedy
from netconsole.kernel.netpoll import OPTIONAL_HOOK_COMMIT, DriverRemoval
from netconsole.kernel.version import KernelVersion

SHIM_MODULE_DOC = "docs/doctor.md#a-module-that-gives-the-device-a-poll-controller"


def _upgrade_commands(os_release: dict[str, str], release: str) -> tuple[str, ...]:
    os_id = os_release.get("ID", "")
    version = os_release.get("VERSION_ID", "")
    if os_id == "ubuntu":
        cmds = ["sudo apt-get update && sudo apt-get dist-upgrade",
                "sudo do-release-upgrade   # 16.04 -> 18.04 -> 20.04: 20.04 ships 5.4+"]
        if "-aws" in release:
            cmds.append("sudo apt-get install linux-aws   # on 20.04+: a 5.x kernel")
        return (*cmds, "sudo reboot", "uname -r   # must print 4.19 or newer")
    if os_id == "amzn" and version == "2":
        return ("sudo amazon-linux-extras install kernel-5.10", "sudo reboot", "uname -r")
    if os_id == "debian":
        return ("sudo apt-get update && sudo apt-get full-upgrade   # Debian 10+ ships 4.19+",
                "sudo reboot", "uname -r")
    if os_id in ("centos", "rhel", "rocky", "almalinux", "ol"):
        return ("sudo dnf upgrade kernel   # RHEL/CentOS 8+ ship 4.18 with the netpoll "
                "backport; 7 needs a newer release", "sudo reboot", "uname -r")
    return ("install your distribution's newest kernel (4.19 or later)", "sudo reboot",
            "uname -r")


def netpoll_remedies(
    *,
    dev: str,
    driver: str | None,
    driver_version: str | None,
    removal: DriverRemoval | None,
    kernel: KernelVersion | None,
    os_release: dict[str, str],
    remote: str,
) -> tuple[Remedy, ...]:
    """The six ways out, best first."""
    drv = driver or "the driver"
    release = kernel.release if kernel else "$(uname -r)"
    is_ena = driver == "ena"
    old_driver = "ena 1.6.0 (the last release with ena_netpoll)" if is_ena else (
        f"{drv} from before {removal.commit}" if removal else f"a {drv} version with the hook")
    downgrade_cmds: tuple[str, ...] = ()
    rebuild_cmds: tuple[str, ...]
    if is_ena:
        downgrade_cmds = (
            "git clone https://github.com/amzn/amzn-drivers && cd amzn-drivers",
            "git checkout ena_linux_1.6.0 && cd kernel/linux/ena && make",
            "sudo cp ena.ko /lib/modules/$(uname -r)/updates/ && sudo depmod -a",
            "sudo update-initramfs -u && sudo reboot",
        )
        rebuild_cmds = (
            "git clone https://github.com/amzn/amzn-drivers && cd amzn-drivers/kernel/linux/ena",
            "git checkout ena_linux_2.0.2   # the first 2.x release, or the one you run",
            "# in ena_netdev.c, before ena_netdev_ops:",
            "#   static void ena_netpoll(struct net_device *netdev) { }",
            "# and inside ena_netdev_ops:  .ndo_poll_controller = ena_netpoll,",
            "make && sudo cp ena.ko /lib/modules/$(uname -r)/updates/ && sudo depmod -a",
            "sudo update-initramfs -u && sudo reboot",
        )
    else:
        rebuild_cmds = (
            f"# in {drv}'s source, add an empty hook and reference it from its net_device_ops:",
            "#   static void xxx_poll_controller(struct net_device *dev) { }",
            "#   .ndo_poll_controller = xxx_poll_controller,",
            "make -C /lib/modules/$(uname -r)/build M=$PWD modules",
            f"sudo cp {drv}.ko /lib/modules/$(uname -r)/updates/ && sudo depmod -a",
        )
    return (
        Remedy(
            text=f"Upgrade to a kernel ≥ 4.19. Since commit {OPTIONAL_HOOK_COMMIT} (\"netpoll: "
            "make ndo_poll_controller() optional\") netpoll polls the driver's NAPI contexts "
            f"itself, so {drv} {driver_version or ''} works as it is.".replace("  ", " "),
            commands=_upgrade_commands(os_release, release)),
        Remedy(
            text="Build a newer netconsole/netpoll: netpoll is part of the kernel image "
            f"(net/core/netpoll.c), so this means rebuilding {release} with commit "
            f"{OPTIONAL_HOOK_COMMIT} backported (it applies with small fixups to 4.x) and "
            "installing that kernel.",
            commands=(
                "apt-get source linux-image-$(uname -r)   # or your distribution's kernel "
                "source package",
                f"cd linux-*/ && git show {OPTIONAL_HOOK_COMMIT} | patch -p1   # from a "
                "mainline clone",
                "fakeroot debian/rules clean binary   # or: make olddefconfig && make "
                "-j$(nproc) bindeb-pkg",
                "sudo dpkg -i ../linux-image-*.deb && sudo reboot",
            )),
        Remedy(
            text=f"Downgrade the driver to {old_driver}. Not recommended: the older driver "
            "lacks years of fixes and support for newer instance types and features (on AWS, "
            "newer ENA devices and LLQ need 2.x), and a failed driver swap on the only NIC "
            "cuts the machine off; it is pinned against every future update.",
            commands=downgrade_cmds, recommended=False),
        Remedy(
            text=f"Rebuild {drv} with an empty ndo_poll_controller. On ≤ 4.18 netpoll only "
            "refuses a device without the hook; with an empty one it still polls the NAPI "
            "contexts that interrupts scheduled. Caveat: with interrupts off (a panic) the "
            "TX ring is only cleaned by those polls, so a long panic can lose its tail; "
            "ena 1.x's ena_netpoll (napi_schedule on every queue) is the better body.",
            commands=rebuild_cmds),
        Remedy(
            text="Patch the running kernel with a small module that gives the device a copy "
            "of its net_device_ops with an empty ndo_poll_controller (no reboot, no driver "
            "rebuild). It taints the kernel, must stay loaded while the device exists, and "
            f"should be tried on a spare machine first. Source and Makefile: {SHIM_MODULE_DOC}.",
            commands=(
                "make -C /lib/modules/$(uname -r)/build M=$PWD modules",
                f"sudo insmod np_shim.ko ifname={dev}",
                f"sudo modprobe netconsole netconsole=@/{dev},6666@{remote}/",
            )),
        Remedy(
            text="Use `netconsole forward`: a userspace sender that reads /dev/kmsg and sends "
            "the same extended-format datagrams, with no kernel change. It cannot send from a "
            "dying kernel; it ships the previous crash from pstore after the reboot.",
            commands=(f"sudo netconsole forward {remote}:6666",)),
    )
