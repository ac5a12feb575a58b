"""Long work draws a progress bar on a terminal's stderr, and nothing into a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from netconsole.store import open_store
from tests.helpers import capture, decode_capture, records


def _on_a_terminal(*args: str) -> tuple[int, bytes]:
    """Run netconsole with stderr on a pseudo-terminal (stdout to /dev/null)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "netconsole", *args],
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    seen = b""
    while select.select([master], [], [], 60)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed it (EIO)
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return proc.wait(timeout=60), seen


BURST = capture("6.12.117+deb12-amd64", "burst")


def test_decode_shows_progress_on_a_terminal_only() -> None:
    status, seen = _on_a_terminal("decode", str(BURST))
    assert status == 0 and b"decoding" in seen and b"%" in seen
    piped = subprocess.run([sys.executable, "-m", "netconsole", "decode", str(BURST)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    assert b"decoding" not in piped.stderr and b"\x1b" not in piped.stderr


def test_export_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    with open_store(db) as store:
        store.apply(records(decode_capture(BURST))[:3000])
    status, seen = _on_a_terminal("export", "--db", str(db), "-o", str(tmp_path / "o.jsonl"))
    assert status == 0 and b"exporting" in seen
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 3000
