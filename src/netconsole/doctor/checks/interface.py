"""The interface of each target, and whether netpoll can drive it (§5, §8.7, §8.10)."""

from __future__ import annotations

from dataclasses import dataclass

from netconsole.doctor.facts import Facts, Mode, Origin, Target
from netconsole.doctor.findings import Evidence, Finding, Remedy, Severity
from netconsole.doctor.remedies import (
    disabled_netpoll_remedies,
    distro_of,
    load_commands,
    netpoll_remedies,
    retarget,
)
from netconsole.host.netinfo import first_address
from netconsole.host.view import HostView
from netconsole.kernel import dmesg as kdmesg
from netconsole.kernel import netpoll
from netconsole.kernel.dmesg import errno_text


@dataclass(frozen=True, slots=True, kw_only=True)
class Iface:
    """What is known about one interface; None fields are unknown."""

    name: str
    exists: bool | None
    up: bool | None = None
    carrier: bool | None = None
    master: str | None = None
    kind: str | None = None
    driver: str | None = None
    driver_version: str | None = None
    evidence: tuple[Evidence, ...] = ()
    lower: tuple[str, ...] = ()


def _sys(rel: str) -> str:
    return HostView.show(rel)


def inspect(f: Facts, dev: str) -> Iface:
    """Combine netlink views, sysfs and ethtool into one picture of `dev`."""
    v = f.view
    ev: list[Evidence] = []
    link = f.link(dev)
    name = link.name if link else dev
    base = f"sys/class/net/{name}"
    sys_exists = v.is_dir(base)
    exists: bool | None
    if link is not None:
        exists = True
        ev.append(Evidence(path=f.net.sources.get("link", "netlink"),
                           text=f"{link.name}: <{','.join(link.flags)}> state "
                           f"{link.operstate or '?'}" + (f" master {link.master}"
                                                         if link.master else "")))
    elif f.net.links is not None:
        exists = sys_exists
        ev.append(Evidence(path=f.net.sources.get("link", "netlink"),
                           text=f"no interface {dev}"))
    else:
        exists = True if sys_exists else None
    up: bool | None = link.up if link else None
    carrier = link.carrier if link else None
    master = link.master if link else None
    kind = link.kind if link else None
    flags = v.first_line(f"{base}/flags")
    if up is None and flags:
        try:
            up = bool(int(flags, 16) & 0x1)
            ev.append(Evidence(path=_sys(f"{base}/flags"), line=1, text=flags))
        except ValueError:
            pass
    text = v.first_line(f"{base}/carrier")
    if carrier is None and text in ("0", "1"):
        carrier = text == "1"
        ev.append(Evidence(path=_sys(f"{base}/carrier"), line=1, text=text))
    if master is None:
        master = v.link_name(f"{base}/master")
        if master:
            ev.append(Evidence(path=_sys(f"{base}/master"), text=f"-> {master}"))
    for line in v.lines(f"{base}/uevent") or []:
        if line.startswith("DEVTYPE=") and kind is None:
            kind = line.split("=", 1)[1].strip()
    driver = v.link_name(f"{base}/device/driver")
    if driver:
        ev.append(Evidence(path=_sys(f"{base}/device/driver"), text=f"-> {driver}"))
    version = None
    eth = v.ethtool(name)
    if eth is not None:
        rel, info = eth
        driver = driver or info.get("driver")
        version = info.get("version") or None
        ev.append(Evidence(path=rel, text=f"driver: {info.get('driver')}, version: "
                           f"{info.get('version')}"))
    if driver:
        mv = v.first_line(f"sys/module/{driver}/version")
        if mv:
            version = version or mv
            ev.append(Evidence(path=_sys(f"sys/module/{driver}/version"), line=1, text=mv))
    lower = [n[6:] for n in v.listdir(base) or [] if n.startswith("lower_")]
    if not lower and f.net.links is not None:
        lower = [lk.name for lk in f.net.links if lk.master == name]
    return Iface(name=name, exists=exists, up=up, carrier=carrier, master=master, kind=kind,
                 driver=driver, driver_version=version, evidence=tuple(ev), lower=tuple(lower))


