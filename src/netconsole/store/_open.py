"""Opening a store by what the operator gave: a SQLite file (None: the default
one) or a `clickhouse://` URL. The one place that chooses a backend: the SQLite
modules know nothing of ClickHouse, and ClickHouse's are imported only for a URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, overload

from netconsole.store._model import DEFAULT_SILENT_AFTER, Retention
from netconsole.store._reader import SQLiteReader, open_sqlite_reader
from netconsole.store._writer import Durability, SQLiteStore, open_sqlite_store

if TYPE_CHECKING:
    from netconsole.store.clickhouse import ClickHouseReader, ClickHouseStore

CLICKHOUSE_SCHEME = "clickhouse://"


def is_clickhouse_url(path: Path | str | None) -> bool:
    return isinstance(path, str) and path.startswith(CLICKHOUSE_SCHEME)


@overload
def open_store(
    path: Path | None = None, *, retention: Retention | None = None,
    durability: Durability = "process", silent_after: float = DEFAULT_SILENT_AFTER,
) -> SQLiteStore: ...


@overload
def open_store(
    path: str, *, retention: Retention | None = None, durability: Durability = "process",
    silent_after: float = DEFAULT_SILENT_AFTER,
) -> SQLiteStore | ClickHouseStore: ...


def open_store(
    path: Path | str | None = None,
    *,
    retention: Retention | None = None,
    durability: Durability = "process",
    silent_after: float = DEFAULT_SILENT_AFTER,
) -> SQLiteStore | ClickHouseStore:
    """Open the store for writing: `open_sqlite_store` for a file (None: the
    default one; `":memory:"` for tests), or for a
    `clickhouse://HOST:PORT/DATABASE[?cluster=NAME]` URL the ClickHouse store
    (store/clickhouse; `durability` is then the servers').

    Raises:
        StoreError: the file is not a database, its schema is newer, or the URL
            does not parse.
    """
    if is_clickhouse_url(path):
        from netconsole.store.clickhouse import open_clickhouse_store, parse_url

        assert isinstance(path, str)
        return open_clickhouse_store(parse_url(path), retention=retention,
                                     silent_after=silent_after)
    return open_sqlite_store(path, retention=retention, durability=durability,
                             silent_after=silent_after)


@overload
def open_reader(
    path: Path | None = None, *, silent_after: float = DEFAULT_SILENT_AFTER
) -> SQLiteReader: ...


@overload
def open_reader(
    path: str, *, silent_after: float = DEFAULT_SILENT_AFTER
) -> SQLiteReader | ClickHouseReader: ...


def open_reader(
    path: Path | str | None = None, *, silent_after: float = DEFAULT_SILENT_AFTER
) -> SQLiteReader | ClickHouseReader:
    """Open the store read-only for queries: `open_sqlite_reader` for a file,
    the ClickHouse store's queries for a `clickhouse://` URL.

    Raises:
        StoreError: no database at `path` (nothing has been received yet), its
            schema is older (start `netconsole listen` once to migrate) or newer
            than this netconsole, or the URL does not parse.
    """
    if is_clickhouse_url(path):
        from netconsole.store.clickhouse import open_clickhouse_reader, parse_url

        assert isinstance(path, str)
        return open_clickhouse_reader(parse_url(path), silent_after=silent_after)
    return open_sqlite_reader(path, silent_after=silent_after)
