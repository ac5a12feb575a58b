"""The next hop and its MAC, sans-IO: the destination MAC a target must name.

netpoll does no ARP and no neighbour discovery (kernel-netconsole.md §2.1), so
the target carries the MAC itself: the receiver's own when it is on the link,
the gateway's otherwise (the broadcast default never crosses a router). It is
read from the neighbour table as `ip neigh` shows it; when the table lacks it,
resolve.py provokes resolution and asks again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from netconsole.host.netinfo import Neighbour, find_neighbour
from netconsole.kernel.addresses import BROADCAST_MAC, mac_pton
from netconsole.setup.route import Egress, NetView, Receiver

# Neighbour states whose lladdr cannot be trusted (or is absent).
_UNUSABLE_STATES = frozenset({"INCOMPLETE", "FAILED", "NOARP"})


class NextHop(enum.Enum):
    GATEWAY = "gateway"
    ON_LINK = "on-link"


@dataclass(frozen=True, slots=True, kw_only=True)
class Hop:
    """Where the frames go first, and its MAC as far as the neighbour table knows."""

    address: str
    kind: NextHop
    mac: str | None
    """None until the neighbour table has it (see resolve.py)."""
    state: str
    """The neighbour entry's state (`REACHABLE`, `STALE`...) or `missing`."""
    notes: tuple[str, ...] = ()


def _usable(n: Neighbour | None) -> bool:
    return n is not None and n.lladdr is not None and mac_pton(n.lladdr) is not None \
        and not (set(n.state) & _UNUSABLE_STATES)


def next_hop(receiver: Receiver, out: Egress, net: NetView) -> Hop:
    """The gateway of the route, or the receiver itself on the link, with its MAC."""
    address = out.gateway or receiver.ip
    kind = NextHop.GATEWAY if out.gateway else NextHop.ON_LINK
    neigh = find_neighbour(list(net.neighbours), address, out.interface)
    notes: list[str] = []
    mac: str | None = None
    state = "missing"
    if neigh is not None:
        state = ",".join(neigh.state) or "unknown"
        if _usable(neigh):
            mac = mac_pton(neigh.lladdr or "")
            if "STALE" in neigh.state:
                notes.append(f"the neighbour entry of {address} is STALE: the MAC is the last "
                             "one seen; it is re-checked at boot when persisted")
    if mac == BROADCAST_MAC:
        mac = None
    return Hop(address=address, kind=kind, mac=mac, state=state, notes=tuple(notes))
