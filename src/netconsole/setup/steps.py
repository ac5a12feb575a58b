"""The configfs operations that make a target match a plan, sans-IO.

Theory of operation (kernel-netconsole.md §3): `configfs_steps` turns a plan
into the ordered configfs operations, reading the target's current state first,
because writing most attributes while enabled and writing the current `enabled`
value both fail with EINVAL.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass

from netconsole.kernel.configfs import ConfigfsTarget
from netconsole.setup.errors import PlanError
from netconsole.setup.plan import Plan


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

