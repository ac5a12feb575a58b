"""`netconsole setup`: thin CLI over `netconsole.setup` (plan, apply, persist, verify)."""

from __future__ import annotations

import dataclasses
import enum
import sys
from typing import Any

import click

from netconsole.cli._json import emit_json

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_SEEN, EXIT_UNCONFIRMED = 0, 1, 2, 3, 4


def jsonable(obj: Any) -> Any:
    """Dataclasses (slotted too), enums, tuples and sets as plain JSON values."""
    from netconsole.setup.plan import Plan

    if isinstance(obj, Plan):
        out = {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        out.update(param=obj.param, boot_param=obj.boot_param, extended=obj.extended,
                   release=obj.release, userdata=dict(obj.userdata))
        return out
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    return obj


def _label(ctx: click.Context, param: click.Parameter, values: tuple[str, ...],
           ) -> tuple[tuple[str, str], ...]:
    out = []
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r} is not KEY=VALUE", ctx=ctx, param=param)
        out.append((key, value))
    return tuple(out)


def _print_report(r: Any) -> None:
    from netconsole.setup.caps import Method

    p = r.plan
    echo = click.echo
    echo(f"target {p.name} -> {p.receiver}")
    echo(f"  route        {p.route}")
    hop = "gateway" if p.next_hop_kind.value == "gateway" else "on-link receiver"
    echo(f"  interface    {p.interface}" + (f" ({p.interface_kind})" if p.interface_kind else ""))
    src = f"[{p.local_ip}]" if ":" in p.local_ip else p.local_ip
    echo(f"  source       {src}:{p.local_port}")
    echo(f"  next hop     {p.next_hop} ({hop})")
    echo(f"  next-hop MAC {p.next_hop_mac or 'UNKNOWN'}  [{r.mac_resolution}]")
    fmt = "extended" if p.extended else "basic"
    if p.release:
        fmt += " + release prefix"
    if p.sysdata:
        fmt += " + sysdata " + ",".join(s.removesuffix("_enabled") for s in p.sysdata)
    echo(f"  format       {fmt}  (decided from {p.caps.source})")
    if p.userdata:
        echo("  userdata     " + " ".join(f"{k}={v}" for k, v in p.userdata))
    echo(f"  method       {p.method.value}")
    echo(f"  netconsole=  {p.param}")
    echo(f"  boot param   {r.boot_param}")
    echo(f"               ({r.boot_param_note})")
    echo(f"  loglevel     {r.loglevel}")
    if "filtered: 4" in r.loglevel or "filtered: 5" in r.loglevel:
        echo("               (raise it with --loglevel 8 to get warnings and info too)")
    if r.configfs_steps and (r.dry_run or r.applied is None):
        echo("configfs writes:")
        for s in r.configfs_steps:
            echo(f"  {s}")
    elif p.method is not Method.CONFIGFS and r.module_param and r.applied is None:
        echo(f"module load:\n  modprobe netconsole 'netconsole={r.module_param}'")
    for n in r.notes:
        echo(f"note: {n}")
    for problem in (r.kernel_problem, r.netpoll_problem):
        if problem:
            echo(f"error: {problem}", err=True)
            echo(f"  -> send from userspace instead: netconsole forward {p.receiver}",
                 err=True)
    if r.applied is not None:
        echo(f"applied via {r.applied.method.value}:")
        for line in r.applied.done or ("(nothing to change)",):
            echo(f"  {line}")
    if r.persisted is not None:
        echo("persisted: " + ", ".join(r.persisted.files))
        for c in r.persisted.commands:
            echo(f"  {c}")
        for n in r.persisted.notes:
            echo(f"note: {n}")
    for s in r.skipped:
        echo(f"not run (--root): {s}")
    v = r.verification
    if v is not None:
        mark = {"seen": "DELIVERED", "not-seen": "NOT DELIVERED", "no-api": "UNCONFIRMED",
                "not-sent": "NOT SENT"}[v.outcome.value]
        echo(f"verify: {mark}: {v.detail}")
    if r.dry_run:
        echo("dry run: nothing changed")


def _fail(exc: Exception, as_json: bool) -> None:
    from netconsole.setup.apply import ApplyError
    from netconsole.setup.errors import PlanError

    if as_json:
        data: dict[str, Any] = {"error": str(exc)}
        if isinstance(exc, ApplyError):
            data.update(kernel_error=jsonable(exc.error), done=list(exc.done),
                        dmesg=list(exc.dmesg), state=exc.state)
        elif isinstance(exc, PlanError):
            data.update(error=exc.message, hint=exc.hint)
        emit_json(data)
    else:
        click.echo(f"setup: {exc}", err=True)
        if isinstance(exc, ApplyError):
            for line in exc.done:
                click.echo(f"  done before: {line}", err=True)
            for line in exc.dmesg:
                click.echo(f"  dmesg: {line}", err=True)
            if exc.state:
                click.echo(f"  the target is now {exc.state}", err=True)
    sys.exit(EXIT_FAILED)


@click.command("setup")
@click.argument("receiver", required=False, metavar="RECEIVER[:PORT]")
@click.option("--name", default="netconsole", show_default=True,
              help="The target's name (configfs directory, systemd unit suffix).")
@click.option("--dry-run", is_flag=True,
              help="Print the plan, the netconsole= string and the configfs writes; change "
              "nothing (one probe packet may fill the neighbour table).")
