"""ClickHouse's HTTP interface through urllib3: queries, and inserts in JSONEachRow.

Why HTTP and urllib3: the HTTP interface is the one every ClickHouse since the
first release speaks the same way (18.16 as Debian ships it, and current
servers); `clickhouse-connect` refuses servers before 20.x and
`clickhouse-driver` speaks the native protocol, whose revisions move with the
server. urllib3 is small, maintained, already installed wherever `requests`
or `selenium` is, and gives what the store needs: a pool of keep-alive
connections per server, connect and read timeouts, and no retries of its own
(the receiver's spool decides when to try again).

Errors are sorted for the receiver (collector/_spool.py): a server that cannot
be reached, times out or fails for its own reasons raises `StoreUnavailable`
(hold the batch, retry); a server that refuses the data itself (a value it
cannot parse) raises `ClickHouseRejected` (set that event aside).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import urllib3

from netconsole.store._errors import StoreError, StoreUnavailable
from netconsole.store.clickhouse._url import ClickHouseURL, Node

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 60.0
"""Seconds a query may take to answer: generous for a scan of 10^7 records on a
busy server, short enough that a hung server is noticed and the batch held."""

_CODE = re.compile(rb"Code: (\d+)")

DATA_ERRORS = frozenset({
    6,  # CANNOT_PARSE_TEXT
    25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
    26,  # CANNOT_PARSE_QUOTED_STRING
    27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
    53,  # TYPE_MISMATCH
    69,  # ARGUMENT_OUT_OF_BOUND
    70,  # CANNOT_CONVERT_TYPE
    72,  # CANNOT_PARSE_NUMBER
    117,  # INCORRECT_DATA
    190,  # SIZES_OF_ARRAYS_DOESNT_MATCH
})
"""Error codes that blame the inserted rows, not the server. Any other error of
an insert holds the batch: an unknown code is safer retried than set aside."""


class ClickHouseRejected(StoreError):
    """The server refused rows of an insert: something in the data, not the server."""


def server_error(node: Node, status: int, body: bytes) -> StoreError:
    """The exception for an error response: its code decides which kind."""
    found = _CODE.search(body)
    code = int(found.group(1)) if found else None
    text = body.decode("utf-8", "replace").strip().splitlines()
    first = text[0] if text else f"HTTP {status}"
    message = f"ClickHouse at {node}: {first[:300]}"
    if code in DATA_ERRORS:
        return ClickHouseRejected(message)
    return StoreUnavailable(message)


def _values(pairs: list[tuple[str, Any]]) -> list[Any]:
    """A JSONEachRow object as its values in column order (names may repeat).
    Strings are the bytes stored: invalid UTF-8 comes back as surrogates
    (`surrogateescape`) and encodes back to the same bytes."""
    return [value for _, value in pairs]


class Client:
    """Queries to the servers of one store URL. Thread-safe (urllib3's pool is)."""

    def __init__(self, url: ClickHouseURL, *, read_timeout: float = READ_TIMEOUT) -> None:
        self.url = url
        headers = {}
        if url.user is not None:
            headers.update(urllib3.make_headers(basic_auth=f"{url.user}:{url.password or ''}"))
        self._pool = urllib3.PoolManager(
            num_pools=max(4, len(url.nodes)), maxsize=4, headers=headers, retries=False,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=read_timeout))

    @property
    def node(self) -> Node:
        """The server queries and inserts go to."""
        return self.url.nodes[0]

    def _post(self, node: Node, body: bytes, params: Mapping[str, str | int]) -> bytes:
        target = node.url + "?" + urlencode(dict(params))
        try:
            response = self._pool.request("POST", target, body=body, preload_content=True)
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise StoreUnavailable(f"ClickHouse at {node}: {_reason(reason)}") from None
        if response.status != 200:
            raise server_error(node, response.status, response.data)
        return bytes(response.data)

    def execute(self, sql: str, *, node: Node | None = None,
                settings: Mapping[str, str | int] | None = None) -> bytes:
        """Run one statement; its raw output."""
        params = {"wait_end_of_query": 1, **(settings or {})}
        return self._post(node or self.node, sql.encode("utf-8", "surrogateescape"), params)

    def select(self, sql: str, *, node: Node | None = None,
               settings: Mapping[str, str | int] | None = None) -> list[list[Any]]:
        """The rows of a SELECT, as lists (64-bit integers as numbers)."""
        params = {"output_format_json_quote_64bit_integers": 0, **(settings or {})}
        # JSONEachRow, not JSONCompact: 18.16 writes invalid UTF-8 in the latter
        # as U+FFFD, in the former as the bytes stored.
        body = self.execute(sql + " FORMAT JSONEachRow", node=node, settings=params)
        try:
            return [json.loads(line, object_pairs_hook=_values)
                    for line in body.decode("utf-8", "surrogateescape").splitlines() if line]
        except ValueError as exc:
            raise StoreError(f"ClickHouse at {node or self.node}: unreadable answer "
                             f"({exc})") from None

    def insert(self, table: str, rows: bytes, *,
               settings: Mapping[str, str | int] | None = None) -> None:
        """Insert JSONEachRow lines into `table` (a qualified name)."""
        params = {"query": f"INSERT INTO {table} FORMAT JSONEachRow", **(settings or {})}
        self._post(self.node, rows, params)

    def close(self) -> None:
        self._pool.clear()


def _reason(reason: object) -> str:
    text = str(reason)
    # urllib3 puts the connection object's repr first: the errno text is what helps.
    if ": " in text and text.startswith("<"):
        text = text.split(": ", 1)[1]
    return text
