"""The ClickHouse store: the same sink and queries as SQLite, on a real
distributed engine (docs/scale-out.md).

`open_store("clickhouse://HOST:PORT/DATABASE[?cluster=NAME]")` and
`open_reader(...)` of `netconsole.store` come here for such a URL;
`ClickHouseViews` over its reader gives the web view's queries.
"""

from netconsole.store.clickhouse._client import ClickHouseRejected, Client
from netconsole.store.clickhouse._reader import ClickHouseReader, open_clickhouse_reader
from netconsole.store.clickhouse._schema import LATEST as SCHEMA_VERSION
from netconsole.store.clickhouse._schema import migrate
from netconsole.store.clickhouse._sink import ClickHouseStore, open_clickhouse_store
from netconsole.store.clickhouse._url import (
    ClickHouseURL,
    Node,
    is_clickhouse_url,
    parse_url,
)
from netconsole.store.clickhouse._views import ClickHouseViews

__all__ = [
    "SCHEMA_VERSION",
    "ClickHouseReader",
    "ClickHouseRejected",
    "ClickHouseStore",
    "ClickHouseURL",
    "ClickHouseViews",
    "Client",
    "Node",
    "is_clickhouse_url",
    "migrate",
    "open_clickhouse_reader",
    "open_clickhouse_store",
    "parse_url",
]
