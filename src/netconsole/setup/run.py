"""`setup` end to end: plan -> resolve -> apply -> persist -> verify.

`run_setup(SetupRequest)` is the one library call behind `netconsole setup`; it
reads through `HostView`, changes the host only through `HostWriter`, and
returns a `SetupReport` that the CLI renders as text or JSON. A `--dry-run`
stops after planning (it may still send the one probe packet that fills the
neighbour table; `probe=False` prevents even that).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from netconsole._hostport import HostPortError
from netconsole.host.view import HostView
from netconsole.host.write import HostWriter
from netconsole.kernel.configfs import CONFIGFS_ROOT
from netconsole.setup import loglevel as ll_mod
from netconsole.setup.apply import (
    Applied,
    ApplyError,
    apply_configfs,
    apply_module,
    ensure_configfs,
    read_target,
    remove_target,
)
from netconsole.setup.caps import Method
from netconsole.setup.errors import PlanError
from netconsole.setup.persist import (
    MODPROBE_FILE,
    Persisted,
    boot_param_note,
    install,
    parse_registry,
    uninstall,
    written_units,
)
from netconsole.setup.plan import DEFAULT_NAME, Plan, module_param_value, plan_target
from netconsole.setup.resolve import (
    gather_facts,
    hostname,
    kernel_facts,
    kernel_problem,
    net_view,
    netpoll_problem,
    receiver_from_text,
    resolve_mac,
)
from netconsole.setup.status import TargetStatus, status
from netconsole.setup.steps import configfs_steps
from netconsole.setup.verify import VERIFY_TIMEOUT, Outcome, Verification, api_url, verify

IGNORE_LOGLEVEL = "sys/module/printk/parameters/ignore_loglevel"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupRequest:
    receiver: str
    name: str = DEFAULT_NAME
    labels: tuple[tuple[str, str], ...] = ()
    dry_run: bool = False
    persist: bool = False
    boot_param: bool = False
    loglevel: int | None = None
    root: str | None = None
    receiver_api: str | None = None
    verify: bool = True
    verify_timeout: float = VERIFY_TIMEOUT
    probe: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupReport:
    plan: Plan
    dry_run: bool
    mac_resolution: str
    configfs_steps: tuple[str, ...] = ()
    module_param: str | None = None
    """The `netconsole=` value modprobe gets (every recorded target)."""
    boot_param: str = ""
    boot_param_note: str = ""
    loglevel: str = ""
    netpoll_problem: str | None = None
    """netpoll cannot drive the interface (the doctor's verdict)."""
    kernel_problem: str | None = None
    """The kernel has no netconsole at all."""
    applied: Applied | None = None
    persisted: Persisted | None = None
    verification: Verification | None = None
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0 done (or planned, or verification not asked for); 1 cannot work; 3 applied
        but the receiver never saw the nonce; 4 applied but delivery is unproven (the
        receiver API did not answer, or the nonce could not be sent)."""
        if self.netpoll_problem or self.kernel_problem or self.plan.next_hop_mac is None:
            return 1
        if self.verification is None:
            return 0
        return _VERIFY_EXIT[self.verification.outcome]


# `setup && next-step` must go on only with proof of delivery.
_VERIFY_EXIT = {Outcome.SEEN: 0, Outcome.NOT_SEEN: 3, Outcome.NO_API: 4, Outcome.NOT_SENT: 4}


def _views(root: str | None) -> tuple[HostView, HostWriter, Callable[[], HostView]]:
    writer = HostWriter.for_root(root)
    if writer.live:
        return HostView("/", live=True), writer, lambda: HostView("/", live=True)
    path = Path(root or "/")
    if not path.is_dir():
        raise PlanError(f"--root {root}: not a directory")
    return HostView(path, live=False), writer, lambda: HostView(path, live=False)


def _argv(req: SetupRequest, receiver_text: str) -> list[str]:
    """The command a boot-time unit runs: the same setup, no verification."""
    argv = [sys.executable, "-m", "netconsole", "setup", receiver_text, "--name", req.name]
    for k, v in req.labels:
        argv += ["--label", f"{k}={v}"]
    return [*argv, "--no-verify"]


def run_setup(req: SetupRequest) -> SetupReport:
    """Plan a target towards `req.receiver` and (unless dry-run) apply, persist, verify.

    Raises:
        PlanError: netconsole cannot work this way (no route, a slave interface...).
        ApplyError: the kernel refused an operation (explained).
    """
    receiver, _host = receiver_from_text(req.receiver)
    try:  # checked before anything changes on the host
        api = api_url(req.receiver_api, receiver.ip)
    except HostPortError as exc:
        raise PlanError(f"receiver API {exc}") from None
    view, writer, fresh = _views(req.root)
    facts = gather_facts(view)
    kf = kernel_facts(facts)
    plan = plan_target(receiver, net_view(view, receiver), kf, name=req.name,
                       hostname=hostname(view), labels=req.labels)
    problem = netpoll_problem(facts, plan.interface)
    no_netconsole = kernel_problem(facts)
    resolution = resolve_mac(plan, view, writer, probe=req.probe)
    plan = resolution.plan
    printk = ll_mod.parse_printk(view.read(ll_mod.PRINTK), view.first_line(IGNORE_LOGLEVEL))
    notes = list(plan.notes)
    registry = parse_registry(view.read(MODPROBE_FILE))
    steps: tuple[str, ...] = ()
    module_value: str | None = None
    if plan.next_hop_mac is not None:
        if plan.method is Method.CONFIGFS:
            cur = read_target(view, plan.name)
            steps = tuple(str(s) for s in configfs_steps(
                plan, cur.target if cur else None, cur.files if cur else None,
                cur.userdata_files if cur else None))
            if cur is not None and not steps:
                notes.append(f"target {plan.name} already matches this plan and is enabled")
        else:
            module_value = module_param_value(
                plan, tuple(v for n, v in registry.items() if n != plan.name))
    else:
        notes.append(f"the MAC of {plan.next_hop} is unknown ({resolution.how}); without it "
                     "frames go to broadcast, which never crosses a router")
    base = SetupReport(
        plan=plan, dry_run=req.dry_run, mac_resolution=resolution.how, configfs_steps=steps,
        module_param=module_value, boot_param=plan.boot_param,
        boot_param_note=boot_param_note(kf.builtin),
        loglevel=printk.describe() if printk else "console loglevel unknown",
        netpoll_problem=problem, kernel_problem=no_netconsole, notes=tuple(notes))
    if req.dry_run or problem or no_netconsole or plan.next_hop_mac is None:
        return _with(base, skipped=tuple(writer.skipped))
    applied = _apply(plan, writer, view, fresh, registry, kf.builtin)
    if req.loglevel is not None:
        printk = _raise_loglevel(writer, printk, req.loglevel)
        notes.append(f"console loglevel set to {req.loglevel} now and in /"
                     f"{ll_mod.SYSCTL_FILE}")
    persisted = None
    if req.persist:
        reg = dict(registry)
        reg[plan.name] = plan.param
        persisted = install(
            writer, name=plan.name, receiver=str(receiver),
            argv=_argv(req, req.receiver),
            module_value=reg if applied.method is Method.MODULE_PARAM else None,
            grub=plan.boot_param if req.boot_param else None)
    verification = None
    if req.verify and applied.method is not Method.BOOT_PARAM:
        verification = verify(
            writer, target=plan.name, receiver=str(receiver),
            api=api,
            level=ll_mod.verification_level(printk), timeout=req.verify_timeout)
    return _with(base, applied=applied, persisted=persisted, verification=verification,
                 skipped=tuple(writer.skipped), notes=(*notes, *applied.notes),
                 loglevel=printk.describe() if printk else base.loglevel)


def _with(r: SetupReport, **changes: Any) -> SetupReport:
    return replace(r, **changes)


def _apply(plan: Plan, writer: HostWriter, view: HostView, fresh: Callable[[], HostView],
           registry: dict[str, str], builtin: bool | None) -> Applied:
    if plan.method is Method.CONFIGFS:
        present, done = ensure_configfs(view, writer)
        if present or fresh().is_dir(CONFIGFS_ROOT):
            got = apply_configfs(plan, writer, fresh)
            return Applied(method=got.method, done=(*done, *got.done), changed=got.changed,
                           notes=got.notes)
        if builtin:
            return _boot_only(plan)
    if plan.method is Method.BOOT_PARAM:
        return _boot_only(plan)
    others = tuple(v for n, v in registry.items() if n != plan.name)
    return apply_module(plan, writer, fresh(), others)


def _boot_only(plan: Plan) -> Applied:
    return Applied(method=Method.BOOT_PARAM, changed=False, notes=(
        "netconsole is built in without configfs: nothing can change at runtime; "
        f"add `{plan.boot_param}` to the kernel command line (--boot-param --persist "
        "writes a GRUB drop-in) and reboot",))


def _raise_loglevel(writer: HostWriter, printk: ll_mod.Loglevel | None,
                    level: int) -> ll_mod.Loglevel:
    ll_mod.check_level(level)
    try:
        writer.write_attr(ll_mod.PRINTK, str(level))
    except OSError as exc:
        from netconsole.setup.errors import explain

        raise ApplyError(explain(exc.errno or 5, operation=f"echo {level} > /proc/sys/kernel"
                                 "/printk", attribute="printk")) from exc
    new = (printk or ll_mod.Loglevel(console=level)).with_console(level)
    writer.write_file(ll_mod.SYSCTL_FILE, ll_mod.sysctl_conf(new))
    return new


def run_remove(name: str, root: str | None = None) -> tuple[tuple[str, ...], Persisted]:
    """Delete configfs target `name` and its persistence (and the loglevel file
    once no target is left).

    Raises:
        ApplyError: no such target (and nothing persisted), or a step failed.
    """
    _, writer, fresh = _views(root)
    done: tuple[str, ...] = ()
    try:
        done = remove_target(name, writer, fresh)
    except ApplyError as exc:
        gone = uninstall(writer, name)
        if exc.error.name == "ENOENT" and gone.files:
            return (), _forget_loglevel(writer, fresh(), gone)
        raise
    return done, _forget_loglevel(writer, fresh(), uninstall(writer, name))


def _forget_loglevel(writer: HostWriter, view: HostView, gone: Persisted) -> Persisted:
    """Delete `--loglevel`'s sysctl.d file when no netconsole target is left to need it."""
    # Any target left (configfs, boot command line, modprobe.d, a unit) keeps it.
    if (status(view) or parse_registry(view.read(MODPROBE_FILE)) or written_units(view)
            or not writer.remove_file(ll_mod.SYSCTL_FILE)):
        return gone
    return replace(gone, files=(*gone.files, "/" + ll_mod.SYSCTL_FILE), notes=(
        *gone.notes, "no netconsole target is left: the console loglevel returns to the "
        "system's at the next boot"))


def run_status(root: str | None = None) -> list[TargetStatus]:
    """Every netconsole target of the host (or tree) and whether its MAC is still right."""
    view, _, _ = _views(root)
    return list(status(view))
