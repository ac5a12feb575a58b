"""`netconsole search`: full-text search over stored record text (FTS5)."""

from __future__ import annotations

from pathlib import Path

import click

from netconsole.cli._options import (
    console,
    db_option,
    host_option,
    json_option,
    match_options,
    no_match,
    print_records,
    reader_for,
    since_option,
)
from netconsole.store import RecordFilter


@click.command()
@click.argument("query", nargs=-1, required=True)
@host_option
@since_option
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many (the newest) matches.",
)
@click.option(
    "--fts",
    "fts_syntax",
    is_flag=True,
    help='Treat QUERY as FTS5 syntax (AND, OR, NOT, "phrases", prefix*, NEAR).',
)
@match_options
@db_option
@json_option
def search(
    query: tuple[str, ...],
    host: str | None,
    since: float | None,
    limit: int,
    fts_syntax: bool,
    db: Path | None,
    as_json: bool,
    match: RecordFilter,
) -> None:
    """Find stored records that contain all the words of QUERY.

    A word matches in the record's text or in the values of its userdata
    and printk dictionary (rack=b12 is found by `search b12`). Each word is
    matched as written (punctuation such as eth0: or rcu_sched is safe);
    matching ignores case. Results are the newest matches, oldest first.
    --fts passes QUERY to SQLite FTS5 unchanged (columns: text, fields).
    When nothing matches, it says so on stderr and exits 1 (--json prints []).

    Example:

        netconsole search "NIC Link is Down" --host web-1 --since 1d
    """
    with reader_for(db) as reader:
        records = reader.search(
            " ".join(query), host=host, since=since, limit=limit, fts_syntax=fts_syntax,
            match=match,
        )
        if not records:
            no_match(as_json=as_json)
        print_records(records, as_json=as_json, out=console())
