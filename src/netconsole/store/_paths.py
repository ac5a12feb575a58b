"""Where the database lives when `--db` is not given."""

from __future__ import annotations

from pathlib import Path

import platformdirs

DB_FILENAME = "netconsole.db"


def default_db_path() -> Path:
    """`<user data dir>/netconsole/netconsole.db`, e.g. `~/.local/share/netconsole/`.

    The user data directory (not a cache or runtime one) because the records
    are the product: they must survive reboots and cache cleaners.
    """
    return Path(platformdirs.user_data_dir("netconsole")) / DB_FILENAME