def _active(f: Facts, t: Target) -> bool:
    """Is this target supposed to be sending right now?"""
    if t.origin is Origin.CONFIGFS:
        return t.enabled is True
    return t.origin in (Origin.CMDLINE, Origin.MODPROBE) and f.loaded is True


def _dmesg_for(f: Facts, code: str, dev: str | None = None) -> list[Evidence]:
    return f.dmesg_evidence(code) if dev is None else f.dmesg_evidence(code, dev=dev)


def _user_524(f: Facts) -> list[Evidence]:
    return [Evidence(path=rel, line=m.line, text=m.text) for rel, m in f.extra_log
            if m.entry.errno == kdmesg.ENOTSUPP]


def check_netpoll(f: Facts, iface: Iface, targets: list[Target]) -> list[Finding]:
    """The ndo_poll_controller question for one interface (and its lower devices)."""
    devices = [iface]
    if iface.kind in netpoll.STACKED_KINDS and iface.lower:
        devices = [inspect(f, name) for name in iface.lower]
    out: list[Finding] = []
    for d in devices:
        symbols = netpoll.scan_kallsyms(f.kallsyms, d.driver) if f.kallsyms is not None \
            else None
        a = netpoll.assess(kernel=f.version, driver=d.driver, driver_version=d.driver_version,
                           symbols=symbols, link_kind=iface.kind if d is iface else d.kind)
        seen = _dmesg_for(f, "dmesg-no-polling", d.name) + (
            _dmesg_for(f, "dmesg-no-polling", iface.name) if d is not iface else [])
        ev: list[Evidence] = []
        if f.version_evidence:
            ev.append(f.version_evidence)
        ev += d.evidence
        if f.kallsyms is not None:
            ev.append(Evidence(path="/proc/kallsyms", text=(
                "netpoll_poll_dev exported" if symbols and symbols.netpoll_poll_dev_exported
                else "no exported netpoll_poll_dev (the 4.19 change is not in this kernel)")
                + "; " + (f"driver hooks: {', '.join(symbols.driver_hooks)}"
                          if symbols and symbols.driver_hooks
                          else f"no {d.driver or 'driver'} *_netpoll/*_poll_controller symbol")))
        ev += seen + _user_524(f)
        label = ", ".join(sorted({t.name for t in targets})) or None
        drv = f"{d.driver or 'unknown driver'} {d.driver_version or ''}".strip()
        if a.verdict is netpoll.Verdict.UNSUPPORTED or seen:
            if a.disable_netpoll or a.kernel is netpoll.KernelHook.OPTIONAL:
                out.append(_disabled(f, d, a, targets, tuple(ev), label))
                continue
            kver = str(f.version) if f.version else "this kernel"
            if f.version is not None:
                first = (f"Kernel {kver} is older than 4.19, so netpoll requires the driver's "
                         f"ndo_poll_controller, and {drv} does not have it "
                         f"({a.driver.reason}).")
            else:
                first = (f"netpoll refused {d.name}. Kernels before 4.19 require the driver's "
                         f"ndo_poll_controller ({drv}: {a.driver.reason}); later kernels "
                         "refuse only devices with IFF_DISABLE_NETPOLL. The kernel version "
                         "is unknown here.")
            shows = "shows" if seen else "would show"
            cause = (
                f"{first} netpoll_setup refuses the device: dmesg {shows} `netpoll: netconsole: "
                f"{d.name} doesn't support polling, aborting`, netconsole cleans up, and "
                "modprobe (or `echo 1 > enabled`) fails with -ENOTSUPP = 524, a kernel-internal "
                "errno that userspace prints as \"Unknown error 524\".")
            out.append(Finding(
                code="netpoll-unsupported", severity=Severity.ERROR,
                title=f"{d.name} ({drv}) cannot be used by netconsole on kernel {kver}: "
                "ENOTSUPP (524)",
                cause=cause, evidence=tuple(ev), target=label,
                remedies=netpoll_remedies(
                    dev=d.name, driver=d.driver, driver_version=d.driver_version,
                    removal=a.driver.removal, kernel=f.version, os_release=f.os_release,
                    targets=targets, loaded=f.loaded)))
        elif a.verdict is netpoll.Verdict.UNKNOWN:
            out.append(Finding(
                code="netpoll-unknown", severity=Severity.UNKNOWN,
                title=f"Whether {d.name} ({drv}) supports netpoll on this kernel is unknown",
                cause="Before 4.19 the driver must provide ndo_poll_controller. "
                + " ".join(a.reasons),
                evidence=tuple(ev), target=label,
                remedies=(Remedy(text="Look for the driver's poll controller, or just try",
                                 commands=("grep -E '(netpoll|poll_controller)' /proc/kallsyms",
                                           f"ethtool -i {d.name}",
                                           *load_commands(targets, d.name,
                                                          loaded=f.loaded),
                                           "sudo dmesg | tail")),)))
        else:
            out.append(Finding(
                code="netpoll-ok", severity=Severity.OK,
                title=f"netpoll can drive {d.name} ({drv})", cause="; ".join(a.reasons),
                evidence=tuple(ev), target=label))
    return out