@click.option("--persist", is_flag=True,
              help="Survive reboots: a systemd unit re-resolving the MAC at boot (plus "
              "modprobe.d and modules-load.d without configfs).")
@click.option("--boot-param", is_flag=True,
              help="Only print the kernel command-line parameter for early-boot capture "
              "(netconsole.netconsole= for a module); with --persist, also apply and write "
              "it as a GRUB drop-in.")
@click.option("--label", "labels", multiple=True, callback=_label, metavar="KEY=VALUE",
              help="Extra userdata on every record (hostname=<hostname> is always added). "
              "Repeatable.")
@click.option("--loglevel", type=click.IntRange(1, 8), metavar="N",
              help="Set console_loglevel to N now and at boot (8: every level reaches "
              "netconsole).")
@click.option("--status", is_flag=True,
              help="List netconsole targets: enabled, transmit_errors, is the MAC still right.")
@click.option("--remove", "remove", metavar="NAME", help="Disable and delete target NAME.")
@click.option("--receiver-api", metavar="HOST:PORT",
              help="The receiver's HTTP API for the delivery check [default: RECEIVER:6680].")
@click.option("--no-verify", is_flag=True, help="Do not send the nonce to prove delivery.")
@click.option("--verify-timeout", type=float, default=10.0, show_default=True,
              metavar="SECONDS", help="How long to ask the receiver for the nonce.")
@click.option("--no-probe", is_flag=True,
              help="Never send a packet to provoke ARP/ND for a missing next-hop MAC.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--root", metavar="DIR",
              help="Operate on a directory tree (fake /sys, /proc, /etc, ip/*.json) instead "
              "of this host; commands and packets are only listed.")
def setup(receiver: str | None, name: str, dry_run: bool, persist: bool, boot_param: bool,
          labels: tuple[tuple[str, str], ...], loglevel: int | None, status: bool,
          remove: str | None, receiver_api: str | None, no_verify: bool,
          verify_timeout: float, no_probe: bool, as_json: bool, root: str | None) -> None:
    """Configure kernel netconsole towards RECEIVER, persist it, prove delivery.

    Finds the egress interface, source address and next hop from the kernel's
    route lookup, takes the next hop's MAC from the neighbour table (provoking
    ARP/ND when missing: netconsole itself resolves nothing), picks extended
    format, release prefix and sysdata when the kernel has them, and labels
    records with hostname=. Applies through configfs when the kernel has it
    (idempotent: re-running updates the target in place), else through the
    module parameter. Then writes a nonce to /dev/kmsg and asks the receiver
    (`netconsole listen`, GET /api/v1/seen) whether it arrived.

    Exit status: 0 done, 1 cannot work (explained), 2 usage, 3 applied but
    the receiver did not see the nonce, 4 applied but delivery is unproven
    (the receiver API did not answer, or the nonce could not be sent).

    Example:

        sudo netconsole setup 192.0.2.10:6666 --label rack=r42 --persist
    """
    from netconsole.setup import ApplyError, PlanError, SetupRequest, run_remove, run_setup
    from netconsole.setup.run import run_status

    try:
        if status:
            rows = run_status(root)
            if as_json:
                emit_json(jsonable(rows))
            else:
                _print_status(rows)
            sys.exit(EXIT_OK)
        if remove:
            done, gone = run_remove(remove, root)
            if as_json:
                emit_json({"removed": remove, "done": list(done), "files": list(gone.files),
                           "commands": list(gone.commands), "notes": list(gone.notes)})
            else:
                for line in (*done, *(f"removed {f}" for f in gone.files), *gone.commands):
                    click.echo(line)
                click.echo(f"target {remove} removed")
                for n in gone.notes:
                    click.echo(f"note: {n}")
            sys.exit(EXIT_OK)
        if not receiver:
            raise click.UsageError("RECEIVER is required (or --status / --remove NAME)")
        only_param = boot_param and not persist
        report = run_setup(SetupRequest(
            receiver=receiver, name=name, labels=labels, dry_run=dry_run or only_param,
            persist=persist,
            boot_param=boot_param, loglevel=loglevel, root=root, receiver_api=receiver_api,
            verify=not no_verify, verify_timeout=verify_timeout, probe=not no_probe))
    except (PlanError, ApplyError) as exc:
        _fail(exc, as_json)
        return
    if as_json:
        emit_json(jsonable(report) | {"exit_code": report.exit_code})
    elif only_param:
        click.echo(report.boot_param)
        click.echo(f"# {report.boot_param_note}", err=True)
        if report.plan.next_hop_mac is None:
            click.echo(f"# the next-hop MAC is unknown ({report.mac_resolution})", err=True)
    else:
        _print_report(report)
    sys.exit(report.exit_code)


def _print_status(rows: list[Any]) -> None:
    if not rows:
        click.echo("no netconsole targets")
        return
    for s in rows:
        state = {True: "enabled", False: "disabled", None: "?"}[s.enabled]
        mac = {True: "MAC ok", False: "MAC WRONG", None: "MAC unchecked"}[s.mac_ok]
        errs = "" if s.transmit_errors is None else f" transmit_errors={s.transmit_errors}"
        click.echo(f"{s.name} ({s.origin}) {state} {s.dev} -> {s.remote} "
                   f"mac {s.remote_mac}{errs}; {mac}")
        if s.note:
            click.echo(f"  {s.note}")
