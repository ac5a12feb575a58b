"""configfs targets and every attribute (kernel-netconsole.md §3)."""

from __future__ import annotations

from netconsole.doctor.facts import Facts, Mode
from netconsole.doctor.findings import Evidence, Finding, Remedy, Severity
from netconsole.host.netinfo import find_neighbour, first_address
from netconsole.kernel.addresses import parse_ip
from netconsole.kernel.configfs import (
    CONFIGFS_ROOT,
    ConfigfsTarget,
    Problem,
    ProblemKind,
    check_target,
)

_SEVERITY = {
    ProblemKind.DISABLED: Severity.ERROR,
    ProblemKind.RELEASE_NEEDS_EXTENDED: Severity.ERROR,
    ProblemKind.NO_REMOTE_IP: Severity.ERROR,
    ProblemKind.BAD_IP: Severity.ERROR,
    ProblemKind.FAMILY_MISMATCH: Severity.ERROR,
    ProblemKind.BAD_MAC: Severity.ERROR,
    ProblemKind.TRANSMIT_ERRORS: Severity.WARNING,
    ProblemKind.USERDATA_KEY_TOO_LONG: Severity.WARNING,
    ProblemKind.USERDATA_VALUE_TOO_LONG: Severity.WARNING,
    ProblemKind.USERDATA_TOO_MANY: Severity.WARNING,
    ProblemKind.EXTRADATA_ON_BASIC: Severity.WARNING,
    ProblemKind.RELEASE_ENABLED_UNRELIABLE: Severity.INFO,
}


def _next_hop_mac(f: Facts, t: ConfigfsTarget) -> tuple[str | None, str | None]:
    """(next hop, its MAC from the neighbour table) towards the target's receiver."""
    if not t.remote_ip or parse_ip(t.remote_ip) < 0:
        return None, None
    route = f.view.route_get(t.remote_ip)
    if route is None:
        return None, None
    hop = route.gateway or t.remote_ip
    neigh = find_neighbour(f.net.neighbours or [], hop, route.dev or t.dev_name)
    return hop, neigh.lladdr.lower() if neigh is not None and neigh.lladdr else None


def _local_ip(f: Facts, t: ConfigfsTarget) -> str:
    """The source address netpoll would pick for the receiver's family."""
    fam = 6 if t.ipv6 else 4
    got = first_address(f.net.addresses or [], t.dev_name or "", fam)
    if got is not None:
        return got.address
    return "::" if fam == 6 else "0.0.0.0"  # unset: netpoll takes the interface's first


def _set_attribute(f: Facts, t: ConfigfsTarget, attr: str, base: str) -> Remedy:
    """Disable, write `attr` with the value it should have, enable."""
    cmds: list[str] = []
    if attr == "remote_mac":
        hop, mac = _next_hop_mac(f, t)
        if mac is None and hop is not None:
            cmds += [f"ping -c1 {hop}", f"ip neigh show {hop}"]
        value = mac or "NEXT_HOP_MAC"
    elif attr == "local_ip":
        value = _local_ip(f, t)
    else:
        value = "RECEIVER_IP"
    return Remedy(text=f"Disable the target, write {attr}, enable again",
                  commands=(*cmds, f"echo 0 | sudo tee {base}/enabled",
                            f"echo {value} | sudo tee {base}/{attr}",
                            f"echo 1 | sudo tee {base}/enabled"))


def _remedy(f: Facts, t: ConfigfsTarget, p: Problem, base: str) -> tuple[Remedy, ...]:
    kind = p.kind
    if kind is ProblemKind.DISABLED:
        return (Remedy(text="Enable the target (after the other checks pass)",
                       commands=(f"echo 1 | sudo tee {base}/enabled",)),)
    if kind is ProblemKind.RELEASE_NEEDS_EXTENDED:
        return (Remedy(text="Turn on extended first, then enable",
                       commands=(f"echo 1 | sudo tee {base}/extended",
                                 f"echo 1 | sudo tee {base}/enabled")),)
    if kind is ProblemKind.EXTRADATA_ON_BASIC:
        return (Remedy(text="Make the target extended (disable it first)",
                       commands=(f"echo 0 | sudo tee {base}/enabled",
                                 f"echo 1 | sudo tee {base}/extended",
                                 f"echo 1 | sudo tee {base}/enabled")),)
    if kind in (ProblemKind.NO_REMOTE_IP, ProblemKind.BAD_IP, ProblemKind.FAMILY_MISMATCH,
                ProblemKind.BAD_MAC):
        return (_set_attribute(f, t, p.attribute, base),)
    return ()


def check_configfs(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    dynamic = f.config_value("CONFIG_NETCONSOLE_DYNAMIC") == "y"
    if dynamic and f.loaded and f.configfs_mounted is False:
        out.append(Finding(
            code="configfs-not-mounted", severity=Severity.INFO,
            title="configfs is not mounted, so netconsole's dynamic targets are out of reach",
            evidence=(Evidence(path="/sys/kernel/config", text="empty"),),
            remedies=(Remedy(text="Mount it",
                             commands=("sudo mount -t configfs none /sys/kernel/config",)),)))
    for t in f.configfs:
        base = "/" + f"{CONFIGFS_ROOT}/{t.name}"
        for p in check_target(t, f.version):
            raw = t.raw.get(p.attribute.split("/")[0], "")
            ev = Evidence(path=f"{base}/{p.attribute}", line=1 if raw else None,
                          text=raw.strip())
            sev = _SEVERITY[p.kind]
            if p.kind is ProblemKind.DISABLED and f.mode is Mode.MISSING:
                sev = Severity.INFO
            out.append(Finding(code=p.kind.value, severity=sev,
                               title=f"configfs target {t.name}: {p.detail}",
                               evidence=(ev,), remedies=_remedy(f, t, p, base), target=t.name))
        if t.enabled and t.local_mac and t.local_mac.lower() == "ff:ff:ff:ff:ff:ff":
            out.append(Finding(
                code="configfs-not-bound", severity=Severity.WARNING,
                title=f"configfs target {t.name} is enabled but bound to no device",
                cause="local_mac reads ff:ff:ff:ff:ff:ff, which it does only when netpoll "
                "holds no device.",
                evidence=(Evidence(path=f"{base}/local_mac", line=1, text=t.local_mac),),
                target=t.name))
    return out
