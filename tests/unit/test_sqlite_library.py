"""SQLite's allocation counting is off in the `netconsole` command (see
netconsole/_sqlite_library.py), checked in fresh processes: in this one pytest
has imported sqlite3 long ago."""

from __future__ import annotations

import subprocess
import sys

MEMORY_USED = """
import ctypes, sqlite3
lib = ctypes.CDLL("libsqlite3.so.0")
lib.sqlite3_memory_used.restype = ctypes.c_int64
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (x)")
print(lib.sqlite3_memory_used())
"""


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.split()


def test_the_command_turns_counting_off_before_sqlite_starts() -> None:
    [counted] = _run(MEMORY_USED)
    assert int(counted) > 0  # SQLite's default: every allocation counted
    [uncounted] = _run("import netconsole.cli\n" + MEMORY_USED)
    assert int(uncounted) == 0


def test_too_late_or_no_library_changes_nothing() -> None:
    assert _run(
        "from netconsole._sqlite_library import stop_counting_allocations as s\n"
        "import sqlite3\n"
        "print(s(), s('libnothing-here.so.9'))") == ["False", "False"]
    assert _run(
        "from netconsole._sqlite_library import stop_counting_allocations as s\n"
        "print(s())") == ["True"]
