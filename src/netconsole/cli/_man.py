"""Man pages, one per command, generated from the click definitions.

    python -m netconsole.cli._man man/

writes `netconsole.1`, `netconsole-listen.1`, `netconsole-incidents-show.1`, …
The pages are made from the same objects as `--help` (and docs/cli.md): the
command's help text, its usage line and each option's help, so they cannot
say something else. setup.py installs them to `share/man/man1` (so `man
netconsole-listen` works after `pip install`, in a virtualenv too: man looks
beside each `bin/` of $PATH), and tests/unit/test_man_pages.py fails when the
committed pages differ from what this writes.

A small generator rather than click-man: a dozen lines of roff per section,
no build-time dependency, and the output is fixed (no date: the version
stands in the footer), so the pages only change when the help does.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import click

from netconsole import __version__
from netconsole.cli import COMMANDS, main

SECTION = "1"
WIDTH = 80  # of the usage lines and the example blocks, as click wraps them


def _escape(text: str) -> str:
    """Text as roff reads it literally: backslashes doubled, dashes as minus signs
    (so that options can be searched and copied), a leading `.` or `'` defused."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def _paragraphs(help_text: str) -> list[str]:
    """Click's help text as roff: paragraphs, and indented blocks kept as they are."""
    out: list[str] = []
    blocks = re.split(r"\n\s*\n", click.unstyle(help_text).strip("\n"))
    for block in blocks:
        block = block.replace("\b\n", "")
        lines = block.splitlines()
        if all(line.startswith(" ") for line in lines if line.strip()):
            indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
            out += [".PP", ".RS 4", ".nf",
                    *(_escape(line[indent:]) for line in lines), ".fi", ".RE"]
        else:
            out += [".PP", _escape(" ".join(line.strip() for line in lines))]
    return out


def _option(param: click.Parameter, ctx: click.Context) -> list[str]:
    record = param.get_help_record(ctx)
    if record is None:
        return []
    names, help_text = record
    return [".TP", f"\\fB{_escape(names)}\\fR", _escape(help_text or "")]


def page(command: click.Command, path: list[str], parent: click.Context | None) -> str:
    """The man page of one command (`path` is its words: netconsole incidents show)."""
    ctx = click.Context(command, info_name=path[-1], parent=parent,
                        terminal_width=WIDTH, max_content_width=WIDTH)
    name = "-".join(path)
    title = name.upper()
    short = command.get_short_help_str(limit=200) if len(path) > 1 else (
        "Linux netconsole end to end: receive, decode, diagnose, set up, forward")
    if len(path) == 2 and path[1] in COMMANDS:
        short = COMMANDS[path[1]][2].rstrip(".")
    formatter = ctx.make_formatter()
    command.format_usage(ctx, formatter)
    usage = formatter.getvalue().strip().removeprefix("Usage: ")
    lines = [
        f'.TH "{title}" "{SECTION}" "" "netconsole {__version__}" "netconsole manual"',
        ".SH NAME",
        f"{_escape(name)} \\- {_escape(short.rstrip('.'))}",
        ".SH SYNOPSIS",
        f"\\fB{_escape(' '.join(path))}\\fR {_escape(usage.split(' ', len(path))[-1])}",
        ".SH DESCRIPTION",
        *_paragraphs(inspect.cleandoc(command.help or "")),
    ]
    options = [line for p in command.get_params(ctx) for line in _option(p, ctx)]
    if options:
        lines += [".SH OPTIONS", *options]
    subcommands: list[tuple[str, click.Command]] = []
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                subcommands.append((sub_name, sub))
        lines.append(".SH COMMANDS")
        for sub_name, sub in subcommands:
            help_line = (COMMANDS[sub_name][2] if len(path) == 1 else
                         sub.get_short_help_str(limit=200))
            lines += [".TP", f"\\fB{_escape(sub_name)}\\fR",
                      f"{_escape(help_line)} See \\fB{_escape(f'{name}-{sub_name}')}\\fR"
                      f"({SECTION})."]
    see = sorted({f"netconsole({SECTION})"} - {f"{name}({SECTION})"})
    if len(path) > 2:
        see.insert(0, f"{'-'.join(path[:-1])}({SECTION})")
    lines += [".SH SEE ALSO", ", ".join(f"\\fB{_escape(s.split('(')[0])}\\fR({SECTION})"
                                        for s in see) or "netconsole(1)",
              ".PP",
              "The documentation in the project's docs/ directory: docs/cli.md (every "
              "command's help), docs/records.md, docs/store.md, docs/outputs.md."]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Every page by file name: the `netconsole` group and each command under it."""
    root = click.Context(main, info_name="netconsole", terminal_width=WIDTH,
                         max_content_width=WIDTH)
    out = {f"netconsole.{SECTION}": page(main, ["netconsole"], None)}

    def walk(command: click.Command, path: list[str], parent: click.Context) -> None:
        out[f"{'-'.join(path)}.{SECTION}"] = page(command, path, parent)
        if isinstance(command, click.Group):
            ctx = click.Context(command, info_name=path[-1], parent=parent)
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], ctx)

    for name in COMMANDS:
        command = main.get_command(root, name)
        assert command is not None
        walk(command, ["netconsole", name], root)
    return out


def write(directory: Path) -> list[Path]:
    """Write every page into `directory`; remove pages of commands that are gone."""
    directory.mkdir(parents=True, exist_ok=True)
    made = pages()
    for stale in directory.glob(f"netconsole*.{SECTION}"):
        if stale.name not in made:
            stale.unlink()
    written = []
    for name, text in made.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "man")
    for p in write(target):
        print(p)
