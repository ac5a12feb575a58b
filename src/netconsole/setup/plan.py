"""Planning a netconsole target, sans-IO: from the kernel's view of the network to
the exact `netconsole=` string and the configfs writes.

Theory of operation (kernel-netconsole.md §2, §3, §4.1, §5.1):

netpoll builds Ethernet frames itself and does no ARP and no neighbour
discovery, so a target must name everything the stack would normally work out:
the egress interface, the source address, and the destination MAC, which is the
receiver's own MAC when it is on the link and the gateway's MAC otherwise (the
broadcast default never crosses a router). `plan_target` derives all three from
a route lookup and the neighbour table, exactly as `ip route get` and `ip neigh`
show them, and refuses what netpoll_setup would refuse: an enslaved interface
(-EBUSY, "is a slave device"), no address of the family (-EDESTADDRREQ), a
receiver that is this host.

Which format to use depends on the kernel: extended (4.2+), the release prefix
(6.6+), userdata (6.9+, configfs only), sysdata toggles (6.15-6.17+). When a
configfs target directory is at hand its files decide (a distribution kernel
may carry backports); otherwise the version does. `configfs_steps` then turns a
plan into the ordered configfs operations, reading the target's current state
first, because writing most attributes while enabled and writing the current
`enabled` value both fail with EINVAL.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass, replace

from netconsole.host.netinfo import (
    Address,
    Link,
    Neighbour,
    RouteLookup,
    find_neighbour,
    first_address,
)
from netconsole.kernel.configfs import (
    MAX_USERDATA_ITEMS_NEW,
    MAX_USERDATA_ITEMS_OLD,
    MAX_USERDATA_KEY,
    MAX_USERDATA_VALUE,
    SYSDATA_TOGGLES,
    ConfigfsTarget,
)
from netconsole.kernel.params import (
    BROADCAST_MAC,
    DEFAULT_LOCAL_PORT,
    DEFAULT_REMOTE_PORT,
    IFNAMSIZ,
    MAX_PARAM_LENGTH,
    TargetParams,
    format_target,
    mac_pton,
)
from netconsole.kernel.version import KernelVersion

DEFAULT_NAME = "netconsole"
"""The configfs directory (and systemd unit suffix) when `--name` is not given."""

# The sysdata toggles a new target gets, in the kernel's order (§3.5). `release_enabled`
# is left out: the release prefix (`r`, 6.6+) already names the release on every
# datagram, fragments included, and 6.15-6.18 kernels read that toggle back wrong.
WANTED_SYSDATA = ("cpu_nr_enabled", "taskname_enabled", "msgid_enabled")
SYSDATA_SINCE = {"cpu_nr_enabled": (6, 15), "taskname_enabled": (6, 15),
                 "release_enabled": (6, 16), "msgid_enabled": (6, 17)}
# Neighbour states whose lladdr cannot be trusted (or is absent).
_UNUSABLE_STATES = frozenset({"INCOMPLETE", "FAILED", "NOARP"})
_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


class PlanError(Exception):
    """netconsole cannot be set up this way; `hint` says what to do instead."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class Method(enum.Enum):
    """How the target reaches the running kernel."""

    CONFIGFS = "configfs"
    """CONFIG_NETCONSOLE_DYNAMIC: mkdir a target, write attributes, enable (§3)."""
    MODULE_PARAM = "module-parameter"
    """(Re)load the module with `netconsole=` (no configfs)."""
    BOOT_PARAM = "boot-parameter"
    """Built in without configfs: only the kernel command line can set a target."""


class NextHop(enum.Enum):
    GATEWAY = "gateway"
    ON_LINK = "on-link"


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
        host = self.ip + (f"%{self.zone}" if self.zone else "")
        return f"[{host}]:{self.port}" if self.family == 6 else f"{host}:{self.port}"


