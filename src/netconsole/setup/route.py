"""The way out to the receiver, sans-IO: route, egress interface and source address.

Theory of operation (kernel-netconsole.md §2, §5.1): netpoll builds Ethernet
frames itself, so a target must name the interface and the source address the
stack would otherwise choose. `egress` takes both from a route lookup (as
`ip route get` shows it) and the interface's addresses, and refuses what
netpoll_setup would refuse: an enslaved interface (-EBUSY, "is a slave
device"), no address of the family (-EDESTADDRREQ), a receiver that is this host.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netconsole._hostport import format_hostport
from netconsole.host.netinfo import Address, Link, Neighbour, RouteLookup, first_address
from netconsole.kernel.netconsole_param import DEFAULT_REMOTE_PORT, IFNAMSIZ
from netconsole.setup.errors import PlanError


@dataclass(frozen=True, slots=True, kw_only=True)
class Receiver:
    """Where records go: an IP address (never a name: resolving is I/O)."""

    ip: str
    port: int = DEFAULT_REMOTE_PORT
    zone: str | None = None
    """The interface of an IPv6 link-local address (`fe80::1%eth0`)."""

    def __post_init__(self) -> None:
        addr = ipaddress.ip_address(self.ip)
        object.__setattr__(self, "ip", str(addr))
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not 1-65535")

    @property
    def family(self) -> int:
        return 6 if ":" in self.ip else 4

    @property
    def link_local(self) -> bool:
        return self.family == 6 and ipaddress.IPv6Address(self.ip).is_link_local

    def __str__(self) -> str:
        return format_hostport(self.ip + (f"%{self.zone}" if self.zone else ""), self.port)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetView:
    """The netlink views a plan needs: `ip route get`, `ip link`, `ip addr`, `ip neigh`."""

    route: RouteLookup | None
    links: tuple[Link, ...] = ()
    addresses: tuple[Address, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()

    def link(self, name: str) -> Link | None:
        for lk in self.links:
            if lk.name == name:
                return lk
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Egress:
    """How frames to the receiver leave this host."""

    interface: str
    link: Link | None
    """The interface as `ip link` shows it (None: not in the view)."""
    local_ip: str
    gateway: str | None
    """The router the route goes through; None when the receiver is on the link."""
    route: str
    """The route as `ip route get` would print it, for the record."""
    notes: tuple[str, ...] = ()


def egress(receiver: Receiver, net: NetView) -> Egress:
    """The interface and source address netpoll must be given to reach `receiver`.

    Raises:
        PlanError: no route, the receiver is this host, an enslaved or
            non-Ethernet interface, no source address of the family.
    """
    notes: list[str] = []
    route = net.route
    if receiver.link_local:
        if not receiver.zone:
            raise PlanError(f"{receiver.ip} is link-local: say which interface, "
                            f"e.g. {receiver.ip}%eth0")
        route = RouteLookup(dst=receiver.ip, dev=receiver.zone, gateway=None, prefsrc=None)
    if route is None or route.dev is None:
        raise PlanError(f"no route to {receiver.ip}",
                        "Check `ip route get " + receiver.ip + "`; netconsole needs the "
                        "receiver reachable through one interface.")
    if route.type == "local" or (route.dev == "lo"):
        raise PlanError(
            f"{receiver.ip} is this host (route type {route.type}, dev {route.dev})",
            "netconsole puts frames on an interface's wire and never into this host's own "
            "stack: run the receiver on another machine, or use `netconsole forward` "
            "to send from userspace.")
    if route.type not in ("unicast",):
        raise PlanError(f"the route to {receiver.ip} is {route.type}: nothing can be sent")
    dev = route.dev
    link = net.link(dev)
    if link is not None and link.master:
        master = net.link(link.master)
        kind = master.kind if master else None
        if kind == "vrf":
            hint = (f"{dev} is enslaved to the VRF {link.master}; netpoll refuses any device "
                    "with a master, so netconsole cannot use it.")
        else:
            hint = (f"Point netconsole at its master {link.master}"
                    + (f" (a {kind})" if kind else "") + ": bonds and bridges pass netpoll "
                    "to their ports.")
        raise PlanError(
            f"{dev} is a slave of {link.master}: netpoll_setup refuses it with "
            f"'{dev} is a slave device, aborting' (EBUSY)", hint)
    if link is not None and (link.mac is None or link.mac == "00:00:00:00:00:00"
                             or "NOARP" in link.flags or "POINTOPOINT" in link.flags):
        raise PlanError(
            f"{dev} is not an Ethernet device (kind {link.kind or 'unknown'}, no MAC "
            "or NOARP): netpoll builds Ethernet frames",
            "Use `netconsole forward`, which sends from userspace through any interface.")
    if len(dev) >= IFNAMSIZ:
        raise PlanError(f"interface name {dev!r} is longer than 15 characters")
    if link is not None and not link.up:
        notes.append(f"{dev} is down: netpoll_setup will force it up "
                     f"('device {dev} not up yet, forcing it')")
    if link is not None and link.kind in ("bond", "team", "bridge"):
        notes.append(f"{dev} is a {link.kind}: netpoll reaches its ports through it; "
                     "every port must support netpoll")
    local_ip = route.prefsrc
    if local_ip is None:
        want_ll = receiver.link_local if receiver.family == 6 else None
        addr = first_address(list(net.addresses), dev, receiver.family, link_local=want_ll)
        if addr is None:
            fam = "IPv6" if receiver.family == 6 else "IPv4"
            scope = (" link-local" if want_ll else " global") if want_ll is not None else ""
            raise PlanError(
                f"{dev} has no{scope} {fam} address: netpoll_setup would fail with "
                f"'no IP address for {dev}, aborting' (EDESTADDRREQ)",
                f"Add an address to {dev}, or use a receiver reachable from one that has.")
        local_ip = addr.address
    words = [receiver.ip, *(["via", route.gateway] if route.gateway else []), "dev", dev,
             "src", local_ip]
    return Egress(interface=dev, link=link, local_ip=local_ip, gateway=route.gateway,
                  route=" ".join(words), notes=tuple(notes))
