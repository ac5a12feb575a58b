"""Options and output shared by the commands that read the store.

Each option is a decorator so every command spells it the same way
(`--db`, `--json`, `--host`, `--since`, `--level`); values are parsed here,
with the store's own parsers, so `tail --since 10m` and `listen --retain 30d`
accept the same units. Output helpers render `StoredRecord`s as rich lines
(host-prefixed, coloured by level) or JSON objects.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.text import Text

from netconsole._terminal import printable
from netconsole.cli._json import emit_json
from netconsole.store import (
    LEVEL_LABELS,
    RecordFilter,
    SQLiteReader,
    StoredRecord,
    StoreError,
    default_db_path,
    open_reader,
    parse_level,
    parse_since,
    stored_to_json,
)

if TYPE_CHECKING:
    from netconsole.store.clickhouse import ClickHouseReader

F = TypeVar("F", bound=Callable[..., Any])


def parsed_by(parse: Callable[[str], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback that parses with a store parser and reports its error."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except StoreError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None

    return callback


class StoreParam(click.Path):
    """A SQLite database file (as a Path), or a `clickhouse://` store URL (as is)."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value.startswith("clickhouse://"):
            return value
        return super().convert(value, param, ctx)


def db_option(fn: F) -> F:
    """`--db PATH|URL` (or $NETCONSOLE_DB); default: the user data directory's database."""
    default = str(default_db_path())
    home = str(Path.home())
    if default.startswith(home + "/"):
        default = "~" + default[len(home):]  # the same text for every user (docs/cli.md)
    return click.option(
        "--db",
        type=StoreParam(),
        metavar="PATH|URL",
        envvar="NETCONSOLE_DB",
        help=f"SQLite database, or a ClickHouse store clickhouse://HOST:PORT/DATABASE "
             f"[env NETCONSOLE_DB; default {default}].",
    )(fn)


def json_option(fn: F) -> F:
    """`--json`: machine-readable output (the objects the terminal view renders)."""
    return click.option("--json", "as_json", is_flag=True, help="Output JSON.")(fn)


def host_option(fn: F) -> F:
    return click.option(
        "--host",
        metavar="HOST",
        help="Only this host: its name (hostname= userdata), address, or address:port.",
    )(fn)


def since_option(fn: F) -> F:
    """`--since 10m|2h|3d|ISO-TIME`, parsed to a unix time when the command starts."""
    return click.option(
        "--since",
        metavar="WHEN",
        callback=parsed_by(lambda value: parse_since(value, time.time())),
        help="Only records since a duration ago (30s, 10m, 2h, 3d) or an ISO time.",
    )(fn)


def level_option(fn: F) -> F:
    return click.option(
        "--level",
        metavar="LEVEL",
        callback=parsed_by(parse_level),
        help=f"This level and more severe: 0-7 or {'/'.join(LEVEL_LABELS)}.",
    )(fn)


def _field(ctx: click.Context, param: click.Parameter,
           value: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in value:
        key, sep, val = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. rack=b12)",
                                     ctx=ctx, param=param)
        out.append((key, val))
    return tuple(out)


def match_options(fn: F) -> F:
    """`--cpu`, `--task`, `--msgid`, `--release`, `--boot` and `--field KEY=VALUE`:
    the command gets them as one `match: RecordFilter` argument."""

    @functools.wraps(fn)
    def wrapper(*args: Any, cpu: int | None, task: str | None, msgid: int | None,
                release: str | None, boot: int | None, fields: tuple[tuple[str, str], ...],
                **kwargs: Any) -> Any:
        match = RecordFilter(cpu=cpu, task=task, msgid=msgid, release=release, boot=boot,
                             fields=fields)
        return fn(*args, match=match, **kwargs)

    options = [
        click.option("--cpu", type=click.IntRange(min=0), metavar="N",
                     help="Only records logged on this CPU (cpu= sysdata)."),
        click.option("--task", metavar="NAME",
                     help="Only records of this task (taskname= sysdata, e.g. kworker/1:0)."),
        click.option("--msgid", type=click.IntRange(min=0), metavar="N",
                     help="Only the record with this netconsole msgid= (sysdata)."),
        click.option("--release", metavar="RELEASE",
                     help="Only records of this kernel release (uname -r as sent)."),
        click.option("--boot", type=click.IntRange(min=0), metavar="N",
                     help="Only records of this boot of the host (0 is the first seen; "
                          "see `hosts`)."),
        click.option("--field", "fields", multiple=True, metavar="KEY=VALUE", callback=_field,
                     help="Only records with this userdata, sysdata or dictionary field, "
                          "exactly (repeatable: all must match)."),
    ]
    out: Any = wrapper
    for option in reversed(options):
        out = option(out)
    return out  # type: ignore[no-any-return]


