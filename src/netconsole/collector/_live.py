"""The live view of `netconsole listen`: one line per record, host first, coloured by level."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from rich.console import Console
from rich.markup import escape

from netconsole.incidents import Incident, Output, Phase, Silence, SilencePhase
from netconsole.stream import Gap, Incomplete, Reboot, Record

LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warn", "notice", "info", "debug")
LEVEL_STYLES = ("bold white on red", "bold red", "bold red", "red", "yellow", "cyan", "default",
                "dim")


class LiveView:
    """Prints stored events; plain text when stdout is not a terminal.

    A host is shown by its `hostname=` userdata once it has sent one, else by
    its address (and source port, when it is not netconsole's 6665).
    """

    def __init__(self) -> None:
        self.console = Console(highlight=False, soft_wrap=True) if sys.stdout.isatty() else None
        self.names: dict[object, str] = {}

    def show(self, events: Iterable[Output]) -> None:
        lines = []
        for e in events:
            line = self._line(e)
            if line is not None:
                lines.append(line)
        if not lines:
            return
        if self.console is None:
            sys.stdout.write("".join(plain + "\n" for plain, _ in lines))
            sys.stdout.flush()
        else:
            for _, markup in lines:
                self.console.print(markup)

    def host_label(self, e: Output) -> str:
        if isinstance(e, Record) and e.fields:
            name = e.field(b"hostname")
            if name is not None:
                if len(self.names) > 100_000:
                    self.names.clear()
                self.names[e.sender] = name.decode("utf-8", "replace")
        label = self.names.get(e.sender)
        if label is not None:
            return label
        s = e.sender
        return s.host if s.port == 6665 else f"{s.host}:{s.port}"

    def _line(self, e: Output) -> tuple[str, str] | None:
        host = self.host_label(e)
        if isinstance(e, Record):
            level = e.level if e.level is not None else 6
            ts = f"[{e.ts_usec // 1_000_000:5d}.{e.ts_usec % 1_000_000:06d}] " \
                if e.ts_usec is not None else ""
            text = e.text.decode("utf-8", "replace")
            mark = "" if e.complete else " [incomplete]"
            plain = f"{host} {LEVEL_NAMES[level]:<6} {ts}{text}{mark}"
            markup = (f"[bold blue]{escape(host)}[/] "
                      f"[{LEVEL_STYLES[level]}]{LEVEL_NAMES[level]:<6} {escape(ts + text)}[/]"
                      f"{'[dim] (incomplete)[/]' if not e.complete else ''}")
            return plain, markup
        if isinstance(e, Gap):
            what = f"{e.count} {e.kind.value} lost" + (f" from {e.first}" if e.first is not None
                                                          else "")
        elif isinstance(e, Reboot):
            what = f"reboot detected ({e.reason.value})"
        elif isinstance(e, Incomplete):
            what = f"record {e.seq} incomplete: {len(e.missing)} pieces missing"
        elif isinstance(e, Incident):
            if e.phase is not Phase.CLOSED:
                return None
            culprit = f" in {e.culprit.function}" if e.culprit is not None else ""
            plain = f"{host} !! {e.kind.value}: {e.title}{culprit}" + (
                " (truncated)" if e.truncated else "")
            return plain, f"[bold white on red]{escape(plain)}[/]"
        elif isinstance(e, Silence):
            what = (f"silent ({e.reason.value})" if e.phase is SilencePhase.STARTED
                    else "back" + (" after a reboot" if e.rebooted else ""))
        else:
            return None
        plain = f"{host} -- {what}"
        return plain, f"[dim]{escape(plain)}[/]"
