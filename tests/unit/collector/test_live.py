"""The `listen` live view never hands the operator's terminal a sender's control bytes."""

from __future__ import annotations

import io
import re
import unicodedata

import pytest
from rich.console import Console

from netconsole.collector._live import LiveView
from netconsole.incidents import IncidentTable
from netconsole.stream.events import Record, Sender
from netconsole.wire import Mode

PWN = "innocent \x1b]0;PWNED\x07\x1b[2J"
MARKUP = "[bold red]loud[/] [link=http://evil.example]click[/link]"
HOSTILE = f"{PWN} csi:\u009b2J bidi:\u202eevil {MARKUP}\nforged line"
SENDER = Sender(host="192.0.2.66", port=6665, local_port=6666)
T0 = 1_700_000_000.0


def unsafe(out: str) -> list[str]:
    return [c for c in out if c != "\n" and (
        ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f
        or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs"))]


def hostile_events() -> list[object]:
    def rec(seq: int, text: str) -> Record:
        return Record(sender=SENDER, mode=Mode.EXTENDED, received=T0 + seq, text=text.encode(),
                      facility=0, level=0, seq=seq, ts_usec=seq * 1000,
                      fields=((b"hostname", b"web\x1b[2J\xc2\x9b[bold]"),))
    records = [rec(1, HOSTILE),
               rec(2, f"Kernel panic - not syncing: {PWN} {MARKUP}"),
               rec(3, f"---[ end Kernel panic - not syncing: {PWN} ]---")]
    return [*records, *IncidentTable().process(records, T0 + 3)]


def test_piped_live_view_escapes_sender_text(capsys: pytest.CaptureFixture[str]) -> None:
    view = LiveView()
    assert view.console is None  # pytest's stdout is not a terminal
    view.show(hostile_events())  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert not unsafe(out), out
    assert "innocent \\x1b]0;PWNED\\x07\\x1b[2J csi:\\u009b2J bidi:\\u202eevil" in out
    assert "web\\x1b[2J\\u009b[bold]" in out
    assert "!! panic:" in out
    assert "\nforged line" not in out  # one record, one line


def test_terminal_live_view_has_only_our_own_styling() -> None:
    view = LiveView()
    buf = io.StringIO()
    view.console = Console(file=buf, force_terminal=True, highlight=False, soft_wrap=True)
    view.show(hostile_events())  # type: ignore[arg-type]
    out = buf.getvalue()
    assert "\x1b[" in out
    assert not unsafe(re.sub(r"\x1b\[[0-9;]*m", "", out)), out
    assert "\x1b]" not in out  # no title, no hyperlink
    assert MARKUP in re.sub(r"\x1b\[[0-9;]*m", "", out)


def test_a_basic_record_without_a_level_shows_a_dash_as_tail_does() -> None:
    from netconsole.collector._live import LiveView
    from netconsole.stream import Record, Sender
    from netconsole.wire import Mode

    view = LiveView()
    rec = Record(sender=Sender(host="10.0.0.1", port=6665, local_port=6666), mode=Mode.BASIC,
                 received=1.0, text=b"no prefix", ts_usec=1_000_000)
    line = view._line(rec)
    assert line is not None
    assert line[0] == "10.0.0.1 -      [    1.000000] no prefix"
