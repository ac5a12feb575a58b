"""`netconsole incidents`: crashes, oopses, WARNs and lockups the receiver grouped.

`incidents` lists them, `incidents show ID` prints one whole report with its
parsed trace, `incidents top` groups them by fingerprint across hosts ("the
same crash on 37 hosts"). All read the store `listen` writes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from netconsole._terminal import printable, text
from netconsole.cli._json import emit_json
from netconsole.cli._options import (
    console,
    db_option,
    format_time,
    host_option,
    json_option,
    reader_for,
    since_option,
)
from netconsole.cli.hosts import ago
from netconsole.incidents import Kind
from netconsole.store import IncidentGroup, StoredIncident

SEVERITY_STYLES = {"critical": "bold white on red", "error": "red", "warning": "yellow"}


def _emit(items: Sequence[Any], as_json: bool, empty: str,
          table: Callable[[], Any]) -> None:
    """A list as JSON for scripts, or as a rich table (built only when shown)."""
    if as_json:
        emit_json([dataclasses.asdict(i) for i in items])
    elif not items:
        console().print(empty)
    else:
        console().print(table())


def _flags(incident: StoredIncident) -> str:
    flags = []
    if incident.state == "open":
        flags.append("open")
    if incident.fatal:
        flags.append("fatal")
    if incident.truncated:
        flags.append("truncated")
    if incident.count > 1:
        flags.append(f"x{incident.count}")
    if incident.previous_boot:
        flags.append("previous-boot")
    return ",".join(flags)


def incidents_table(found: list[StoredIncident]) -> Table:
    """The rich table `netconsole incidents` prints."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("id", "time", "host", "kind", "title", "culprit", "flags"):
        table.add_column(name, no_wrap=name not in ("title", "culprit"),
                         justify="right" if name == "id" else "left")
    for inc in found:
        table.add_row(
            str(inc.id), format_time(inc.first_received), text(inc.label, "bold cyan"),
            Text(inc.kind, style=SEVERITY_STYLES.get(inc.severity, "")), text(inc.title),
            text(inc.culprit or "-"), _flags(inc),
        )
    return table


def top_table(groups: list[IncidentGroup], now: float) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("incidents", "hosts", "kind", "title", "culprit", "last", "fingerprint",
                 "latest"):
        table.add_column(name, justify="right" if name in ("incidents", "hosts", "latest")
                         else "left", no_wrap=name not in ("title", "culprit"))
    for g in groups:
        table.add_row(str(g.incidents), str(g.hosts), Text(g.kind), text(g.title),
                      text(g.culprit or "-"), ago(g.last, now), Text(g.fingerprint),
                      str(g.latest_id))
    return table


@click.group(invoke_without_command=True)
@host_option
@click.option("--kind", type=click.Choice([k.value for k in Kind]), help="Only this kind.")
@since_option
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="The newest this many.")
@db_option
@json_option
@click.pass_context
def incidents(ctx: click.Context, host: str | None, kind: str | None, since: float | None,
              limit: int, db: Path | None, as_json: bool) -> None:
    """List incidents: panics, oopses, BUGs, WARNs, lockups, hung tasks, OOM kills, ...

    Each is one kernel report grouped from its records, with its title (the
    line a person would quote), the culprit frame of its call trace, and
    flags: open (still arriving), fatal (it ended in a panic), truncated
    (the host died or rebooted mid-report), previous-boot (replayed from
    pstore after a reboot by `netconsole forward`). `incidents show ID` prints one
    whole; `incidents top` groups the same crash across hosts. --json prints
    the incidents as a JSON array.

    Example:

        netconsole incidents --kind oops --since 1d
    """
    if ctx.invoked_subcommand is not None:
        ctx.ensure_object(dict)
        ctx.obj["db"] = db
        return
    with reader_for(db) as reader:
        found = reader.incidents(host=host, kind=kind, since=since, limit=limit)
    _emit(found, as_json, "no incidents", lambda: incidents_table(found))


def _frame_text(frame: dict[str, Any]) -> str:
    text = ("? " if not frame.get("reliable", True) else "") + str(frame["function"])
    if frame.get("offset") is not None and frame.get("size") is not None:
        text += f"+{frame['offset']:#x}/{frame['size']:#x}"
    if frame.get("module"):
        text += f" [{frame['module']}]"
    return text


