"""docs/cli.md: every command's `--help`, generated, so the page never drifts.

    python -m netconsole.cli._docs > docs/cli.md

A unit test fails when docs/cli.md differs from what this prints (run in a
fresh process: help texts are fixed when a command's module is imported).
"""

from __future__ import annotations

import click

from netconsole.cli import COMMANDS, main

WIDTH = 88  # fixed, so the page does not depend on the terminal that made it


def _sections(command: click.Command, path: list[str],
              parent: click.Context | None) -> list[str]:
    ctx = click.Context(command, info_name=path[-1], parent=parent,
                        terminal_width=WIDTH, max_content_width=WIDTH)
    out = [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`\n\n```text\n"
           f"{command.get_help(ctx).rstrip()}\n```\n"]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _sections(sub, [*path, name], ctx)
    return out


def render() -> str:
    """The whole page."""
    root = click.Context(main, info_name="netconsole", terminal_width=WIDTH,
                         max_content_width=WIDTH)
    parts = ["# Command reference\n\n"
             "Generated from each command's `--help` by "
             "`python -m netconsole.cli._docs > docs/cli.md`; do not edit by hand.\n",
             f"## `netconsole`\n\n```text\n{main.get_help(root).rstrip()}\n```\n"]
    for name in COMMANDS:
        command = main.get_command(root, name)
        assert command is not None
        parts += _sections(command, ["netconsole", name], root)
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
