"""One process-wide setting of the SQLite library: do not count allocations.

SQLite counts every allocation it makes (`SQLITE_CONFIG_MEMSTATUS`, on by
default) under a global mutex, for `sqlite3_memory_used()` and the soft heap
limit, neither of which netconsole uses. The receiver's writer makes several
allocations per record (FTS5 tokens, b-tree cells), and the counting cost about
a microsecond a record: one sender at 80,000 records/s took 10.6 and 10.8 CPU s
per million without it, 12.2 and 13.3 with it (bench/mix.py, back to back).

Python's sqlite3 module cannot say so, and SQLite takes the setting only before
it initialises, which `import sqlite3` does. So the `netconsole` command makes
the C call through ctypes as it starts, before any command imports sqlite3
(cli/__init__.py); forked workers inherit it. Where the library is not
`libsqlite3.so.0`, or sqlite3 was imported first (a test run, a program using
netconsole as a library), nothing changes.
"""

from __future__ import annotations

import ctypes

SQLITE_CONFIG_MEMSTATUS = 9
SQLITE_OK = 0


def stop_counting_allocations(library: str = "libsqlite3.so.0") -> bool:
    """Turn SQLite's allocation counting off for this process. True when SQLite
    took it; False when it was already initialised or `library` is not there."""
    try:
        lib = ctypes.CDLL(library)
        config = lib.sqlite3_config
    except (OSError, AttributeError):
        return False
    return bool(config(SQLITE_CONFIG_MEMSTATUS, ctypes.c_int(0)) == SQLITE_OK)
