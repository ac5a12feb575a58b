"""The live view of `netconsole listen`: one line per record, host first, coloured by level.

Sender text (record text, host names, incident titles) goes through
`netconsole._terminal.printable` on both paths, so the network cannot send
the operator's terminal a control sequence, and is put in rich `Text`
objects, so it cannot be rich markup either.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from rich.console import Console
from rich.text import Text

from netconsole._terminal import printable
from netconsole.incidents import Incident, Output, Phase, Silence, SilencePhase
from netconsole.store import Shed
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

    def show(self, events: Iterable[Output | Shed]) -> None:
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
            for _, styled in lines:
                self.console.print(styled)

    def host_label(self, e: Output | Shed) -> str:
        if isinstance(e, Record) and e.fields:
            name = e.field(b"hostname")
            if name is not None:
                if len(self.names) > 100_000:
                    self.names.clear()
                self.names[e.sender] = printable(name)
        label = self.names.get(e.sender)
        if label is not None:
            return label
        s = e.sender
        return printable(s.host if s.port == 6665 else f"{s.host}:{s.port}")

    def _line(self, e: Output | Shed) -> tuple[str, Text] | None:
        """The line as plain text and as styled rich `Text`; None for nothing to show."""
        host = self.host_label(e)
        if isinstance(e, Record):
            # A basic record without a `<N>` prefix has no level: `-`, as `tail` shows it.
            level = e.level if e.level is not None and 0 <= e.level <= 7 else None
            name = LEVEL_NAMES[level] if level is not None else "-"
            style = LEVEL_STYLES[level if level is not None else 6]
            ts = f"[{e.ts_usec // 1_000_000:5d}.{e.ts_usec % 1_000_000:06d}] " \
                if e.ts_usec is not None else ""
            # One line per record: an embedded newline is shown as \n, so a
            # sender cannot forge a line that looks like another host's.
            text = printable(e.text)
            mark = "" if e.complete else " [incomplete]"
            plain = f"{host} {name:<6} {ts}{text}{mark}"
            styled = Text.assemble((host, "bold blue"), " ",
                                   (f"{name:<6} {ts}{text}", style),
                                   (" (incomplete)" if not e.complete else "", "dim"))
            return plain, styled
        if isinstance(e, Gap):
            what = f"{e.count} {e.kind.value} lost" + (f" from {e.first}" if e.first is not None
                                                          else "")
        elif isinstance(e, Reboot):
            what = f"reboot detected ({e.reason.value})"
        elif isinstance(e, Incomplete):
            what = f"record {e.seq} incomplete: {len(e.missing)} pieces missing"
        elif isinstance(e, Shed):
            what = f"{e.count} datagrams shed: over its budget while the receiver was behind"
        elif isinstance(e, Incident):
            if e.phase is not Phase.CLOSED:
                return None
            culprit = f" in {e.culprit.function}" if e.culprit is not None else ""
            plain = f"{host} !! {e.kind.value}: {printable(e.title + culprit)}" + (
                " (truncated)" if e.truncated else "") + (
                " (previous boot, from pstore)" if e.previous_boot else "")
            return plain, Text(plain, style="bold white on red")
        elif isinstance(e, Silence):
            what = (f"silent ({e.reason.value})" if e.phase is SilencePhase.STARTED
                    else "back" + (" after a reboot" if e.rebooted else ""))
        else:
            return None
        plain = f"{host} -- {what}"
        return plain, Text(plain, style="dim")
