"""Reading what a plan needs from the host, and filling in the next hop's MAC.

netpoll does no ARP or neighbour discovery (§4.1), so the MAC must be in the
neighbour table when the plan is made. When it is not (nothing has talked to
the gateway lately), `resolve_mac` makes the kernel resolve it by sending the
next hop one packet (`HostWriter.probe_neighbour`: a UDP datagram, or an ICMPv6
echo for IPv6 neighbour discovery) and reads the table again until the entry
is usable. On a snapshot or test tree nothing is sent.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from netconsole._hostport import HostPortError, parse_hostport
from netconsole.doctor.facts import Facts, Mode, gather
from netconsole.doctor.findings import Severity
from netconsole.host.netinfo import find_neighbour
from netconsole.host.view import HostView, live_net
from netconsole.host.write import HostWriter
from netconsole.kernel.addresses import mac_pton
from netconsole.kernel.configfs import CONFIGFS_ROOT
from netconsole.setup.caps import KernelFacts
from netconsole.setup.errors import PlanError
from netconsole.setup.plan import Plan
from netconsole.setup.route import NetView, Receiver

# How long to wait for a neighbour entry after the probe: ARP/ND retransmit
# after 1 s, so 3 s covers the first retry.
RESOLVE_TIMEOUT = 3.0
_POLL = 0.1


def receiver_from_text(text: str, *, default_port: int = 6666) -> tuple[Receiver, str]:
    """Parse `HOST[:PORT]` and resolve a host name. Returns (receiver, host as given).

    Raises:
        PlanError: unparsable, or a name that does not resolve.
    """
    try:
        where = parse_hostport(text, default_port=default_port)
    except HostPortError as exc:
        raise PlanError(f"receiver {exc}") from None
    host, port = where.host, where.port
    try:
        return Receiver(ip=host, port=port, zone=where.zone), host
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise PlanError(f"receiver {host!r} does not resolve: {exc}",
                        "Give an IP address.") from None
    ips = [str(i[4][0]) for i in infos]
    v4 = [ip for ip in ips if ":" not in ip]
    return Receiver(ip=(v4 or ips)[0], port=port), host


def kernel_facts(f: Facts) -> KernelFacts:
    """The doctor's facts, reduced to what the plan needs."""
    v = f.view
    files: frozenset[str] | None = None
    ud: frozenset[str] | None = None
    for name in v.listdir(CONFIGFS_ROOT) or []:
        base = f"{CONFIGFS_ROOT}/{name}"
        entries = v.listdir(base)
        if entries and "enabled" in entries:
            files = frozenset(e for e in entries if e != "userdata")
            got = v.listdir(f"{base}/userdata")
            ud = frozenset(got) if got is not None else None
            break
    dyn = f.config_value("CONFIG_NETCONSOLE_DYNAMIC")
    ipv6 = f.config_value("CONFIG_IPV6")
    return KernelFacts(
        version=f.version,
        builtin={Mode.BUILTIN: True, Mode.MODULE: False}.get(f.mode),
        loaded=f.loaded, dynamic=None if dyn is None else dyn == "y",
        configfs=v.is_dir(CONFIGFS_ROOT), target_files=files, userdata_files=ud,
        ipv6=None if ipv6 is None else ipv6 != "n",
        available={Mode.MISSING: False, Mode.UNKNOWN: None}.get(f.mode, True))


def kernel_problem(f: Facts) -> str | None:
    """Why this kernel cannot run netconsole at all, or None."""
    if f.mode is not Mode.MISSING:
        return None
    where = f"/{f.config_path}" if f.config_path else "the kernel config"
    return (f"this kernel ({f.version or 'unknown'}) has no netconsole: CONFIG_NETCONSOLE is "
            f"not set in {where} and no netconsole module exists")


def hostname(view: HostView) -> str | None:
    """The host's name for the `hostname=` label; the kernel's unset `(none)` is none."""
    names = [view.first_line("proc/sys/kernel/hostname"), view.first_line("etc/hostname")]
    if view.live:
        names.append(socket.gethostname())
    for name in names:
        if name and name not in ("(none)", "localhost"):
            return name
    return None


def net_view(view: HostView, receiver: Receiver, *, fresh: bool = False) -> NetView:
    """Route lookup to the receiver plus the link, address and neighbour views."""
    net = live_net() if fresh and view.live else view.net()
    route = None if receiver.link_local else view.route_get(receiver.ip)
    return NetView(route=route, links=tuple(net.links or ()),
                   addresses=tuple(net.addresses or ()),
                   neighbours=tuple(net.neighbours or ()))


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    plan: Plan
    how: str
    """`neighbour table`, `after <probe>`, or why it is still unknown."""


def resolve_mac(plan: Plan, view: HostView, writer: HostWriter, *,
                timeout: float = RESOLVE_TIMEOUT, probe: bool = True,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.monotonic) -> Resolution:
    """Fill in `plan.next_hop_mac`, provoking resolution when it is missing."""
    if plan.next_hop_mac is not None:
        return Resolution(plan=plan, how=f"neighbour table ({plan.mac_state})")
    if not view.live or not probe:
        return Resolution(plan=plan, how="not in the neighbour table"
                          + ("" if probe else " (--no-probe)"))
    sent = writer.probe_neighbour(plan.next_hop, plan.interface)
    deadline = clock() + timeout
    while True:
        neighbours = live_net().neighbours or []
        n = find_neighbour(neighbours, plan.next_hop, plan.interface)
        if n is not None and n.lladdr and mac_pton(n.lladdr) \
                and not set(n.state) & {"INCOMPLETE", "FAILED"}:
            mac = mac_pton(n.lladdr)
            assert mac is not None
            state = ",".join(n.state) or "unknown"
            return Resolution(plan=plan.with_mac(mac, state),
                              how=f"neighbour table ({state}) after {sent}")
        if clock() >= deadline:
            state = ",".join(n.state) if n is not None else "no entry"
            return Resolution(plan=plan, how=f"still unresolved ({state}) {timeout:g}s after "
                              f"{sent}: is {plan.next_hop} up and on {plan.interface}?")
        sleep(_POLL)


def netpoll_problem(f: Facts, dev: str) -> str | None:
    """The doctor's netpoll verdict for `dev`: the reason when it cannot work."""
    from netconsole.doctor.checks.interface import check_netpoll, inspect

    iface = inspect(f, dev)
    for finding in check_netpoll(f, iface, []):
        if finding.severity is Severity.ERROR:
            return f"{finding.title}. {finding.cause}"
    return None


def gather_facts(view: HostView) -> Facts:
    return gather(view)
