"""A sender cannot reach the operator's terminal: hostile text sent over real UDP to a
real `netconsole listen` (its live view on a real pseudo-terminal), then read back
by the real `tail`, `search`, `hosts` and `incidents show` commands."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import unicodedata
from pathlib import Path

from netconsole.collector import free_udp_port
from netconsole.store import open_reader
from netconsole.wire import OutgoingRecord, encode_extended
from tests.integration.listen_harness import FakeHost, wait_for

PWN = b"innocent \x1b]0;PWNED\x07\x1b[2J"
HOSTILE = (PWN + b" csi:\xc2\x9b2J bidi:\xe2\x80\xaeevil [bold red]loud[/] "
           b"[link=http://evil.example]click[/link]")
NAME = b"web\x1b[2J\xc2\x9b\xe2\x80\xae[link=http://evil.example]x[/link]"
# A release is sent and read as latin-1: these bytes come back with C1 characters.
RELEASE = b"6.1\x1b[2J\xc2\x9b\xe2\x80\xae[bold]".decode("latin-1")
SGR = re.compile(r"\x1b\[[0-9;]*m")


def unsafe(out: str) -> list[str]:
    """Characters a terminal might act on, newline aside."""
    return [c for c in out if c != "\n" and (
        ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F
        or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs"))]


class PtyListener:
    """`netconsole listen` with its live view on a pseudo-terminal we read."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_udp_port()
        self.db = tmp / "nc.db"
        self.err = tmp / "listen.err"
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netconsole", "listen", "--db", str(self.db),
             "-p", str(self.port), "-w", "1", "--no-http"],
            stdin=subprocess.DEVNULL, stdout=slave, stderr=self.err.open("wb"),
            start_new_session=True, env={**os.environ, "TERM": "xterm-256color"})
        os.close(slave)
        self.master = master
        self.screen = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_for(lambda: b"listening on" in self.err.read_bytes() or self.proc.poll() is not None,
                 timeout=20)
        assert self.proc.poll() is None, self.err.read_text()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # the terminal closed
                return
            if not chunk:
                return
            self.screen += chunk

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=30)
        self.reader.join(timeout=5)
        os.close(self.master)
        return code


def _cli(db: Path, *args: str, terminal: bool = False) -> str:
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "300"} if terminal else {
        k: v for k, v in os.environ.items() if k != "FORCE_COLOR"}
    done = subprocess.run([sys.executable, "-m", "netconsole", *args, "--db", str(db)],
                          capture_output=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8")  # strict: our output is always UTF-8


def _records(db: Path) -> int:
    if not db.exists():
        return 0
    with open_reader(db) as reader:
        return len(reader.tail(limit=100))


def test_hostile_sender_through_listen_and_every_reader(tmp_path: Path) -> None:
    lis = PtyListener(tmp_path)
    ext, basic = FakeHost(), FakeHost()
    try:
        lines = [HOSTILE, b"Kernel panic - not syncing: " + HOSTILE,
                 b"---[ end Kernel panic - not syncing: " + PWN + b" ]---"]
        for seq, text in enumerate(lines, 1):
            ext.send(encode_extended(OutgoingRecord(
                facility=0, level=0, seq=seq, ts_usec=seq * 1000, text=text, release=RELEASE,
                userdata=((b"hostname", NAME),))), lis.port)
        basic.send([b"[    1.000000] basic " + HOSTILE + b"\n"], lis.port)
        wait_for(lambda: _records(lis.db) >= 4, timeout=20)
        wait_for(lambda: b"!! panic" in lis.screen, timeout=20)
    finally:
        ext.close()
        basic.close()
        code = lis.stop()
    assert code == 0, lis.err.read_text()
    assert "Traceback" not in lis.err.read_text()

    live = lis.screen.decode("utf-8").replace("\r\n", "\n")
    assert SGR.search(live), live  # it is the terminal view
    assert not unsafe(SGR.sub("", live)), live
    assert "\x1b]" not in live and "innocent \\x1b]0;PWNED\\x07\\x1b[2J" in live

    db = lis.db
    with open_reader(db) as reader:
        [incident] = reader.incidents()
    for args in (("tail",), ("search", "innocent"), ("hosts",),
                 ("incidents", "show", str(incident.id))):
        for terminal in (False, True):
            out = _cli(db, *args, terminal=terminal)
            plain = SGR.sub("", out)
            assert not unsafe(plain), (args, terminal, out)
            assert "\x1b]" not in out
            assert "\\x1b[2J" in plain and "\\u009b" in plain and "\\u202e" in plain, out
            assert "[link=http://evil.example]" in plain  # shown, not made a link
            if terminal:
                assert SGR.search(out)
    # --json keeps the exact text the sender logged, every active character escaped.
    tailed = _cli(db, "tail", "--json")
    assert not unsafe(tailed.replace("\n", "")), tailed
    assert HOSTILE.decode() in [json.loads(line)["text"] for line in tailed.splitlines()]
