"""`netconsole export`: stored records as JSON lines or CSV, streamed."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import click

from netconsole.cli._json import json_line
from netconsole.cli._options import (
    db_option,
    host_option,
    match_options,
    no_match,
    parsed_by,
    reader_for,
    since_option,
)
from netconsole.cli._progress import progress
from netconsole.store import RecordFilter, StoredRecord, parse_since, stored_to_json

STORE_KEYS = ("id", "name", "boot")


def _csv_value(value: Any) -> Any:
    """CSV cells: None as empty, lists and dicts as JSON, the rest as is."""
    if value is None:
        return ""
    if isinstance(value, list | dict | tuple):
        return json_line(value)
    return value


def write_jsonl(records: Iterator[StoredRecord], out: IO[str]) -> int:
    count = 0
    for stored in records:
        out.write(json_line(stored_to_json(stored)) + "\n")
        count += 1
    return count


def write_csv(records: Iterator[StoredRecord], out: IO[str]) -> int:
    """One row per record; the columns are the JSON keys (store keys first, then
    the record schema's, `raw` last, present always and empty when not needed)."""
    writer: csv.DictWriter[str] | None = None
    count = 0
    for stored in records:
        row = stored_to_json(stored)
        if writer is None:
            record_keys = [k for k in row if k not in STORE_KEYS and k != "raw"]
            writer = csv.DictWriter(out, fieldnames=[*STORE_KEYS, *record_keys, "raw"])
            writer.writeheader()
        writer.writerow({key: _csv_value(value) for key, value in row.items()})
        count += 1
    return count


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON lines (the docs/records.md schema) or CSV.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@host_option
@since_option
@click.option(
    "--until",
    metavar="WHEN",
    callback=parsed_by(lambda value: parse_since(value, time.time())),
    help="Only records before this (a duration ago, or an ISO time).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    help="Write here instead of stdout.",
)
@match_options
@db_option
def export(
    fmt: str,
    as_json: bool,
    host: str | None,
    since: float | None,
    until: float | None,
    output: str,
    db: Path | None,
    match: RecordFilter,
) -> None:
    """Export stored records, oldest first, as JSON lines or CSV.

    Records are read in chunks, so any size exports in constant memory.
    Non-UTF-8 text is exported with replacement characters in `text` and the
    exact bytes, base64, in `raw`. The filters are those of `tail`. When no
    record matches, nothing is written, a line on stderr says so and the exit
    status is 1. On a terminal a progress bar is shown on stderr.

    Example:

        netconsole export --format csv --host web-1 --since 7d -o web-1.csv
    """
    if as_json:
        fmt = "jsonl"
    with reader_for(db) as reader, click.open_file(output, "w", encoding="utf-8") as out:
        records = reader.export(host=host, since=since, until=until, match=match)
        # Progress by record id: no count query over a large store (ids only grow).
        last = reader.last_id() if output != "-" or not out.isatty() else 0
        with progress("exporting", last) as tick:
            counted = _ticking(records, tick)
            count = write_csv(counted, out) if fmt == "csv" else write_jsonl(counted, out)
    if not count:
        no_match(as_json=False)
    if output != "-":
        click.echo(f"exported {count} records to {output}", err=True)


def _ticking(records: Iterator[StoredRecord],
             tick: Callable[[float], None]) -> Iterator[StoredRecord]:
    for stored in records:
        tick(stored.id)
        yield stored
