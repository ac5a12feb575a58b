"""Applying a plan to the running kernel: configfs when it exists, else the module
parameter (kernel-netconsole.md §2, §3).

configfs is preferred: no reboot, no module reload, several named targets, and
the kernel reports each problem on the write that caused it. Every write is
read-before-write (`plan.configfs_steps`), so re-running is idempotent and an
enabled target is updated in place by disabling, writing and re-enabling.
Without configfs the module is (re)loaded with the whole `netconsole=` value.
All I/O goes through `host.HostView` (reads) and `host.write.HostWriter`.
"""

from __future__ import annotations

import errno as E
from collections.abc import Callable
from dataclasses import dataclass, field

from netconsole.host.view import HostView
from netconsole.host.write import HostWriter
from netconsole.kernel import dmesg as kdmesg
from netconsole.kernel.configfs import (
    CONFIGFS_ROOT,
    SYSDATA_TOGGLES,
    ConfigfsTarget,
    parse_target_dir,
)
from netconsole.setup.caps import Method
from netconsole.setup.errors import KernelError, errno_from_modprobe, explain
from netconsole.setup.plan import Plan, module_param_value
from netconsole.setup.steps import Op, Step, configfs_steps, remove_steps

ViewFactory = Callable[[], HostView]


class ApplyError(Exception):
    """An operation failed; `error` explains it, `done` lists what had succeeded."""

    def __init__(self, error: KernelError, done: tuple[str, ...] = (),
                 dmesg: tuple[str, ...] = (), state: str = "") -> None:
        super().__init__(str(error))
        self.error = error
        self.done = done
        self.dmesg = dmesg
        self.state = state
        """What the target is left as (`disabled`, `absent`...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    method: Method
    done: tuple[str, ...] = ()
    """Each operation performed, as a shell line."""
    changed: bool = True
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetState:
    """A configfs target as read now, with the files its directory has."""

    target: ConfigfsTarget
    files: frozenset[str] | None
    """None for a directory without attribute files (a plain test tree)."""
    userdata_files: frozenset[str] | None


def read_target(view: HostView, name: str) -> TargetState | None:
    """Read `/sys/kernel/config/netconsole/<name>` (None when it does not exist)."""
    base = f"{CONFIGFS_ROOT}/{name}"
    if not view.is_dir(base):
        return None
    entries = view.listdir(base) or []
    files: dict[str, str | None] = {}
    for attr in entries:
        if attr != "userdata" and not view.is_dir(f"{base}/{attr}"):
            files[attr] = view.read(f"{base}/{attr}")
    ud_entries = view.listdir(f"{base}/userdata")
    userdata: dict[str, str | None] = {}
    for entry in ud_entries or []:
        if entry in SYSDATA_TOGGLES:
            files[entry] = view.read(f"{base}/userdata/{entry}")
        elif view.is_dir(f"{base}/userdata/{entry}"):
            userdata[entry] = view.read(f"{base}/userdata/{entry}/value")
    target = parse_target_dir(name, files, userdata)
    real = "enabled" in entries
    return TargetState(
        target=target,
        files=frozenset(e for e in entries if e != "userdata") if real else None,
        userdata_files=(frozenset(ud_entries) if ud_entries is not None else None)
        if real else None)


def list_targets(view: HostView) -> list[TargetState]:
    out = []
    for name in view.listdir(CONFIGFS_ROOT) or []:
        got = read_target(view, name)
        if got is not None:
            out.append(got)
    return out


def recent_netconsole_lines(view: HostView, last: int = 200) -> tuple[str, ...]:
    """The newest netconsole/netpoll dmesg lines: the kernel's own reason."""
    if not view.live:
        return ()
    got = view.dmesg()
    if got is None:
        return ()
    lines = got[1][-last:]
    return tuple(m.text for m in kdmesg.scan(lines))[-6:]


def _run_step(writer: HostWriter, step: Step) -> None:
    rel = f"{CONFIGFS_ROOT}/{step.path}"
    if step.op is Op.MKDIR:
        writer.mkdir(rel)
    elif step.op is Op.RMDIR:
        writer.rmdir(rel)
    else:
        writer.write_attr(rel, step.value or "")


def _attribute(step: Step) -> str:
    parts = step.path.split("/", 1)
    return parts[1] if len(parts) > 1 else parts[0]


def execute(steps: tuple[Step, ...], writer: HostWriter, plan_or_dev: Plan | str,
            fresh: ViewFactory, *, family: int = 4) -> tuple[str, ...]:
    """Run configfs steps in order; stop at the first error and explain it.

    Raises:
        ApplyError: with what was done before the failing step.
    """
    dev = plan_or_dev.interface if isinstance(plan_or_dev, Plan) else plan_or_dev
    if isinstance(plan_or_dev, Plan):
        family = plan_or_dev.receiver.family
    done: list[str] = []
    enabled: bool | None = None
    for step in steps:
        try:
            _run_step(writer, step)
        except OSError as exc:
            attr = _attribute(step) if step.op is Op.WRITE else None
            err = explain(exc.errno or E.EIO, operation=str(step), attribute=attr, dev=dev,
                          family=family, enabled=enabled)
            state = "unknown"
            name = step.path.split("/", 1)[0]
            got = read_target(fresh(), name)
            if got is None:
                state = "absent"
            elif got.target.enabled is not None:
                state = "enabled" if got.target.enabled else "disabled"
            raise ApplyError(err, tuple(done), recent_netconsole_lines(fresh()),
                             state) from exc
        if step.op is Op.WRITE and step.path.endswith("/enabled"):
            enabled = step.value == "1"
        done.append(str(step))
    return tuple(done)