def _disabled(f: Facts, d: Iface, a: netpoll.NetpollAssessment, targets: list[Target],
              ev: tuple[Evidence, ...], label: str | None) -> Finding:
    """netpoll refuses the device itself (IFF_DISABLE_NETPOLL) on a kernel that needs no
    ndo_poll_controller: not the < 4.19 case, so none of its remedies."""
    article = {"hsr": "an HSR", "prp": "a PRP"}.get(d.kind or "", f"a {d.kind}")
    what = f"{article} device" if a.disable_netpoll and d.kind else "this device"
    kver = f"kernel {f.version}" if f.version else "this kernel"
    cause = (
        f"{d.name} is {what}, which sets IFF_DISABLE_NETPOLL: __netpoll_setup refuses it "
        f"on every kernel (`netpoll: netconsole: {d.name} doesn't support polling, "
        f"aborting`, {errno_text(kdmesg.ENOTSUPP)}). `echo 1 > enabled` on a configfs "
        "target fails with that error; with configfs in the kernel "
        "(CONFIG_NETCONSOLE_DYNAMIC=y) the module still loads and leaves a netconsole= "
        "target disabled (`Not enabling netconsole for cmdline0. Netpoll setup failed`), "
        "without it modprobe fails. Kernels before 4.19 print the same for a driver "
        f"without ndo_poll_controller; not here: {kver} "
        "needs no such hook, and the flag is checked before it, so a newer kernel, a "
        "rebuilt driver or np_shim cannot help.")
    others = [lk.name for lk in f.net.links or [] if lk.name not in (d.name, "lo", *d.lower)
              and lk.master is None and lk.up is not False and first_address(
                  f.net.addresses or [], lk.name, 6 if any(t.ipv6 for t in targets) else 4)
              is not None]
    return Finding(
        code="netpoll-disabled", severity=Severity.ERROR,
        title=f"{d.name} cannot do netpoll (IFF_DISABLE_NETPOLL): ENOTSUPP (524)",
        cause=cause, evidence=ev, target=label,
        remedies=disabled_netpoll_remedies(dev=d.name, ports=d.lower, others=others,
                                           targets=targets, distro=distro_of(f.os_release),
                                           loaded=f.loaded))


