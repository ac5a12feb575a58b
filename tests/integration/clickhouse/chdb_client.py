"""The ClickHouse store on embedded chDB: a current ClickHouse in this process.

`ChdbClient` answers the store's `Client` calls (statements, selects in
JSONEachRow, inserts of JSONEachRow lines) through a chDB session instead of
HTTP, so the same sink and reader run on today's engine as on Debian's 18.16
servers: the dialect's claim that both accept it is tested, `modern=1` too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from netconsole.store.clickhouse import Client, Node
from netconsole.store.clickhouse._client import server_error
from netconsole.store.clickhouse._url import ClickHouseURL

try:
    from chdb import session as chdb_session
except ImportError:  # chDB is optional: `pip install chdb`
    chdb_session = None

_SESSION_SETTINGS = ("output_format_json_quote_64bit_integers",
                     "distributed_group_by_no_merge")


class ChdbClient(Client):
    def __init__(self, url: ClickHouseURL, path: Path) -> None:
        super().__init__(url)
        assert chdb_session is not None
        self.session = chdb_session.Session(str(path))

    def _run(self, sql: bytes) -> bytes:
        try:
            return bytes(self.session.query(sql, "JSONEachRow").bytes())
        except RuntimeError as exc:
            raise server_error(self.node, 500, str(exc).encode()) from None

    def execute(self, sql: str, *, node: Node | None = None,
                settings: Mapping[str, str | int] | None = None) -> bytes:
        for key, value in (settings or {}).items():
            if key in _SESSION_SETTINGS:
                self._run(f"SET {key} = {value}".encode())
        return self._run(sql.encode("utf-8", "surrogateescape"))

    def insert(self, table: str, rows: bytes, *,
               settings: Mapping[str, str | int] | None = None) -> None:
        self._run(f"INSERT INTO {table} FORMAT JSONEachRow\n".encode() + rows)

    def close(self) -> None:
        super().close()
