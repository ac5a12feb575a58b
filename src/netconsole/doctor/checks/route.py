"""The path to each receiver: interface, next hop, and the destination MAC (§4.1).

netpoll does no ARP and no neighbour discovery: every frame goes to the
configured `remote_mac` (broadcast by default). On the receiver's own subnet a
broadcast frame still arrives; across a router it does not, because routers do
not forward broadcast frames to another subnet: the MAC must be the gateway's.
"""

from __future__ import annotations

from netconsole.doctor.facts import Facts, Target
from netconsole.doctor.findings import Evidence, Finding, Remedy, Severity
from netconsole.doctor.remedies import distro_of, receiver, retarget
from netconsole.host.netinfo import find_neighbour
from netconsole.kernel.configfs import is_broadcast


def check_routes(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    for t in f.targets:
        link = f.link(t.dev)
        if link is not None and link.master:
            continue  # enslaved: the interface check says so; the route is the master's
        out += _check_one(f, t)
    return out


def _check_one(f: Facts, t: Target) -> list[Finding]:
    route = f.view.route_get(t.remote_ip)
    src = "ip route get" if route is not None and route.source == "kernel" else \
        f.net.sources.get("route", "routes")
    if route is None:
        if f.net.routes is None and not f.view.live:
            return [Finding(code="route-unknown", severity=Severity.UNKNOWN,
                            title=f"The route to {t.remote_ip} is unknown (no route table)",
                            evidence=(t.evidence,), target=t.name)]
        return [Finding(
            code="route-none", severity=Severity.WARNING,
            title=f"This host has no route to {t.remote_ip}",
            cause="netconsole does not consult routing (it sends out its interface to the "
            "configured MAC), but without a route the receiver is probably not reachable "
            "from this network either.", evidence=(t.evidence,), target=t.name)]
    dev = f.link(t.dev)
    dev_name = dev.name if dev else t.dev
    words = [t.remote_ip, *(["via", route.gateway] if route.gateway else []),
             "dev", str(route.dev), *(["src", route.prefsrc] if route.prefsrc else [])]
    if route.type != "unicast":
        words.append(route.type)
    ev = [t.evidence, Evidence(path=src, text=" ".join(words))]
    out: list[Finding] = []
    if route.type == "local":
        return [Finding(
            code="route-local", severity=Severity.ERROR,
            title=f"The receiver {t.remote_ip} is this host",
            cause="netconsole puts frames on the wire of its interface; they never come back "
            "into this host's own stack, so a receiver here gets nothing.",
            evidence=tuple(ev), target=t.name,
            remedies=(Remedy(text="Run the receiver on another machine"),))]
    if route.dev and route.dev != dev_name:
        out.append(Finding(
            code="route-other-iface", severity=Severity.WARNING,
            title=f"The kernel routes {t.remote_ip} via {route.dev}, but the target uses "
            f"{dev_name}",
            cause="netconsole ignores routing and sends out its own interface; the receiver "
            f"must be reachable from {dev_name}'s network, with the MAC of a next hop there.",
            evidence=tuple(ev), target=t.name,
            remedies=(Remedy(text=f"Use {route.dev} as the target interface",
                             commands=retarget(t, distro_of(f.os_release), dev=route.dev)),)))
        return out
    next_hop = route.gateway or t.remote_ip
    neigh = find_neighbour(f.net.neighbours or [], next_hop, dev_name) \
        if f.net.neighbours is not None else None
    nsrc = f.net.sources.get("neigh", "neighbours")
    if neigh is not None:
        ev.append(Evidence(path=nsrc, text=f"{neigh.dst} dev {neigh.dev} lladdr "
                           f"{neigh.lladdr or '-'} {' '.join(neigh.state)}"))
    hop_mac = neigh.lladdr.lower() if neigh is not None and neigh.lladdr else None
    what = f"the gateway {route.gateway}" if route.gateway else f"the receiver {t.remote_ip}"
    if is_broadcast(t.remote_mac):
        if route.gateway:
            mac = hop_mac or "GATEWAY_MAC"
            cmds = () if hop_mac else (f"ping -c1 {route.gateway}",
                                       f"ip neigh show {route.gateway} dev {dev_name}")
            out.append(Finding(
                code="mac-broadcast-via-gateway", severity=Severity.ERROR,
                title=f"{t.remote_ip} is behind {route.gateway}, but the target MAC is "
                "broadcast (ff:ff:ff:ff:ff:ff)",
                cause="netpoll does no ARP: it sends every frame to remote_mac. A broadcast "
                f"frame stays on {dev_name}'s segment; the router does not forward it, so "
                "the receiver never sees it. remote_mac must be the gateway's MAC"
                + (f" ({hop_mac})." if hop_mac else " (not in the neighbour table now)."),
                evidence=tuple(ev), target=t.name,
                remedies=(Remedy(text=f"Set remote_mac to the gateway's MAC {mac}",
                                 commands=cmds + retarget(t, distro_of(f.os_release),
                                                          remote_mac=mac)),
                          Remedy(text="Or let setup find the next hop and write it",
                                 commands=("sudo netconsole setup "
                                           + receiver(t.remote_ip, t.remote_port),)))))
        else:
            out.append(Finding(
                code="mac-broadcast", severity=Severity.INFO,
                title=f"Target MAC is broadcast; {t.remote_ip} is on-link, so it arrives",
                cause="Every host on the segment receives each message; a unicast MAC "
                "avoids that" + (f" ({hop_mac})." if hop_mac else "."),
                evidence=tuple(ev), target=t.name))
        return out
    want = (t.remote_mac or "").lower()
    if hop_mac is None:
        out.append(Finding(
            code="mac-unverified", severity=Severity.UNKNOWN,
            title=f"Cannot verify remote_mac {want}: {what} is not in the neighbour table",
            evidence=tuple(ev), target=t.name,
            remedies=(Remedy(text="Resolve the next hop and compare",
                             commands=(f"ping -c1 {next_hop}",
                                       f"ip neigh show {next_hop} dev {dev_name}")),)))
    elif hop_mac != want:
        out.append(Finding(
            code="mac-mismatch", severity=Severity.ERROR,
            title=f"remote_mac {want} is not the MAC of {what} ({hop_mac})",
            cause="netpoll sends every frame to remote_mac without ARP; a wrong MAC means "
            "nobody (or the wrong host) receives it. After a gateway or receiver change the "
            "configured MAC goes stale.",
            evidence=tuple(ev), target=t.name,
            remedies=(Remedy(text=f"Set remote_mac to {hop_mac}",
                             commands=retarget(t, distro_of(f.os_release),
                                               remote_mac=hop_mac)),)))
    else:
        out.append(Finding(code="mac-ok", severity=Severity.OK,
                           title=f"remote_mac {want} is the MAC of {what}",
                           evidence=tuple(ev), target=t.name))
    return out