def ensure_configfs(view: HostView, writer: HostWriter) -> tuple[bool, tuple[str, ...]]:
    """Make /sys/kernel/config/netconsole appear if the kernel can: load the module
    (without targets) and mount configfs. Returns (present, what was done)."""
    done: list[str] = []
    if view.is_dir(CONFIGFS_ROOT):
        return True, ()
    if not writer.live:
        return False, ()
    steps: list[list[str]] = []
    if not view.is_dir("sys/module/netconsole"):
        steps.append(["modprobe", "netconsole"])
    mounts = HostView("/", live=True).read("proc/mounts") or ""
    if " configfs " not in mounts and view.is_dir("sys/kernel/config"):
        steps.append(["mount", "-t", "configfs", "none", "/sys/kernel/config"])
    for argv in steps:
        try:
            res = writer.run(argv)
        except OSError as exc:
            done.append(f"{' '.join(argv)} (not run: {exc.strerror})")
            continue
        if res is not None:
            done.append(" ".join(argv) + ("" if res.returncode == 0 else
                                          f" (failed: {res.stderr.strip()})"))
    return HostView("/", live=True).is_dir(CONFIGFS_ROOT), tuple(done)


def apply_configfs(plan: Plan, writer: HostWriter, fresh: ViewFactory) -> Applied:
    """Create or update target `plan.name` through configfs.

    Raises:
        ApplyError: a write failed (the target is left as `state` says).
    """
    done: list[str] = []
    state = read_target(fresh(), plan.name)
    if state is None:
        done += execute(configfs_steps(plan, None)[:1], writer, plan, fresh)
        state = read_target(fresh(), plan.name)
        if state is None:  # pragma: no cover - mkdir succeeded but nothing is there
            raise ApplyError(explain(E.ENOENT, operation=f"mkdir {plan.name}"))
    steps = configfs_steps(plan, state.target, state.files, state.userdata_files)
    notes: list[str] = []
    if state.files is not None:
        missing = [a for a in ("extended", "release") if getattr(plan.caps, a)
                   and a not in state.files]
        if missing:
            notes.append(f"this kernel's targets have no {', '.join(missing)} file")
    if not steps:
        return Applied(method=Method.CONFIGFS, done=tuple(done), changed=bool(done),
                       notes=("target already configured and enabled; nothing to change",))
    try:
        done += execute(steps, writer, plan, fresh)
    except ApplyError as exc:
        raise ApplyError(exc.error, (*done, *exc.done), exc.dmesg, exc.state) from exc
    return Applied(method=Method.CONFIGFS, done=tuple(done), notes=tuple(notes))


def apply_module(plan: Plan, writer: HostWriter, view: HostView,
                 others: tuple[str, ...] = ()) -> Applied:
    """(Re)load the module with `netconsole=` holding `others` and this target.

    Raises:
        ApplyError: modprobe failed (the errno from its message, explained).
    """
    value = module_param_value(plan, others)
    try:
        return _modprobe(plan, writer, view, value)
    except OSError as exc:
        raise ApplyError(KernelError(
            errno=exc.errno or E.ENOENT, name="ENOENT", operation="modprobe",
            cause=f"modprobe cannot run: {exc.strerror}",
            remedy="Install kmod, or load netconsole by hand with the netconsole= shown "
            "by --dry-run.")) from exc


def _modprobe(plan: Plan, writer: HostWriter, view: HostView, value: str) -> Applied:
    done: list[str] = []
    argv_load = ["modprobe", "netconsole", f"netconsole={value}"]
    if view.is_dir("sys/module/netconsole"):
        res = writer.run(["modprobe", "-r", "netconsole"])
        done.append("modprobe -r netconsole")
        if res is not None and res.returncode != 0:
            raise ApplyError(KernelError(
                errno=E.EBUSY, name="EBUSY", operation="modprobe -r netconsole",
                cause=f"the loaded module cannot be removed: {res.stderr.strip()}",
                remedy="A built-in netconsole cannot be reloaded: use --boot-param."),
                tuple(done))
    res = writer.run(argv_load)
    line = " ".join(argv_load[:2]) + f" 'netconsole={value}'"
    if res is not None and res.returncode != 0:
        n = errno_from_modprobe(res.stderr) or E.EINVAL
        err = explain(n, operation=line, attribute=None, dev=plan.interface,
                      family=plan.receiver.family)
        raise ApplyError(err, tuple(done), recent_netconsole_lines(view), "not loaded")
    done.append(line)
    return Applied(method=Method.MODULE_PARAM, done=tuple(done))


def remove_target(name: str, writer: HostWriter, fresh: ViewFactory) -> tuple[str, ...]:
    """Disable and delete configfs target `name`.

    Raises:
        ApplyError: it does not exist, or a step failed.
    """
    state = read_target(fresh(), name)
    if state is None:
        raise ApplyError(KernelError(
            errno=E.ENOENT, name="ENOENT", operation=f"remove {name}",
            cause=f"there is no configfs target {name}",
            remedy="`netconsole setup --status` lists the targets."))
    return execute(remove_steps(state.target), writer, state.target.dev_name or "?", fresh)
