"""Links, addresses, routes and neighbours: one model for live netlink and files.

Snapshots keep these as the JSON that `ip -j link|addr|route|neigh` prints (what
`--collect` writes, and what a person can produce with `ip -j`), or as the plain
text of `ip link|addr|route|neigh`. Both parse into the dataclasses below, and
`lookup_route` does the longest-prefix match that `ip route get` would, so a
snapshot answers "which interface, which gateway" without a kernel.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    ifindex: int | None
    name: str
    flags: tuple[str, ...] = ()
    operstate: str | None = None
    mac: str | None = None
    master: str | None = None
    kind: str | None = None
    """rtnetlink link kind (`bond`, `bridge`, `vlan`, `netkit`...), None for a NIC."""

    @property
    def up(self) -> bool:
        return "UP" in self.flags

    @property
    def carrier(self) -> bool | None:
        if "NO-CARRIER" in self.flags:
            return False
        if "LOWER_UP" in self.flags:
            return True
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    ifname: str
    family: int
    """4 or 6."""
    address: str
    prefixlen: int
    scope: str = "global"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    dst: str
    """`default` or a prefix (`10.0.0.0/24`, `10.0.0.5` for a host route)."""
    dev: str | None = None
    gateway: str | None = None
    prefsrc: str | None = None
    metric: int = 0
    family: int = 4
    type: str = "unicast"

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        if self.dst == "default":
            return ipaddress.ip_network("::/0" if self.family == 6 else "0.0.0.0/0")
        return ipaddress.ip_network(self.dst, strict=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Neighbour:
    dst: str
    dev: str | None
    lladdr: str | None
    state: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteLookup:
    """What `ip route get <dst>` says."""

    dst: str
    dev: str | None
    gateway: str | None
    prefsrc: str | None
    type: str = "unicast"
    source: str = "lookup"
    """`kernel` (asked the live kernel) or `lookup` (longest prefix over a route table)."""


def _family(text: str) -> int:
    return 6 if ":" in text else 4


# --- ip -j ---------------------------------------------------------------------------


def _load(text: str) -> list[dict[str, Any]]:
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("expected a JSON list as `ip -j` prints")
    return [d for d in data if isinstance(d, dict)]


def links_from_json(text: str) -> list[Link]:
    out = []
    for d in _load(text):
        info = d.get("linkinfo") or {}
        out.append(Link(
            ifindex=d.get("ifindex"), name=str(d.get("ifname", "")).split("@")[0],
            flags=tuple(d.get("flags") or ()), operstate=d.get("operstate"),
            mac=d.get("address"), master=d.get("master"),
            kind=info.get("info_kind") if isinstance(info, dict) else None))
    return out


def addresses_from_json(text: str) -> list[Address]:
    out = []
    for d in _load(text):
        for a in d.get("addr_info") or ():
            fam = {"inet": 4, "inet6": 6}.get(a.get("family", ""))
            if fam is None or "local" not in a:
                continue
            out.append(Address(ifname=str(d.get("ifname", a.get("label", ""))),
                               family=fam, address=a["local"],
                               prefixlen=int(a.get("prefixlen", 32 if fam == 4 else 128)),
                               scope=a.get("scope", "global")))
    return out


def routes_from_json(text: str) -> list[Route]:
    out = []
    for d in _load(text):
        dst = str(d.get("dst", "default"))
        gw = d.get("gateway")
        fam = _family(dst) if dst != "default" else (_family(gw) if gw else 4)
        out.append(Route(dst=dst, dev=d.get("dev"), gateway=gw, prefsrc=d.get("prefsrc"),
                         metric=int(d.get("metric", 0)), family=fam,
                         type=d.get("type", "unicast")))
    return out


def neighbours_from_json(text: str) -> list[Neighbour]:
    return [Neighbour(dst=d["dst"], dev=d.get("dev"), lladdr=d.get("lladdr"),
                      state=tuple(d.get("state") or ()))
            for d in _load(text) if "dst" in d]


# --- ip (text) -----------------------------------------------------------------------

_LINK_HEAD = re.compile(r"^(\d+):\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>(.*)$")


def links_from_text(text: str) -> list[Link]:
    """`ip link` / `ip addr` text: `2: eth0: <BROADCAST,UP,LOWER_UP> mtu ... state UP`.

    `ip -br link` output is accepted too.
    """
    if not any(_LINK_HEAD.match(line) for line in text.splitlines()):
        return links_from_brief(text)
    out: list[Link] = []
    for line in text.splitlines():
        m = _LINK_HEAD.match(line)
        if m:
            rest = m.group(4)
            state = re.search(r"\bstate (\S+)", rest)
            master = re.search(r"\bmaster (\S+)", rest)
            out.append(Link(ifindex=int(m.group(1)), name=m.group(2),
                            flags=tuple(f for f in m.group(3).split(",") if f),
                            operstate=state.group(1) if state else None,
                            master=master.group(1) if master else None))
            continue
        lm = re.match(r"^\s+link/\S+ ([0-9a-fA-F:]{17})", line)
        if lm and out and out[-1].mac is None:
            last = out[-1]
            out[-1] = Link(ifindex=last.ifindex, name=last.name, flags=last.flags,
                           operstate=last.operstate, mac=lm.group(1).lower(),
                           master=last.master, kind=last.kind)
        km = re.match(r"^\s+(bond|bridge|vlan|team|macvlan|netkit|hsr|prp|veth|tun)\b", line)
        if km and out and out[-1].kind is None:
            last = out[-1]
            out[-1] = Link(ifindex=last.ifindex, name=last.name, flags=last.flags,
                           operstate=last.operstate, mac=last.mac, master=last.master,
                           kind=km.group(1))
    return out


_BRIEF = re.compile(r"^(\S+?)(?:@\S+)?\s+(UP|DOWN|UNKNOWN|LOWERLAYERDOWN|DORMANT|NOTPRESENT)"
                    r"\s*(.*)$")


def links_from_brief(text: str) -> list[Link]:
    """`ip -br link`: `eth0  UP  52:54:00:12:34:56 <BROADCAST,MULTICAST,UP,LOWER_UP>`."""
    out = []
    for line in text.splitlines():
        m = _BRIEF.match(line)
        if not m:
            continue
        mac = re.search(r"\b([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})\b", m.group(3))
        flags = re.search(r"<([^>]*)>", m.group(3))
        out.append(Link(ifindex=None, name=m.group(1), operstate=m.group(2),
                        flags=tuple(f for f in flags.group(1).split(",") if f) if flags else (),
                        mac=mac.group(1).lower() if mac else None))
    return out


def addresses_from_brief(text: str) -> list[Address]:
    """`ip -br addr`: `eth0  UP  10.0.0.2/24 fe80::1/64`."""
    out = []
    for line in text.splitlines():
        m = _BRIEF.match(line)
        if not m:
            continue
        for word in m.group(3).split():
            addr, _, plen = word.partition("/")
            if plen.isdigit():
                fam = 6 if ":" in addr else 4
                out.append(Address(ifname=m.group(1), family=fam, address=addr,
                                   prefixlen=int(plen),
                                   scope="link" if addr.lower().startswith("fe80") else "global"))
    return out


def addresses_from_text(text: str) -> list[Address]:
    """`ip addr` text: `inet 10.0.0.2/24 ... scope global eth0` (or `ip -br addr`)."""
    if not any(_LINK_HEAD.match(line) for line in text.splitlines()):
        return addresses_from_brief(text)
    out: list[Address] = []
    current = ""
    for line in text.splitlines():
        m = _LINK_HEAD.match(line)
        if m:
            current = m.group(2)
            continue
        am = re.match(r"^\s+(inet6?) ([0-9a-fA-F:.]+)(?:/(\d+))?(.*)$", line)
        if am and current:
            fam = 6 if am.group(1) == "inet6" else 4
            scope = re.search(r"\bscope (\S+)", am.group(4))
            out.append(Address(ifname=current, family=fam, address=am.group(2),
                               prefixlen=int(am.group(3) or (128 if fam == 6 else 32)),
                               scope=scope.group(1) if scope else "global"))
    return out


def routes_from_text(text: str) -> list[Route]:
    """`ip route` / `ip -6 route` text."""
    out: list[Route] = []
    for line in text.splitlines():
        words = line.split()
        if not words:
            continue
        rtype = "unicast"
        if words[0] in ("unicast", "local", "broadcast", "unreachable", "blackhole",
                        "prohibit", "throw", "multicast", "anycast"):
            rtype = words.pop(0)
        if not words:
            continue
        dst = words[0]
        kv: dict[str, str] = {}
        for i in range(1, len(words) - 1):
            if words[i] in ("via", "dev", "src", "metric"):
                kv[words[i]] = words[i + 1]
        gw = kv.get("via")
        if gw and gw.startswith("inet"):
            gw = None
        fam = _family(dst) if dst != "default" else (_family(gw) if gw else 4)
        try:
            metric = int(kv.get("metric", "0"))
            route = Route(dst=dst, dev=kv.get("dev"), gateway=gw, prefsrc=kv.get("src"),
                          metric=metric, family=fam, type=rtype)
            route.network  # noqa: B018 - validate the prefix now, not in lookup
        except ValueError:
            continue
        out.append(route)
    return out


def neighbours_from_text(text: str) -> list[Neighbour]:
    """`ip neigh` text: `10.0.0.1 dev eth0 lladdr 52:54:00:12:34:56 REACHABLE`."""
    out: list[Neighbour] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2:
            continue
        dev = words[words.index("dev") + 1] if "dev" in words[:-1] else None
        ll = words[words.index("lladdr") + 1] if "lladdr" in words[:-1] else None
        state = tuple(w for w in words[1:] if w.isupper() and w not in ("PERMANENT_",))
        out.append(Neighbour(dst=words[0], dev=dev, lladdr=ll.lower() if ll else None,
                             state=state))
    return out


# --- route lookup --------------------------------------------------------------------


def lookup_route(routes: list[Route], dst: str) -> RouteLookup | None:
    """Longest-prefix match over the main table, lowest metric on a tie.

    Policy routing and multipath are not modelled; a live host is asked directly.
    """
    try:
        addr = ipaddress.ip_address(dst)
    except ValueError:
        return None
    best: Route | None = None
    for r in routes:
        if r.type not in ("unicast", "local", "unreachable", "blackhole", "prohibit"):
            continue
        try:
            net = r.network
        except ValueError:
            continue
        if net.version != addr.version or addr not in net:
            continue
        if best is None or net.prefixlen > best.network.prefixlen or (
            net.prefixlen == best.network.prefixlen and r.metric < best.metric
        ):
            best = r
    if best is None:
        return None
    return RouteLookup(dst=dst, dev=best.dev, gateway=best.gateway, prefsrc=best.prefsrc,
                       type=best.type)


def first_address(addresses: list[Address], ifname: str, family: int,
                  *, link_local: bool | None = None) -> Address | None:
    """The address netpoll would pick: the first of the family on the device."""
    for a in addresses:
        if a.ifname != ifname or a.family != family:
            continue
        if link_local is not None and (a.scope == "link") != link_local:
            continue
        return a
    return None


def find_neighbour(neighbours: list[Neighbour], dst: str,
                   dev: str | None = None) -> Neighbour | None:
    for n in neighbours:
        try:
            same = ipaddress.ip_address(n.dst) == ipaddress.ip_address(dst)
        except ValueError:
            same = n.dst == dst
        if same and (dev is None or n.dev is None or n.dev == dev):
            return n
    return None


def to_json(items: list[dict[str, Any]]) -> str:
    return json.dumps(items, indent=1, sort_keys=True)
