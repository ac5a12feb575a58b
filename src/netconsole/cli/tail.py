"""`netconsole tail`: the newest stored records, and optionally follow new ones."""

from __future__ import annotations

from pathlib import Path

import click

from netconsole.cli._options import (
    console,
    db_option,
    host_option,
    json_option,
    level_option,
    match_options,
    no_match,
    print_records,
    reader_for,
    since_option,
)
from netconsole.store import RecordFilter, follow


@click.command()
@click.option("-f", "--follow", "follow_", is_flag=True, help="Keep printing new records.")
@host_option
@level_option
@since_option
@click.option("--grep", metavar="RE", help="Only records whose text matches this regex.")
@match_options
@click.option(
    "-n",
    "--lines",
    "limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many of the newest records to show first.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between polls with -f.",
)
@db_option
@json_option
def tail(
    follow_: bool,
    host: str | None,
    level: int | None,
    since: float | None,
    grep: str | None,
    limit: int,
    interval: float,
    db: Path | None,
    as_json: bool,
    match: RecordFilter,
) -> None:
    """Show stored records, newest last, and with -f follow new ones.

    Lines are prefixed with the host (its hostname= userdata name, else its
    address) and coloured by printk level. --level warn shows warnings and
    everything more severe. With --json, each record is one JSON object per
    line (the docs/records.md schema plus the store's id, name and boot).
    --cpu, --task, --msgid, --release, --boot and --field select by the
    record's netconsole facts. Without -f, when nothing matches, it says so
    on stderr and exits 1 (--json prints []).

    Examples:

        netconsole tail -f --host web-1 --level warn --since 1h

        netconsole tail --host web-1 --boot 3 --task kworker/1:0 --field rack=b12
    """
    out = console()
    with reader_for(db) as reader:
        start = reader.last_id()
        records = reader.tail(host=host, level=level, since=since, grep=grep, limit=limit,
                              match=match)
        if not records and not follow_ and limit:
            no_match(as_json=as_json)
        width = print_records(records, as_json=as_json, out=out)
        if not follow_:
            return
        last = max(start, records[-1].id if records else 0)
        try:
            for stored in follow(
                reader, after_id=last, interval=interval, host=host, level=level, grep=grep,
                match=match,
            ):
                width = print_records([stored], as_json=as_json, out=out, width=width)
        except KeyboardInterrupt:
            return
