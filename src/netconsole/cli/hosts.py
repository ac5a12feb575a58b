"""`netconsole hosts`: every sender the store knows, its counters and status."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click
from rich.table import Table

from netconsole.cli._options import console, db_option, json_option, parsed_by, reader_for
from netconsole.store import DEFAULT_SILENT_AFTER, HostInfo, parse_duration


def ago(when: float | None, now: float) -> str:
    """`12s ago`, `5m ago`, `3h ago`, `2d ago`, or `never`."""
    if when is None:
        return "never"
    seconds = max(0.0, now - when)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def hosts_table(hosts: list[HostInfo], now: float) -> Table:
    """The rich table `netconsole hosts` prints."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("host", style="bold cyan", no_wrap=True)
    table.add_column("address", no_wrap=True)
    table.add_column("release", no_wrap=True)
    table.add_column("last seen", no_wrap=True)
    for name in ("records", "lost seq", "lost msgid", "reboots", "incomplete", "dups"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for host in hosts:
        address = f"[{host.address}]" if ":" in host.address else host.address
        table.add_row(
            host.label,
            f"{address}:{host.port}→{host.local_port}",
            host.release or "-",
            ago(host.last_record, now),
            str(host.records),
            str(host.lost_seq + host.dropped),
            str(host.lost_msgid),
            str(host.reboots),
            str(host.incomplete),
            str(host.duplicates),
            "[green]live[/]" if host.status == "live" else "[red]silent[/]",
        )
    return table


@click.command()
@click.option(
    "--silent-after",
    metavar="DURATION",
    default=f"{int(DEFAULT_SILENT_AFTER)}s",
    show_default=True,
    callback=parsed_by(parse_duration),
    help="A host with no record for this long is silent.",
)
@db_option
@json_option
def hosts(silent_after: float, db: Path | None, as_json: bool) -> None:
    """List the hosts that sent netconsole records, with loss and status.

    For each sender (address, source port and the local port it sent to):
    its name, kernel release, when its last record came, how many records
    are stored, how many printk records were lost (seq gaps, and basic-mode
    "messages dropped") and how many netconsole messages were lost on the
    way (msgid gaps), reboots, incomplete records, duplicates, and whether
    it is live or silent. --json prints the same as a JSON array.

    Example:

        netconsole hosts --silent-after 10m
    """
    now = time.time()
    with reader_for(db) as reader:
        found = reader.hosts(now=now, silent_after=silent_after)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(h) for h in found], indent=2))
        return
    out = console()
    if not found:
        out.print("no hosts yet")
        return
    out.print(hosts_table(found, now))