def split_receiver(text: str,
                   default_port: int = DEFAULT_REMOTE_PORT) -> tuple[str, int, str | None]:
    """`HOST[:PORT]` -> (host, port, zone). IPv6 with a port needs brackets.

    Accepts `10.0.0.5`, `10.0.0.5:6666`, `logs.example`, `logs.example:7000`,
    `fd00::5`, `[fd00::5]:6666`, `fe80::5%eth0`, `[fe80::5%eth0]:6666`.

    Raises:
        ValueError: an empty host or a port that is not 1-65535.
    """
    text = text.strip()
    port = default_port
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"{text!r}: missing ']'")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: expected ':PORT' after ']'")
            port = _port(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _port(p)
    else:
        host = text
    zone = None
    if "%" in host:
        host, _, zone = host.partition("%")
    if not host:
        raise ValueError("the receiver is empty")
    return host, port, zone or None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelFacts:
    """What the running kernel offers netconsole, as read through host/."""

    version: KernelVersion | None = None
    builtin: bool | None = None
    """True built in, False a module, None unknown."""
    loaded: bool | None = None
    dynamic: bool | None = None
    """CONFIG_NETCONSOLE_DYNAMIC, None when the config is unknown."""
    configfs: bool = False
    """`/sys/kernel/config/netconsole` exists now."""
    target_files: frozenset[str] | None = None
    """The files of an existing configfs target, which show what this kernel has."""
    userdata_files: frozenset[str] | None = None
    """The entries of that target's `userdata/` (None: no userdata directory)."""
    ipv6: bool | None = None
    """CONFIG_IPV6."""
    available: bool | None = None
    """False when the kernel has no netconsole at all (CONFIG_NETCONSOLE not set)."""

    def at_least(self, major: int, minor: int) -> bool:
        """Version check where an unknown kernel counts as new (a missing file is
        caught when the target directory is created)."""
        return self.version is None or self.version.at_least(major, minor)

    @property
    def method(self) -> Method:
        if self.configfs or self.dynamic is True:
            return Method.CONFIGFS
        if self.builtin is True:
            return Method.BOOT_PARAM
        if self.dynamic is None and self.builtin is None:
            # Unknown config: loading the module may make configfs appear; the
            # apply step looks again after `modprobe netconsole`.
            return Method.CONFIGFS
        return Method.MODULE_PARAM

    @property
    def cmdline_key(self) -> str:
        """A module ignores a bare `netconsole=` on the kernel command line (§2.1)."""
        return "netconsole" if self.builtin else "netconsole.netconsole"


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a target on this kernel can carry."""

    extended: bool
    release: bool
    userdata: bool
    sysdata: tuple[str, ...] = ()
    max_userdata: int = MAX_USERDATA_ITEMS_OLD
    source: str = "version"
    """`files` (an existing target's files) or `version` (the kernel release)."""


def capabilities(k: KernelFacts) -> Capabilities:
    """Decide from the configfs files when a target exists, else from the version."""
    many = MAX_USERDATA_ITEMS_NEW if k.version is None or k.version.at_least(6, 19) \
        else MAX_USERDATA_ITEMS_OLD
    if k.target_files is not None:
        ud = k.userdata_files
        return Capabilities(
            extended="extended" in k.target_files, release="release" in k.target_files,
            userdata=ud is not None,
            sysdata=tuple(t for t in WANTED_SYSDATA if ud is not None and t in ud),
            max_userdata=many, source="files")
    sysdata = tuple(t for t in WANTED_SYSDATA if k.at_least(*SYSDATA_SINCE[t]))
    return Capabilities(extended=k.at_least(4, 2), release=k.at_least(6, 6),
                        userdata=k.at_least(6, 9), sysdata=sysdata, max_userdata=many)


class Op(enum.Enum):
    MKDIR = "mkdir"
    WRITE = "write"
    RMDIR = "rmdir"


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One configfs operation; `path` is relative to /sys/kernel/config/netconsole."""

    op: Op
    path: str
    value: str | None = None
    why: str = ""

    def __str__(self) -> str:
        base = "/sys/kernel/config/netconsole/" + self.path
        if self.op is Op.WRITE:
            return f"echo {self.value} > {base}"
        return f"{self.op.value} {base}"


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


def userdata_entries(hostname: str | None, labels: tuple[tuple[str, str], ...] = (),
                     ) -> tuple[tuple[str, str], ...]:
    """`hostname=<hostname>` first, then `--label` entries; a label may override it.

    Raises:
        PlanError: a key the kernel would refuse (§3.4) or a value with a newline.
    """
    entries: dict[str, str] = {}
    if hostname:
        entries["hostname"] = hostname
    for key, value in labels:
        if not key or not _KEY.match(key):
            raise PlanError(f"label key {key!r} must be letters, digits, '_', '-' or '.'")
        if len(key) > MAX_USERDATA_KEY:
            raise PlanError(f"label key {key!r} is {len(key)} characters; netconsole allows "
                            f"{MAX_USERDATA_KEY} (mkdir fails with ENAMETOOLONG)")
        if key in SYSDATA_TOGGLES:
            raise PlanError(f"label key {key!r} is a sysdata toggle file of userdata/")
        if "\n" in value:
            raise PlanError(f"label {key}: a value cannot contain a newline (configfs "
                            "keeps only the last line)")
        if len(value.encode()) > MAX_USERDATA_VALUE:
            raise PlanError(f"label {key}: the value is {len(value.encode())} bytes; "
                            f"netconsole keeps at most {MAX_USERDATA_VALUE} (EMSGSIZE)")
        entries[key] = value
    return tuple(entries.items())


def _usable(n: Neighbour | None) -> bool:
    return n is not None and n.lladdr is not None and mac_pton(n.lladdr) is not None \
        and not (set(n.state) & _UNUSABLE_STATES)


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
    hop: str = route.gateway or receiver.ip
    hop_kind = NextHop.GATEWAY if route.gateway else NextHop.ON_LINK
    neigh = find_neighbour(list(net.neighbours), hop, dev)
    mac: str | None = None
    state = "missing"
    if neigh is not None:
        state = ",".join(neigh.state) or "unknown"
        if _usable(neigh):
            mac = mac_pton(neigh.lladdr or "")
            if "STALE" in neigh.state:
                notes.append(f"the neighbour entry of {hop} is STALE: the MAC is the last one "
                             "seen; it is re-checked at boot when persisted")
    if mac == BROADCAST_MAC:
        mac = None
    caps = capabilities(kernel)
    method = kernel.method
    if not caps.extended:
        notes.append("this kernel predates the extended format (4.2): records arrive as "
                     "plain console text")
    elif not caps.release:
        notes.append("this kernel predates the release prefix (6.6)")
    entries = userdata_entries(hostname, labels)
    ud: tuple[tuple[str, str], ...] = ()
    sysdata: tuple[str, ...] = ()
    if method is Method.CONFIGFS and caps.userdata and caps.extended:
        ud = entries
        sysdata = caps.sysdata
        if len(ud) > caps.max_userdata:
            raise PlanError(f"{len(ud)} userdata entries; this kernel allows "
                            f"{caps.max_userdata} (mkdir fails with ENOSPC)")
    elif entries:
        why = ("userdata needs configfs" if method is not Method.CONFIGFS
               else "userdata needs a 6.9+ kernel")
        notes.append(f"{why}: {', '.join(k + '=' + v for k, v in entries)} will not be sent; "
                     "the receiver names this host by its address"
                     + (" and release" if caps.release else ""))
    words = [receiver.ip, *(["via", route.gateway] if route.gateway else []), "dev", dev,
             "src", local_ip]
    plan = Plan(
        name=name, receiver=receiver, interface=dev, interface_kind=link.kind if link else None,
        local_ip=local_ip, next_hop=hop, next_hop_kind=hop_kind, next_hop_mac=mac, mac_state=state,
        route=" ".join(words), method=method, caps=caps, userdata=ud, sysdata=sysdata,
        local_port=local_port, notes=tuple(notes), cmdline_key=kernel.cmdline_key)
    if len(plan.param.encode()) >= MAX_PARAM_LENGTH:
        raise PlanError(f"the netconsole= value is {len(plan.param)} bytes; the kernel keeps "
                        f"only {MAX_PARAM_LENGTH - 1}")
    return plan


# --- configfs ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Desired:
    """The attribute values a plan wants, as the kernel prints them back."""

    attrs: tuple[tuple[str, str], ...]
    userdata: tuple[tuple[str, str], ...]
    sysdata: tuple[tuple[str, str], ...]


def desired(plan: Plan, files: frozenset[str] | None = None,
            userdata_files: frozenset[str] | None = None) -> Desired:
    """The configfs values of `plan`, keeping only files that exist (when known).

    Order matters on old kernels: local_ip before remote_ip keeps one family, and
    extended before release (`release` without `extended` cannot be enabled).
    """
    if plan.next_hop_mac is None:
        raise PlanError(f"the MAC of {plan.next_hop} is unknown", "Resolve it first.")
    attrs = [("dev_name", plan.interface), ("local_ip", plan.local_ip),
             ("remote_ip", plan.receiver.ip), ("local_port", str(plan.local_port)),
             ("remote_port", str(plan.receiver.port)), ("remote_mac", plan.next_hop_mac)]
    if plan.caps.extended:
        attrs.append(("extended", "1"))
        if plan.caps.release:
            attrs.append(("release", "1"))
    if files is not None:
        attrs = [(k, v) for k, v in attrs if k in files]
    ud = list(plan.userdata) if files is None or userdata_files is not None else []
    sysdata = [(t, "1") for t in plan.sysdata
               if userdata_files is None or t in userdata_files]
    return Desired(attrs=tuple(attrs), userdata=tuple(ud), sysdata=tuple(sysdata))


def _same(attr: str, want: str, have: str | None) -> bool:
    if have is None:
        return False
    have = have.strip()
    if attr in ("local_ip", "remote_ip"):
        try:
            return ipaddress.ip_address(have) == ipaddress.ip_address(want)
        except ValueError:
            return False
    if attr == "remote_mac":
        return have.lower() == want.lower()
    if attr in ("extended", "release"):
        return have in ("1", "Y", "y") if want == "1" else have in ("0", "N", "n")
    return have == want


def configfs_steps(plan: Plan, current: ConfigfsTarget | None,
                   files: frozenset[str] | None = None,
                   userdata_files: frozenset[str] | None = None) -> tuple[Step, ...]:
    """The configfs operations that make target `plan.name` match `plan`, in order.

    Args:
        current: the target as read now (None: it does not exist yet).
        files, userdata_files: the files the target directory has (None: unknown,
            write everything).

    Returns:
        Nothing at all when the target already matches and is enabled: re-running
        `setup` is idempotent. Otherwise: mkdir when new; `enabled=0` only when it is
        enabled and an attribute that needs it changes; the changed attributes;
        userdata and sysdata (writable while enabled); `enabled=1` unless it stays on.
    """
    want = desired(plan, files, userdata_files)
    n = plan.name
    steps: list[Step] = []
    if current is None:
        steps.append(Step(op=Op.MKDIR, path=n, why="a new target starts disabled"))
        have_attrs: dict[str, str] = {}
        have_ud: dict[str, str] = {}
        have_sys: dict[str, bool | None] = {}
        enabled = False
    else:
        have_attrs = current.raw
        have_ud = current.userdata
        have_sys = current.sysdata
        enabled = current.enabled is True
    changed = [(k, v) for k, v in want.attrs if not _same(k, v, have_attrs.get(k))]
    if changed and enabled:
        steps.append(Step(op=Op.WRITE, path=f"{n}/enabled", value="0",
                          why="attributes can only change while disabled (else EINVAL)"))
        enabled = False
    for k, v in changed:
        steps.append(Step(op=Op.WRITE, path=f"{n}/{k}", value=v))
    wanted_keys = {k for k, _ in want.userdata}
    for key in sorted(set(have_ud) - wanted_keys):
        steps.append(Step(op=Op.RMDIR, path=f"{n}/userdata/{key}",
                          why="no longer asked for"))
    for key, value in want.userdata:
        if key not in have_ud:
            steps.append(Step(op=Op.MKDIR, path=f"{n}/userdata/{key}"))
        if have_ud.get(key) != value:
            steps.append(Step(op=Op.WRITE, path=f"{n}/userdata/{key}/value", value=value))
    for toggle, value in want.sysdata:
        if have_sys.get(toggle) is not True:
            steps.append(Step(op=Op.WRITE, path=f"{n}/userdata/{toggle}", value=value))
    if not enabled:
        steps.append(Step(op=Op.WRITE, path=f"{n}/enabled", value="1",
                          why="netpoll_setup runs here; its errors come back from this write"))
    return tuple(steps)


def remove_steps(current: ConfigfsTarget) -> tuple[Step, ...]:
    """Disable (only if enabled: writing 0 twice is EINVAL), drop userdata keys, rmdir."""
    steps: list[Step] = []
    if current.enabled:
        steps.append(Step(op=Op.WRITE, path=f"{current.name}/enabled", value="0"))
    for key in sorted(current.userdata):
        steps.append(Step(op=Op.RMDIR, path=f"{current.name}/userdata/{key}",
                          why="configfs refuses to remove a group with children"))
    steps.append(Step(op=Op.RMDIR, path=current.name))
    return tuple(steps)


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
