"""Sender text reaching a person: `tail`, `search`, `hosts`, `incidents` never print a
control byte the network sent, nor let it become rich markup; `--json` stays exact."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner

from netconsole.cli import main
from netconsole.incidents import IncidentTable
from netconsole.store import open_store
from netconsole.stream.events import Record, Sender
from netconsole.wire import Mode
from tests.unit.incidents.conftest import T0, lines_to_records

PWN = "innocent \x1b]0;PWNED\x07\x1b[2J"
MARKUP = "[bold red]loud[/] [link=http://evil.example]click[/link]"
HOSTILE = f"{PWN} csi:\u009b2J bidi:\u202eevil del:\x7f ls:\u2028 cr:\r tab:\t {MARKUP}"
HOSTILE_NAME = "web\x1b[2J\u009b\u202e[link=http://evil.example]x[/link]"
HOSTILE_RELEASE = "6.1\x1b[2J\u009b\u202e[bold]"
SENDER = Sender(host="192.0.2.66", port=6665, local_port=6666)
# The escaped forms a person sees instead.
SHOWN = ("innocent \\x1b]0;PWNED\\x07\\x1b[2J", "csi:\\u009b2J", "bidi:\\u202eevil",
         "del:\\x7f", "ls:\\u2028", "cr:\\x0d", "tab:\\t", MARKUP)
COMMANDS = (("tail",), ("search", "innocent"), ("hosts",), ("hosts", "--machines"),
            ("incidents",), ("incidents", "show", "1"), ("incidents", "top"),
            ("incidents", "silences"))


def unsafe(out: str) -> list[str]:
    """Every character of `out` a terminal might act on (newline aside)."""
    return [c for c in out if c != "\n" and (
        ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f
        or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs"))]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hostile") / "nc.db"
    record = Record(sender=SENDER, mode=Mode.EXTENDED, received=T0, facility=0, level=3,
                    seq=1, ts_usec=1_000_000, release=HOSTILE_RELEASE,
                    text=HOSTILE.encode() + b" raw:\xff",
                    fields=((b"hostname", HOSTILE_NAME.encode()),))
    crash = lines_to_records(f"Kernel panic - not syncing: {HOSTILE}\n"
                             f"---[ end Kernel panic - not syncing: {PWN} ]---",
                             sender=SENDER, seq=2, t=T0 + 1, release=HOSTILE_RELEASE)
    table = IncidentTable()
    store = open_store(path)
    store.apply([record])
    store.apply(table.process(crash, crash[-1].received))
    store.apply(table.expire(crash[-1].received + 120))  # the host went silent after it
    store.close()
    return path


def run(db: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, [*args, "--db", str(db)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_piped_output_shows_hostile_text_escaped(db: Path, args: tuple[str, ...]) -> None:
    out = run(db, *args)
    assert not unsafe(out), out
    assert "innocent" in out or "web" in out
    if args[0] in ("tail", "search") or args[:2] == ("incidents", "show"):
        for shown in SHOWN:
            assert shown in out
    if args[0] in ("tail", "search"):
        assert "raw:\\xff" in out  # a byte that is not UTF-8 keeps the kernel's spelling


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_terminal_output_has_only_our_own_styling(db: Path, args: tuple[str, ...]) -> None:
    out = run(db, *args, env={"FORCE_COLOR": "1", "COLUMNS": "400"})
    assert "\x1b[" in out  # styled: this is the terminal path
    # Rich's own SGR colour codes are the only escape sequences left; no OSC
    # (title, hyperlink), no CSI that moves or clears.
    assert not unsafe(re.sub(r"\x1b\[[0-9;]*m", "", out)), out
    assert "evil.example" in out  # shown as text, never made a hyperlink
    assert "\x1b]" not in out


def test_json_stays_exact(db: Path) -> None:
    [obj] = [o for o in map(json.loads, run(db, "tail", "--json").split("\n")[:-1])
             if o["seq"] == 1]
    assert obj["text"] == HOSTILE + " raw:\ufffd"
    assert obj["name"] == HOSTILE_NAME and obj["release"] == HOSTILE_RELEASE
    [host] = json.loads(run(db, "hosts", "--json"))
    assert host["name"] == HOSTILE_NAME
    inc = json.loads(run(db, "incidents", "show", "1", "--json"))
    assert PWN in inc["title"]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_json_output_is_terminal_safe_and_exact(db: Path, args: tuple[str, ...]) -> None:
    """`--json` is read on terminals too: C1 controls, bidi overrides, DEL and line
    separators from senders come out as \\u escapes (JSON escapes the C0 ones), and
    parse back to the exact text."""
    out = run(db, *args, "--json")
    assert not unsafe(out), [c for c in unsafe(out)][:5]
    assert "\\u009b" in out or "\\u202e" in out
