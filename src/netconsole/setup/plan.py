"""Planning a netconsole target, sans-IO: from the kernel's view of the network to
the exact `netconsole=` string.

Theory of operation (kernel-netconsole.md §2, §3, §4.1, §5.1): netpoll builds
Ethernet frames itself and does no ARP and no neighbour discovery, so a target
must name everything the stack would normally work out. `plan_target` puts
three answers together: the way out (route.py: interface and source address),
the next hop's MAC (nexthop.py), and the method and format this kernel takes
(caps.py). steps.py then turns a plan into configfs operations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netconsole.kernel.netconsole_param import (
    DEFAULT_LOCAL_PORT,
    MAX_PARAM_LENGTH,
    TargetParams,
    format_target,
)
from netconsole.setup.caps import Capabilities, KernelFacts, Method, target_format
from netconsole.setup.errors import PlanError
from netconsole.setup.nexthop import NextHop, next_hop
from netconsole.setup.route import NetView, Receiver, egress

DEFAULT_NAME = "netconsole"
"""The configfs directory (and systemd unit suffix) when `--name` is not given."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Everything `setup` will do, and why. `--dry-run --json` prints this."""

    name: str
    receiver: Receiver
    interface: str
    interface_kind: str | None
    local_ip: str
    next_hop: str
    next_hop_kind: NextHop
    next_hop_mac: str | None
    """None until the neighbour table has it (see resolve.py)."""
    mac_state: str
    """The neighbour entry's state (`REACHABLE`, `STALE`...) or `missing`."""
    route: str
    """The route as `ip route get` would print it, for the record."""
    method: Method
    caps: Capabilities
    userdata: tuple[tuple[str, str], ...] = ()
    sysdata: tuple[str, ...] = ()
    local_port: int = DEFAULT_LOCAL_PORT
    notes: tuple[str, ...] = ()
    cmdline_key: str = "netconsole.netconsole"

    @property
    def extended(self) -> bool:
        return self.caps.extended

    @property
    def release(self) -> bool:
        return self.caps.release and self.caps.extended

    @property
    def target(self) -> TargetParams:
        return TargetParams(
            extended=self.extended, release=self.release,
            local_port=None if self.local_port == DEFAULT_LOCAL_PORT else self.local_port,
            local_ip=self.local_ip, dev_name=self.interface, remote_port=self.receiver.port,
            remote_ip=self.receiver.ip, remote_mac=self.next_hop_mac)

    @property
    def param(self) -> str:
        """The `netconsole=` value of this one target."""
        return format_target(self.target)

    @property
    def boot_param(self) -> str:
        """The kernel command-line word (`netconsole.netconsole=` for a module)."""
        return f"{self.cmdline_key}={self.param}"

    def with_mac(self, mac: str, state: str) -> Plan:
        """The same plan once the next hop's MAC is known."""
        return replace(self, next_hop_mac=mac, mac_state=state)


def plan_target(
    receiver: Receiver,
    net: NetView,
    kernel: KernelFacts,
    *,
    name: str = DEFAULT_NAME,
    hostname: str | None = None,
    labels: tuple[tuple[str, str], ...] = (),
    local_port: int = DEFAULT_LOCAL_PORT,
) -> Plan:
    """Work out interface, source, next hop, MAC and format for one target.

    Args:
        receiver: the receiver's address (a link-local IPv6 one needs its zone).
        net: the route lookup to the receiver plus links, addresses, neighbours.
        kernel: what the kernel offers (method and format).
        name: the configfs target name.
        hostname: the `hostname=` userdata value (None: no default label).
        labels: extra `KEY=VALUE` userdata.

    Returns:
        The plan; `next_hop_mac` is None when the neighbour table lacks it.

    Raises:
        PlanError: no route, the receiver is this host, an enslaved or
            non-Ethernet interface, no source address of the family, bad labels.
    """
    if not name or "/" in name or name in (".", ".."):
        raise PlanError(f"target name {name!r} is not a directory name")
    if receiver.family == 6 and kernel.ipv6 is False:
        raise PlanError("the receiver is IPv6 but this kernel has no IPv6 (CONFIG_IPV6 off)",
                        "Use an IPv4 receiver address.")
    out = egress(receiver, net)
    hop = next_hop(receiver, out, net)
    fmt = target_format(kernel, hostname, labels)
    plan = Plan(
        name=name, receiver=receiver, interface=out.interface,
        interface_kind=out.link.kind if out.link else None, local_ip=out.local_ip,
        next_hop=hop.address, next_hop_kind=hop.kind, next_hop_mac=hop.mac,
        mac_state=hop.state, route=out.route, method=fmt.method, caps=fmt.caps,
        userdata=fmt.userdata, sysdata=fmt.sysdata, local_port=local_port,
        notes=(*out.notes, *hop.notes, *fmt.notes), cmdline_key=kernel.cmdline_key)
    if len(plan.param.encode()) >= MAX_PARAM_LENGTH:
        raise PlanError(f"the netconsole= value is {len(plan.param)} bytes; the kernel keeps "
                        f"only {MAX_PARAM_LENGTH - 1}")
    return plan


def module_param_value(plan: Plan, others: tuple[str, ...] = ()) -> str:
    """The whole `netconsole=` value for the module: other targets, then this one.

    Raises:
        PlanError: the targets together do not fit the kernel's 256-byte buffer.
    """
    value = ";".join((*others, plan.param))
    if len(value.encode()) >= MAX_PARAM_LENGTH:
        raise PlanError(f"netconsole= with {len(others) + 1} targets is {len(value)} bytes; "
                        f"the kernel keeps only {MAX_PARAM_LENGTH - 1}",
                        "Use fewer targets, or a kernel with configfs.")
    return value