def no_match(*, as_json: bool) -> None:
    """Nothing matched: say so on stderr (`[]` on stdout with --json) and exit 1,
    as grep does, so that a script can tell."""
    if as_json:
        emit_json([])
    click.echo("no records match", err=True)
    raise click.exceptions.Exit(1)


@contextmanager
def store_errors() -> Iterator[None]:
    """Turn the store's user-facing errors into click's (message, exit code 1)."""
    try:
        yield
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def reader_for(db: Path | str | None) -> Iterator[SQLiteReader | ClickHouseReader]:
    """The read-only store at `db` (default path when None, or a `clickhouse://`
    URL), closed afterwards."""
    with store_errors():
        reader = open_reader(db)
    try:
        with store_errors():
            yield reader
    finally:
        reader.close()


# -- output -------------------------------------------------------------------

LEVEL_STYLES: tuple[str, ...] = (
    "bold white on red",  # emerg
    "bold white on red",  # alert
    "bold red",  # crit
    "red",  # err
    "yellow",  # warn
    "bold",  # notice
    "",  # info
    "dim",  # debug
)


PIPE_WIDTH = 240
"""Columns for tables when stdout is not a terminal: rich would assume 80 and
wrap or cut `hosts` into something no script or pager wants."""


def console() -> Console:
    """A console on the current stdout; colour and terminal width only on a terminal."""
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = PIPE_WIDTH
    return out


def format_time(when: float) -> str:
    return datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S")


def _label(stored: StoredRecord) -> str:
    return printable(stored.name or stored.record.sender.host)


def render_record(stored: StoredRecord, *, width: int = 0) -> Text:
    """One record as a terminal line: `host  time  level  [  ts] text`.

    The host comes first so interleaved hosts stay readable; the whole line
    takes the level's colour so errors stand out in a scrolling view. Lines
    after the first (basic-mode multi-line records) are indented under the text.
    Sender text is shown through `printable`: control bytes escaped, never markup.
    """
    record = stored.record
    level = record.level
    style = LEVEL_STYLES[level] if level is not None and 0 <= level <= 7 else ""
    label = _label(stored)
    line = Text()
    line.append(label.ljust(width), style="bold cyan")
    line.append(" " + format_time(record.received), style="dim")
    line.append(" " + (LEVEL_LABELS[level] if level is not None else "-").ljust(6), style=style)
    if record.ts_usec is not None:
        seconds, micros = divmod(record.ts_usec, 1_000_000)
        line.append(f" [{seconds:5d}.{micros:06d}]", style="dim")
    text = printable(record.text, newlines=True).replace("\n", "\n    ")
    line.append(" " + text, style=style)
    if not record.complete:
        line.append(" [incomplete]", style="dim italic")
    return line


def print_records(
    records: Iterable[StoredRecord], *, as_json: bool, out: Console, width: int = 0
) -> int:
    """Records as rich lines, or as one JSON object per line with `--json`.

    Host labels are padded to the widest in the batch (at least `width`);
    returns that width, so a follower keeps columns steady across batches.
    """
    batch = list(records)
    if as_json:
        emit_json(map(stored_to_json, batch), lines=True)
        return width
    width = max([width, *(len(_label(s)) for s in batch)])
    for stored in batch:
        out.print(render_record(stored, width=width))
    return width
