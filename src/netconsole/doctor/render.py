"""Render a Report: rich text for people, JSON for scripts.

The JSON is `dataclasses.asdict` of the same Report the text shows, with enums
as their values, plus `works` and `exit_code` so a script needs nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from rich.console import Console, Group
from rich.markup import escape
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from netconsole.doctor.findings import Report, Severity

STYLE = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "yellow",
    Severity.UNKNOWN: "magenta",
    Severity.INFO: "cyan",
    Severity.OK: "green",
}


def _plain(obj: Any) -> Any:
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def to_dict(report: Report) -> dict[str, Any]:
    data: dict[str, Any] = _plain(dataclasses.asdict(report))
    data["works"] = report.works
    data["exit_code"] = report.exit_code
    return data


def render_text(report: Report, console: Console, *, verbose: bool = False) -> None:
    """Print the report. OK and INFO findings are one line each unless `verbose`."""
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("host", escape(report.source))
    for k, v in report.facts.rows():
        head.add_row(k, escape(v))
    console.print(head)
    console.print()
    for f in report.findings:
        style = STYLE[f.severity]
        title = Text.assemble((f"{f.severity.value.upper():8}", style), " ",
                              (f.code, "bold"), "  ", f.title)
        brief = f.severity in (Severity.OK, Severity.INFO) and not verbose
        if brief:
            console.print(title)
            continue
        parts: list[Any] = [Text(f.title, style="bold")]
        if f.cause:
            parts.append(Text(f.cause))
        if f.evidence:
            parts.append(Text("Evidence:", style="bold"))
            for e in f.evidence:
                parts.append(Padding(Text(str(e), style="dim"), (0, 0, 0, 2)))
        for i, r in enumerate(f.remedies, start=1):
            mark = "" if r.recommended or "not recommended" in r.text.lower() \
                else " (not recommended)"
            parts.append(Text(f"{i}. {r.text}{mark}", style="bold" if i == 1 else ""))
            for c in r.commands:
                parts.append(Padding(Text(c, style="green"), (0, 0, 0, 5)))
        label = Text.assemble((f.severity.value.upper(), style), " ", (f.code, "bold"))
        console.print(Panel(Group(*parts), title=label, title_align="left", border_style=style))
    verdict = ("netconsole will work" if report.works else
               "netconsole will NOT work: fix the errors above")
    console.print(Text(verdict, style="bold green" if report.works else "bold red"))