def check_interfaces(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    if not f.targets:
        # No configured target: still check the interfaces netconsole was tried on
        # (a dmesg failure line without a banner) or would most likely use (the
        # default route's), since the netpoll verdict does not depend on a target.
        tried = [m.fields["dev"] for m in f.dmesg or []
                 if m.code == "dmesg-no-polling" and "dev" in m.fields]
        if f.mode is not Mode.MISSING and not f.params and not f.configfs and not tried:
            out.append(_no_target(f))
        default = f.view.route_get("8.8.8.8") if f.net.routes is not None or f.view.live \
            else None
        devs = list(dict.fromkeys(tried + ([default.dev] if default and default.dev else [])))
        if f.mode is not Mode.MISSING:
            for dev in devs:
                out += check_netpoll(f, inspect(f, dev), [])
        return out
    by_dev: dict[str, list[Target]] = {}
    for t in f.targets:
        by_dev.setdefault(t.dev, []).append(t)
    for dev, targets in by_dev.items():
        iface = inspect(f, dev)
        label = ", ".join(t.name for t in targets)
        active = any(_active(f, t) for t in targets)
        if iface.exists is None:
            out.append(Finding(
                code="iface-unknown", severity=Severity.UNKNOWN,
                title=f"Interface {dev} could not be checked (no link list, no sysfs)",
                evidence=tuple(t.evidence for t in targets), target=label))
            if _dmesg_for(f, "dmesg-no-polling", dev):
                out += check_netpoll(f, iface, targets)  # dmesg alone is proof enough
            continue
        if not iface.exists:
            out.append(_missing(f, dev, targets, iface))
            continue
        if iface.master:
            out.append(Finding(
                code="iface-enslaved", severity=Severity.ERROR,
                title=f"{dev} is enslaved to {iface.master}: netconsole must use the master",
                cause="netpoll refuses a slave device: `netpoll: netconsole: "
                f"{dev} is a slave device, aborting`, {errno_text(kdmesg.EBUSY)}. Traffic of "
                f"a bond or bridge port belongs to the master ({iface.master}).",
                evidence=(*iface.evidence, *(t.evidence for t in targets),
                          *_dmesg_for(f, "dmesg-slave", dev)),
                remedies=(Remedy(text=f"Use {iface.master} as the netconsole interface",
                                 commands=_use_dev(f, targets, iface.master)),),
                target=label))
            continue
        if iface.up is False:
            out.append(Finding(
                code="iface-down", severity=Severity.ERROR if active else Severity.WARNING,
                title=f"{dev} is down",
                cause="netpoll brings a down interface up when the target is set up, but a "
                "target whose interface goes down later is skipped silently: nothing is sent "
                "and transmit_errors does not move.",
                evidence=iface.evidence, target=label,
                remedies=(Remedy(text="Bring it up", commands=(f"sudo ip link set {dev} up",)),)))
        elif iface.carrier is False:
            out.append(Finding(
                code="iface-no-carrier", severity=Severity.ERROR,
                title=f"{dev} has no carrier (cable, switch port or virtual link down)",
                evidence=iface.evidence, target=label,
                remedies=(Remedy(text="Check the link", commands=(f"ip link show {dev}",
                                                                  f"ethtool {dev}")),)))
        out += _addresses(f, iface, targets)
        out += check_netpoll(f, iface, targets)
    return out


def _use_dev(f: Facts, targets: list[Target], dev: str) -> tuple[str, ...]:
    """Commands that move the targets to another interface, in their own terms."""
    distro = distro_of(f.os_release)
    return tuple(c for t in targets for c in retarget(t, distro, dev=dev))


def _no_target(f: Facts) -> Finding:
    ev: list[Evidence] = []
    if f.cmdline_text is not None:
        ev.append(Evidence(path="/proc/cmdline", line=1, text="no netconsole= parameter"))
    if f.configfs_mounted:
        ev.append(Evidence(path="/sys/kernel/config/netconsole", text="no targets"))
    route = f.view.route_get("8.8.8.8") if f.net.routes is not None or f.view.live else None
    dev = route.dev if route and route.dev else "eth0"
    return Finding(
        code="no-target", severity=Severity.ERROR,
        title="netconsole has no target: nothing is configured to send anywhere",
        cause="No netconsole= on the command line, none in modprobe.d, no configfs target, "
        "and no attempt in dmesg.", evidence=tuple(ev),
        remedies=(Remedy(text="Let setup pick the interface, source and next-hop MAC",
                         commands=("sudo netconsole setup RECEIVER:6666",)),
                  Remedy(text="Or by hand (add the gateway's MAC after the last '/' when the "
                         "receiver is on another subnet)",
                         commands=(f"sudo modprobe netconsole netconsole=@/{dev},6666@"
                                   "RECEIVER/",))))


def _missing(f: Facts, dev: str, targets: list[Target], iface: Iface) -> Finding:
    names = [lk.name for lk in f.net.links or [] if lk.name != "lo"]
    cause = (f"There is no interface {dev} in this network namespace, so netpoll fails with "
             f"`{dev} doesn't exist, aborting` and {errno_text(kdmesg.ENODEV)}.")
    if dev == "eth0" and all(t.origin is not Origin.CONFIGFS for t in targets):
        cause += " eth0 is what an empty interface field means."
    if f.mode is Mode.BUILTIN:
        cause += (" A built-in netconsole starts at late_initcall; a NIC whose driver is a "
                  "module loaded later from the initramfs does not exist yet.")
    remedies = [Remedy(text="Name an interface that exists"
                       + (f" (this host has: {', '.join(names)})" if names else ""))]
    if f.mode is Mode.BUILTIN:
        remedies.append(Remedy(text="Or build the NIC driver in, or use netconsole as a module "
                               "(netconsole.netconsole= on the command line)"))
    return Finding(code="iface-missing", severity=Severity.ERROR,
                   title=f"Interface {dev} does not exist", cause=cause,
                   evidence=(*iface.evidence, *(t.evidence for t in targets),
                             *_dmesg_for(f, "dmesg-dev-missing", dev)),
                   remedies=tuple(remedies), target=", ".join(t.name for t in targets))


def _addresses(f: Facts, iface: Iface, targets: list[Target]) -> list[Finding]:
    out: list[Finding] = []
    addrs = f.net.addresses
    if addrs is None:
        return out
    src = f.net.sources.get("addr", "netlink")
    for t in targets:
        fam = 6 if t.ipv6 else 4
        mine = [a for a in addrs if a.ifname == iface.name and a.family == fam]
        if t.local_ip:
            if not any(a.address == t.local_ip for a in mine):
                out.append(Finding(
                    code="local-ip-not-on-iface", severity=Severity.WARNING,
                    title=f"Source IP {t.local_ip} is not an address of {iface.name}",
                    cause="netconsole sends with that source anyway; replies are not needed, "
                    "but a firewall or rp_filter on the way may drop the packets.",
                    evidence=(t.evidence, Evidence(path=src, text=", ".join(
                        a.address for a in mine) or f"no IPv{fam} address on {iface.name}")),
                    target=t.name))
            continue
        link_local = None
        if fam == 6:
            link_local = t.remote_ip.lower().startswith("fe80")
        if first_address(addrs, iface.name, fam, link_local=link_local) is None:
            word = "IPv6 address" if fam == 6 else "IP address"
            out.append(Finding(
                code="iface-no-address", severity=Severity.ERROR,
                title=f"{iface.name} has no IPv{fam} address and the target gives no source IP",
                cause=f"netpoll takes the first IPv{fam} address of the interface; with none it "
                f"prints `no {word} for {iface.name}, aborting` and fails with "
                f"{errno_text(kdmesg.EDESTADDRREQ)}.",
                evidence=(t.evidence, Evidence(path=src, text=f"no IPv{fam} address on "
                                               f"{iface.name}")),
                remedies=(Remedy(text="Give the interface an address, or set the source IP "
                                 "in the target", commands=(f"sudo ip addr add ADDR/PREFIX dev "
                                                            f"{iface.name}",)),),
                target=t.name))
    return out
