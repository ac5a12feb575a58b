"""The commands remedies print: in the failing target's own terms, with the
host's distribution's tools.

A remedy is only useful if it can be pasted: a target that sends to port 514
from 10.0.0.2 must not be told to reload with `6666@RECEIVER`, and a Fedora host
has no `update-grub`. So every command here is built from a `Target` (its
interface, addresses, ports and MAC, as the kernel would parse them) and a
`Distro` read from the snapshot's /etc/os-release.

`netpoll_remedies` are the ranked ways out for the case that started this
project: a kernel that needs `ndo_poll_controller` (≤ 4.18) and a driver that no
longer has it (§5.2, §5.4). Their order is the issue's: fix the kernel, fix
netpoll, fix the driver (three ways, one advised against), patch the running
kernel, or go around the kernel.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from netconsole._hostport import format_hostport
from netconsole.doctor.facts import Origin, Target
from netconsole.doctor.findings import Remedy
from netconsole.kernel.configfs import CONFIGFS_ROOT
from netconsole.kernel.netconsole_param import (
    DEFAULT_LOCAL_PORT,
    DEFAULT_REMOTE_PORT,
    TargetParams,
    format_target,
)
from netconsole.kernel.netpoll import OPTIONAL_HOOK_COMMIT, DriverRemoval
from netconsole.kernel.shim import ena_tag
from netconsole.kernel.version import KernelVersion

UNAME_R = "$(uname -r)"


def shim_source_dir() -> str:
    """Where np_shim.c and its Makefile are installed with this package."""
    return str(resources.files("netconsole").joinpath("data", "np_shim"))


SHIM_DIR = "~/np_shim"


def shim_command(dev: str, *, ena: bool = False) -> str:
    """`netconsole shim write` for `dev`: remedy 5 (with `ena`, remedy 4's patch too)."""
    return (f"netconsole shim write {SHIM_DIR} --device {dev} --build"
            + (" --ena-patch" if ena else ""))


# --- the distribution ------------------------------------------------------------------


class Family(enum.Enum):
    DEBIAN = "debian"
    """Debian, Ubuntu and derivatives: apt, update-grub, update-initramfs."""
    RHEL = "rhel"
    """RHEL, CentOS, Rocky, Alma, Oracle, Fedora, Amazon Linux: dnf/yum, grubby, dracut."""
    SUSE = "suse"
    """SLES, openSUSE: zypper, grub2-mkconfig, dracut."""
    GENERIC = "generic"
    """Unknown: the commands are named, not guessed."""


_RHEL_IDS = frozenset({"rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Distro:
    """The commands that differ between distributions, for one host."""

    family: Family
    installer: str
    """`apt-get`, `dnf`, `yum`, `zypper`; empty when unknown."""

    def install(self, package: str) -> str:
        return f"sudo {self.installer} install {package}"

    def headers(self, release: str) -> str:
        """Install what `make -C /lib/modules/<release>/build` needs."""
        if self.family is Family.DEBIAN:
            return self.install(f"linux-headers-{release}")
        if self.family is Family.RHEL:
            return self.install(f"kernel-devel-{release}")
        if self.family is Family.SUSE:
            return self.install(f"kernel-default-devel   # the version of {release}")
        return (f"# install the kernel headers of {release} (linux-headers-{release} or "
                f"kernel-devel-{release})")

    def initramfs(self) -> str:
        if self.family is Family.DEBIAN:
            return "sudo update-initramfs -u"
        if self.family in (Family.RHEL, Family.SUSE):
            return "sudo dracut -f"
        return "# rebuild the initramfs (update-initramfs -u or dracut -f)"

    def _grub(self) -> str:
        if self.family is Family.DEBIAN:
            return "sudo update-grub"
        if self.family is Family.SUSE:
            return "sudo grub2-mkconfig -o /boot/grub2/grub.cfg"
        return "sudo update-grub   # or: sudo grub2-mkconfig -o /boot/grub2/grub.cfg"

    def cmdline_replace(self, old: str, new: str) -> tuple[str, ...]:
        """Replace the kernel argument `old` (`key=value`) by `new` for every boot."""
        if self.family is Family.RHEL:
            key = old.split("=", 1)[0]
            return (f"sudo grubby --update-kernel=ALL --remove-args={key}",
                    f"sudo grubby --update-kernel=ALL --args='{new}'", "sudo reboot")
        # Whole arguments only: `netconsole=` must not match inside
        # `netconsole.netconsole=`, nor a value match the start of a longer one.
        return (f"sudo sed -i 's|\\([ \"]\\){old}\\([ \"]\\)|\\1{new}\\2|' /etc/default/grub",
                self._grub(), "sudo reboot")

    def cmdline_remove(self, *args: str) -> tuple[str, ...]:
        """Drop kernel arguments (`quiet`, `loglevel=3`) for every boot."""
        if self.family is Family.RHEL:
            keys = " ".join(a.split("=", 1)[0] for a in args)
            return (f"sudo grubby --update-kernel=ALL --remove-args='{keys}'", "sudo reboot")
        return (*(f"sudo sed -i 's/\\b{a.replace('.', '[.]')} \\?//' /etc/default/grub"
                  for a in args), self._grub(), "sudo reboot")

    def cmdline_add(self, arg: str) -> tuple[str, ...]:
        """Add one kernel argument for every boot."""
        if self.family is Family.RHEL:
            return (f"sudo grubby --update-kernel=ALL --args='{arg}'", "sudo reboot")
        return (f"sudo sed -i 's|^GRUB_CMDLINE_LINUX=\"|&{arg} |' /etc/default/grub",
                self._grub(), "sudo reboot")


def distro_of(os_release: dict[str, str]) -> Distro:
    """The family from ID and ID_LIKE; GENERIC without /etc/os-release."""
    os_id = os_release.get("ID", "").lower()
    ids = {os_id, *os_release.get("ID_LIKE", "").lower().split()} - {""}
    major = os_release.get("VERSION_ID", "").split(".", 1)[0]
    if ids & {"debian", "ubuntu"}:
        return Distro(family=Family.DEBIAN, installer="apt-get")
    if ids & _RHEL_IDS:
        # EL7 and Amazon Linux 2 have no dnf.
        old = (os_id == "amzn" and major == "2") or (os_id != "fedora" and major == "7")
        return Distro(family=Family.RHEL, installer="yum" if old else "dnf")
    if any("suse" in i for i in ids):
        return Distro(family=Family.SUSE, installer="zypper")
    return Distro(family=Family.GENERIC, installer="")


# --- the target --------------------------------------------------------------------------


def _is_mac(dev: str) -> bool:
    return ":" in dev and len(dev) == 17


def target_text(t: Target, *, dev: str | None = None, remote_mac: str | None = None) -> str:
    """The target as `netconsole=` text, with its own values (and `dev` or
    `remote_mac` changed when a remedy moves it)."""
    dev = dev or t.dev
    return format_target(TargetParams(
        extended=bool(t.extended), release=bool(t.release), local_port=t.local_port,
        local_ip=t.local_ip, dev_name=None if _is_mac(dev) else dev,
        dev_mac=dev if _is_mac(dev) else None, remote_port=t.remote_port,
        remote_ip=t.remote_ip, remote_mac=remote_mac or t.remote_mac))


def receiver(ip: str, port: int | None) -> str:
    """`HOST:PORT` as `netconsole forward` and `setup` read it."""
    return format_hostport(ip, DEFAULT_REMOTE_PORT if port is None else port)


def forward_command(targets: Sequence[Target]) -> str:
    """`netconsole forward` to the same receivers, from the same source port."""
    if not targets:
        return f"sudo netconsole forward RECEIVER:{DEFAULT_REMOTE_PORT}"
    words = ["sudo", "netconsole", "forward"]
    local = next((t.local_port for t in targets if t.local_port is not None
                  and t.local_port != DEFAULT_LOCAL_PORT), None)
    if local is not None:
        words += ["--local-port", str(local)]
    if any(t.release for t in targets):
        words.append("--release")
    words += list(dict.fromkeys(receiver(t.remote_ip, t.remote_port) for t in targets))
    return " ".join(words)


def load_commands(targets: Sequence[Target], dev: str, *,
                  loaded: bool | None = None) -> tuple[str, ...]:
    """Set the targets up again (after a fix that needs no configuration change).

    `loaded`: whether the netconsole module is loaded now; modprobe does nothing
    for a loaded module, so it is removed first.
    """
    unload = "sudo modprobe -r netconsole; " if loaded else ""
    if not targets:
        return (f"{unload}sudo modprobe netconsole netconsole=@/{dev},{DEFAULT_REMOTE_PORT}"
                "@RECEIVER/",)
    out: list[str] = []
    loose = [t for t in targets if t.origin is not Origin.CONFIGFS]
    for t in targets:
        if t.origin is Origin.CONFIGFS:
            base = f"/{CONFIGFS_ROOT}/{t.name}"
            if t.enabled:
                out.append(f"echo 0 | sudo tee {base}/enabled")
            out.append(f"echo 1 | sudo tee {base}/enabled")
    if loose:
        out.append(f"{unload}sudo modprobe netconsole netconsole="
                   + ";".join(target_text(t) for t in loose))
    return tuple(out)


def retarget(t: Target, distro: Distro, *, dev: str | None = None,
             remote_mac: str | None = None) -> tuple[str, ...]:
    """Commands that change the target's interface or MAC where it is configured,
    keeping all its other values."""
    if t.origin is Origin.CONFIGFS:
        base = f"/{CONFIGFS_ROOT}/{t.name}"
        out = [f"echo 0 | sudo tee {base}/enabled"] if t.enabled is not False else []
        if dev is not None:
            out.append(f"echo {dev} | sudo tee {base}/dev_name")
        if remote_mac is not None:
            out.append(f"echo {remote_mac} | sudo tee {base}/remote_mac")
        return (*out, f"echo 1 | sudo tee {base}/enabled")
    text = target_text(t, dev=dev, remote_mac=remote_mac)
    src = t.source
    if src is not None and t.text is not None and t.origin is Origin.CMDLINE:
        value = src.value.replace(t.text, text, 1)
        return distro.cmdline_replace(f"{src.key}={src.value}", f"{src.key}={value}")
    if src is not None and t.text is not None and t.origin is Origin.MODPROBE:
        value = src.value.replace(t.text, text, 1)
        return (f"# in {src.evidence.path}: options netconsole netconsole={value}",)
    if t.origin is Origin.ARGUMENT:
        return (f"netconsole doctor --target '{text}'",
                f"sudo modprobe netconsole netconsole={text}")
    return (f"sudo modprobe netconsole netconsole={text}",)


# --- the netpoll case --------------------------------------------------------------------


def _upgrade_commands(os_release: dict[str, str], distro: Distro,
                      release: str) -> tuple[str, ...]:
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
    if distro.family is Family.DEBIAN:
        return ("sudo apt-get update && sudo apt-get full-upgrade   # Debian 10+ ships 4.19+",
                "sudo reboot", "uname -r")
    if distro.family is Family.RHEL:
        return (f"sudo {distro.installer} upgrade kernel   # RHEL/CentOS 8+ ship 4.18 with the "
                "netpoll backport; 7 needs a newer release", "sudo reboot", "uname -r")
    if distro.family is Family.SUSE:
        return ("sudo zypper update kernel-default   # SLES 15 ships 4.12 with the netpoll "
                "backport", "sudo reboot", "uname -r")
    return ("# install your distribution's newest kernel (4.19 or later)", "sudo reboot",
            "uname -r")


def _kernel_rebuild_commands(distro: Distro, release: str) -> tuple[str, ...]:
    patch = f"git show {OPTIONAL_HOOK_COMMIT}"
    if distro.family is Family.DEBIAN:
        return (
            f"apt-get source linux-image-{release}   # needs deb-src lines in sources.list",
            f"cd linux-*/ && {patch} | patch -p1   # from a mainline clone",
            "fakeroot debian/rules clean binary   # or: make olddefconfig && make "
            "-j$(nproc) bindeb-pkg",
            "sudo dpkg -i ../linux-image-*.deb && sudo reboot",
        )
    if distro.family is Family.RHEL:
        download = "dnf download" if distro.installer == "dnf" else "yumdownloader"
        builddep = "dnf builddep" if distro.installer == "dnf" else "yum-builddep"
        base, _, arch = release.rpartition(".")
        nevr = base if arch in ("x86_64", "aarch64", "ppc64le", "s390x") else release
        return (
            f"{download} --source kernel-{nevr}",
            "rpm -i kernel-*.src.rpm && cd ~/rpmbuild/SPECS",
            f"{patch} > ../SOURCES/netpoll-optional.patch   # from a mainline clone; add it "
            "to kernel.spec as a Patch",
            f"sudo {builddep} -y kernel.spec && rpmbuild -bb --target=$(uname -m) kernel.spec",
            f"sudo {distro.installer} install ~/rpmbuild/RPMS/$(uname -m)/kernel-*.rpm "
            "&& sudo reboot",
        )
    return (
        f"# get the source of {release} from your distribution",
        f"cd linux-*/ && {patch} | patch -p1   # from a mainline clone",
        f"cp /boot/config-{release} .config && make olddefconfig && make -j$(nproc)",
        "sudo make modules_install install && sudo reboot",
    )


def _moved(targets: Sequence[Target], dev: str, distro: Distro,
           loaded: bool | None) -> tuple[str, ...]:
    """Commands that move `targets` to `dev`. The source IP goes: it was the old
    interface's (for a target seen in dmesg, the one netpoll picked there)."""
    out: list[str] = []
    for t in targets:
        moved = dataclasses.replace(t, local_ip=None)
        if t.origin in (Origin.CONFIGFS, Origin.CMDLINE, Origin.MODPROBE):
            out += retarget(moved, distro, dev=dev)
        else:
            out += load_commands([dataclasses.replace(moved, dev=dev)], dev, loaded=loaded)
    return tuple(out)


def disabled_netpoll_remedies(*, dev: str, ports: Sequence[str], others: Sequence[str],
                              targets: Sequence[Target], distro: Distro,
                              loaded: bool | None = None) -> tuple[Remedy, ...]:
    """The ways out for a device that sets IFF_DISABLE_NETPOLL (HSR/PRP, netkit).

    netpoll refuses such a device on every kernel, whatever its driver, so none of
    the netpoll-unsupported remedies (a newer kernel, a rebuilt driver, np_shim)
    applies. `ports`: its lower devices (enslaved: refused too); `others`:
    interfaces of the host outside it that have an address.
    """
    enslaved = (f" Not its ports ({', '.join(ports)}): they are enslaved to {dev}, and "
                "netpoll refuses a slave device too (`is a slave device, aborting`, EBUSY)."
                if ports else "")
    out = [Remedy(
        text=f"Send from userspace: `netconsole forward` reads /dev/kmsg and sends the same "
        f"datagrams through {dev} like any program does (no kernel change; it cannot send "
        "from a dying kernel, and ships the previous crash from pstore after the reboot).",
        commands=(forward_command(targets),))]
    if others:
        out.append(Remedy(
            text=f"Or point netconsole at an interface outside {dev}, towards a receiver it "
            f"reaches (this host has {', '.join(others)})." + enslaved,
            commands=_moved(targets, others[0], distro, loaded)))
    else:
        out.append(Remedy(text=f"Or give the host an interface outside {dev} (a management "
                          "NIC) and point netconsole at it." + enslaved))
    return tuple(out)


def netpoll_remedies(
    *,
    dev: str,
    driver: str | None,
    driver_version: str | None,
    removal: DriverRemoval | None,
    kernel: KernelVersion | None,
    os_release: dict[str, str],
    targets: Sequence[Target],
    loaded: bool | None = None,
) -> tuple[Remedy, ...]:
    """The six ways out, best first, for `targets` (those on `dev`; may be none)."""
    distro = distro_of(os_release)
    drv = driver or "the driver"
    release = kernel.release if kernel else UNAME_R
    updates = f"/lib/modules/{release}/updates/"
    is_ena = driver == "ena"
    old_driver = "ena 1.6.0 (the last release with ena_netpoll)" if is_ena else (
        f"{drv} from before {removal.commit}" if removal else f"a {drv} version with the hook")
    headers = distro.headers(release)
    reload = (distro.initramfs(), "sudo reboot")
    downgrade_cmds: tuple[str, ...] = ()
    rebuild_cmds: tuple[str, ...]
    if is_ena:
        downgrade_cmds = (
            headers,
            "git clone https://github.com/amzn/amzn-drivers && cd amzn-drivers",
            "git checkout ena_linux_1.6.0 && cd kernel/linux/ena && make",
            f"sudo cp ena.ko {updates} && sudo depmod -a {release}",
            *reload,
        )
        rebuild_cmds = (
            headers,
            f"netconsole shim write {SHIM_DIR} --device {dev} --ena-patch   # writes "
            "ena_netpoll.patch and ENA-REBUILD.md (these steps)",
            "git clone https://github.com/amzn/amzn-drivers && cd amzn-drivers",
            f"git checkout {ena_tag(driver_version)}   # the release this host runs",
            f"patch -p1 < {SHIM_DIR}/ena_netpoll.patch   # an empty ena_netpoll in "
            "ena_netdev_ops",
            f"cd kernel/linux/ena && make && sudo cp ena.ko {updates} "
            f"&& sudo depmod -a {release}",
            *reload,
        )
    else:
        rebuild_cmds = (
            headers,
            f"# in {drv}'s source, add an empty hook and reference it from its net_device_ops:",
            "#   static void xxx_poll_controller(struct net_device *dev) { }",
            "#   .ndo_poll_controller = xxx_poll_controller,",
            f"make -C /lib/modules/{release}/build M=$PWD modules",
            f"sudo cp {drv}.ko {updates} && sudo depmod -a {release}",
            *reload,
        )
    shim = shim_source_dir()
    shim_cmd = shim_command(dev)
    return (
        Remedy(
            text=f"Upgrade to a kernel ≥ 4.19. Since commit {OPTIONAL_HOOK_COMMIT} (\"netpoll: "
            "make ndo_poll_controller() optional\") netpoll polls the driver's NAPI contexts "
            f"itself, so {drv} {driver_version or ''} works as it is.".replace("  ", " "),
            commands=_upgrade_commands(os_release, distro, release)),
        Remedy(
            text="Build a newer netconsole/netpoll: netpoll is part of the kernel image "
            f"(net/core/netpoll.c), so this means rebuilding {release} with commit "
            f"{OPTIONAL_HOOK_COMMIT} backported (it applies with small fixups to 4.x) and "
            "installing that kernel.",
            commands=_kernel_rebuild_commands(distro, release)),
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
            "should be tried on a spare machine first. `netconsole shim write` checks that "
            f"it applies to {dev}, writes np_shim.c, its Makefile and a README of caveats, "
            "builds it (--build) and loads it (--load, after saying what it does); the "
            f"files are installed with netconsole in {shim}.",
            commands=(
                headers,
                shim_cmd,
                f"cd {SHIM_DIR} && sudo insmod np_shim.ko ifname={dev}   # or add --load above",
                *load_commands(targets, dev, loaded=loaded),
                f"# without netconsole on that host: copy {shim} there, then make && "
                f"sudo insmod np_shim.ko ifname={dev}",
            )),
        Remedy(
            text="Use `netconsole forward`: a userspace sender that reads /dev/kmsg and sends "
            "the same extended-format datagrams, with no kernel change. It cannot send from a "
            "dying kernel; it ships the previous crash from pstore after the reboot.",
            commands=(forward_command(targets),)),
    )
