"""`setup --status`: every target, its state, and whether its MAC is still right.

A target keeps the MAC it was given; the network moves on (a new router, a
failover, DHCP). `next_hop_check` compares the target's `remote_mac` with what
the neighbour table says about the next hop to its receiver today, which is the
one failure `transmit_errors` can never show (§3.5: frames to a stale MAC are
sent fine and lost on the wire).
"""

from __future__ import annotations

from dataclasses import dataclass

from netconsole.host.netinfo import find_neighbour
from netconsole.host.view import HostView
from netconsole.kernel.configfs import is_broadcast
from netconsole.setup.apply import list_targets


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetStatus:
    name: str
    origin: str
    """`configfs`, `cmdline` or `modprobe.d`."""
    enabled: bool | None
    dev: str | None
    local_ip: str | None
    remote: str
    remote_mac: str | None
    transmit_errors: int | None
    extended: bool | None
    userdata: dict[str, str]
    next_hop: str | None
    expected_mac: str | None
    mac_ok: bool | None
    """False: the neighbour table names another MAC (or the route another interface)."""
    note: str = ""


def next_hop_check(view: HostView, remote_ip: str, dev: str | None, mac: str | None,
                   ) -> tuple[str | None, str | None, bool | None, str]:
    """(next hop, MAC expected today, is the target's MAC right, note)."""
    if ":" in remote_ip and remote_ip.lower().startswith("fe80"):
        route_dev, hop = dev, remote_ip
    else:
        route = view.route_get(remote_ip)
        if route is None:
            return None, None, None, f"no route to {remote_ip} today"
        route_dev, hop = route.dev, route.gateway or remote_ip
        if dev and route_dev and route_dev != dev:
            return hop, None, False, (f"the route to {remote_ip} now leaves through "
                                      f"{route_dev}, not {dev}")
    neighbours = view.net().neighbours
    if neighbours is None:
        return hop, None, None, "the neighbour table is unknown"
    n = find_neighbour(neighbours, hop, route_dev)
    if n is None or not n.lladdr:
        return hop, None, None, f"{hop} is not in the neighbour table (nothing talked to it)"
    expected = n.lladdr.lower()
    if mac is None or is_broadcast(mac):
        return hop, expected, False, (f"the target sends to broadcast; across a router that "
                                      f"never arrives: use {expected}")
    ok = mac.lower() == expected
    return hop, expected, ok, "" if ok else (
        f"{hop} is now at {expected}, the target still sends to {mac}: re-run "
        "`netconsole setup` for this target")


def status(view: HostView) -> list[TargetStatus]:
    """configfs targets first, then boot/modprobe targets the doctor found."""
    out: list[TargetStatus] = []
    for st in list_targets(view):
        t = st.target
        remote = f"{t.remote_ip}:{t.remote_port}" if t.remote_ip else "(unset)"
        hop, expected, ok, note = (None, None, None, "no remote_ip")
        if t.remote_ip and t.remote_ip not in ("0.0.0.0", "::"):
            hop, expected, ok, note = next_hop_check(view, t.remote_ip, t.dev_name,
                                                     t.remote_mac)
        if t.enabled is False:
            note = ("disabled: nothing is sent. " + note).strip()
        if t.transmit_errors:
            note = (note + f" {t.transmit_errors} messages were dropped at the sender.").strip()
        out.append(TargetStatus(
            name=t.name, origin="configfs", enabled=t.enabled, dev=t.dev_name,
            local_ip=t.local_ip, remote=remote, remote_mac=t.remote_mac,
            transmit_errors=t.transmit_errors, extended=t.extended, userdata=dict(t.userdata),
            next_hop=hop, expected_mac=expected, mac_ok=ok, note=note))
    from netconsole.doctor.facts import Origin, gather

    names = {s.name for s in out}
    for tgt in gather(view).targets:
        if tgt.origin not in (Origin.CMDLINE, Origin.MODPROBE) or tgt.name in names:
            continue
        hop, expected, ok, note = next_hop_check(view, tgt.remote_ip, tgt.dev, tgt.remote_mac)
        out.append(TargetStatus(
            name=tgt.name, origin=tgt.origin.value, enabled=None, dev=tgt.dev,
            local_ip=tgt.local_ip, remote=f"{tgt.remote_ip}:{tgt.remote_port or 6666}",
            remote_mac=tgt.remote_mac, transmit_errors=None, extended=tgt.extended,
            userdata={}, next_hop=hop, expected_mac=expected, mac_ok=ok,
            note=(note + " (from " + tgt.evidence.path + ")").strip()))
    return out