@incidents.command()
@click.argument("incident_id", metavar="ID", type=int)
@db_option
@json_option
@click.pass_context
def show(ctx: click.Context, incident_id: int, db: Path | None, as_json: bool) -> None:
    """Print one incident: what, where, when, its culprit, trace and whole report.

    Example:

        netconsole incidents show 12
    """
    db = db or (ctx.obj or {}).get("db")
    with reader_for(db) as reader:
        inc = reader.incident(incident_id)
    if inc is None:
        raise click.ClickException(f"no incident {incident_id}")
    if as_json:
        emit_json(dataclasses.asdict(inc))
        return
    out = console()
    style = SEVERITY_STYLES.get(inc.severity, "")
    out.print(Text(f"#{inc.id} {inc.kind} ({inc.severity})", style=style), text(inc.title))
    address = f"[{inc.sender.host}]" if ":" in inc.sender.host else inc.sender.host
    rows = [
        ("host", f"{inc.label} ({address}:{inc.sender.port}), boot {inc.boot}"),
        ("when", f"{format_time(inc.first_received)} → {format_time(inc.last_received)}"),
        ("release", inc.release or "-"),
        ("task", inc.task or "-"),
        ("culprit", inc.culprit or "-"),
        ("fingerprint", inc.fingerprint),
        ("records", f"seq {inc.first_seq}–{inc.last_seq}" if inc.first_seq is not None
         else "-"),
        ("lines", str(inc.lines) + (f" (+{inc.dropped_lines} not kept)"
                                    if inc.dropped_lines else "")),
        ("flags", _flags(inc) or "-"),
    ]
    for name, value in rows:
        out.print(Text(f"{name:>12}  ", style="dim"), text(value))
    reliable = [f for f in inc.frames if not f.get("rip") and f.get("section", 0) == 0]
    if reliable:
        out.print(Text("\ncall trace", style="bold"))
        for frame in reliable:
            out.print(text("  " + _frame_text(frame),
                           "dim" if not frame.get("reliable", True) else ""))
    out.print(Text("\nreport", style="bold"))
    out.print(Text(printable(inc.text, newlines=True)))


@incidents.command()
@since_option
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="This many groups.")
@db_option
@json_option
@click.pass_context
def top(ctx: click.Context, since: float | None, limit: int, db: Path | None,
        as_json: bool) -> None:
    """The most frequent crashes across hosts, grouped by fingerprint.

    A fingerprint names the same crash on any host, boot or address layout
    (kind, title without numbers or addresses, top stack functions).

    Example:

        netconsole incidents top --since 7d
    """
    db = db or (ctx.obj or {}).get("db")
    with reader_for(db) as reader:
        groups = reader.incidents_top(since=since, limit=limit)
    _emit(groups, as_json, "no incidents", lambda: top_table(groups, time.time()))


@incidents.command()
@host_option
@since_option
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="The newest this many.")
@db_option
@json_option
@click.pass_context
def silences(ctx: click.Context, host: str | None, since: float | None, limit: int,
             db: Path | None, as_json: bool) -> None:
    """Hosts that went silent: right after a crash, or chatty hosts gone quiet.

    Each row is a silence starting or ending (the host sent again, or
    rebooted). --json prints the same as a JSON array.

    Example:

        netconsole incidents silences --since 1d
    """
    db = db or (ctx.obj or {}).get("db")
    with reader_for(db) as reader:
        found = reader.events(host=host, since=since, kind="silence", limit=100_000)[-limit:]
    if as_json:
        emit_json([dataclasses.asdict(e) for e in found])
        return
    out = console()
    if not found:
        out.print("no silences")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("time", "host", "event", "reason", "after"):
        table.add_column(name, no_wrap=name != "after")
    for e in found:
        d = e.detail
        what = d.get("phase", "?") + (" (rebooted)" if d.get("rebooted") else "")
        table.add_row(format_time(e.at), text(e.name or e.sender.host, "bold cyan"),
                      text(what), text(str(d.get("reason", ""))), text(d.get("title") or "-"))
    out.print(table)
