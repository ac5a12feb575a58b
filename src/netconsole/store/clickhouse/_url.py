"""`clickhouse://` store URLs: which servers, which database, which cluster.

    clickhouse://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/DATABASE[?OPTIONS]

Each HOST:PORT is a server's HTTP interface (default port 8123). Queries and
inserts go to the first; the schema (and retention) is applied on every one
listed, because ClickHouse 18.16 runs `ON CLUSTER` DDL only through ZooKeeper,
which a plain sharded cluster does not need. Options:

* `cluster=NAME`: a cluster of the servers' `remote_servers`; the data tables
  are local tables on each server with a Distributed table over them. Every
  server of the cluster must then be listed.
* `spool=DIR`: where the receiver spools what the store cannot take now
  (default: the user data directory).
* `modern=1`: the extras of current servers (20.3 and later, never 18.16): a
  token index for search and TTLs from `--retain` (`_schema.modernize`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from netconsole.store._errors import StoreError
from netconsole.store._paths import default_db_path

SCHEME = "clickhouse"
DEFAULT_PORT = 8123

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPTIONS = ("cluster", "spool", "modern")


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One server's HTTP interface."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def __str__(self) -> str:
        return self.url[len("http://"):-1]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClickHouseURL:
    """A parsed `clickhouse://` URL."""

    nodes: tuple[Node, ...]
    database: str
    cluster: str | None = None
    user: str | None = None
    password: str | None = None
    spool: Path | None = None
    modern: bool = False

    @property
    def spool_base(self) -> Path:
        """The path the receiver's spool and quarantine are named after
        (`<base>.spool/`, `<base>.quarantine.jsonl`; collector/_spool.py)."""
        node = self.nodes[0]
        name = f"clickhouse-{node.host}-{node.port}-{self.database}".replace(":", "_")
        return (self.spool or default_db_path().parent) / name

    def __str__(self) -> str:
        """The URL without its password, for messages."""
        who = f"{self.user}@" if self.user else ""
        cluster = f"?cluster={self.cluster}" if self.cluster else ""
        return f"{SCHEME}://{who}{','.join(map(str, self.nodes))}/{self.database}{cluster}"


def is_clickhouse_url(target: object) -> bool:
    """Whether a store target (`--db`/`--store` value) names ClickHouse."""
    return isinstance(target, str) and target.startswith(f"{SCHEME}://")


def parse_url(text: str) -> ClickHouseURL:
    """Parse a `clickhouse://` URL.

    Raises:
        StoreError: what is wrong with it, in one line.
    """
    if not is_clickhouse_url(text):
        raise StoreError(f"{text!r} is not a clickhouse:// URL")
    parts = urlsplit(text)
    if parts.fragment:
        raise StoreError(f"{text}: a store URL has no #fragment")
    where = parts.netloc
    user = password = None
    if "@" in where:
        auth, where = where.rsplit("@", 1)
        user, _, pw = auth.partition(":")
        user = unquote(user) or None
        password = unquote(pw) if pw else None
    if not where:
        raise StoreError(f"{text}: give the server, as clickhouse://HOST:PORT/DATABASE")
    nodes = tuple(_node(text, item) for item in where.split(","))
    if len(set(nodes)) != len(nodes):
        raise StoreError(f"{text}: a server is listed twice")
    database = parts.path.strip("/")
    if not database:
        raise StoreError(f"{text}: give the database, as clickhouse://HOST:PORT/DATABASE")
    if not _IDENT.fullmatch(database):
        raise StoreError(f"{text}: database {database!r} must be letters, digits and _")
    try:
        query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise StoreError(f"{text}: cannot read the options {parts.query!r}") from None
    for key, values in query.items():
        if key not in _OPTIONS:
            raise StoreError(f"{text}: unknown option {key!r}; known: {', '.join(_OPTIONS)}")
        if len(values) != 1 or not values[0]:
            raise StoreError(f"{text}: give {key} once, with a value")
    cluster = query.get("cluster", [None])[0]
    if cluster is not None and not _IDENT.fullmatch(cluster):
        raise StoreError(f"{text}: cluster {cluster!r} must be letters, digits and _")
    if cluster is None and len(nodes) > 1:
        raise StoreError(f"{text}: several servers need ?cluster=NAME (their remote_servers "
                         "cluster)")
    spool = query.get("spool", [None])[0]
    modern = query.get("modern", ["0"])[0]
    if modern not in ("0", "1"):
        raise StoreError(f"{text}: modern must be 0 or 1, not {modern!r}")
    return ClickHouseURL(nodes=nodes, database=database, cluster=cluster, user=user,
                         password=password, spool=Path(spool) if spool else None,
                         modern=modern == "1")


def _node(text: str, item: str) -> Node:
    host, port = item, DEFAULT_PORT
    if item.startswith("["):
        end = item.find("]")
        if end < 0:
            raise StoreError(f"{text}: unclosed [ in {item!r}")
        host, rest = item[1:end], item[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise StoreError(f"{text}: cannot read server {item!r}")
            port = _port(text, rest[1:])
    elif ":" in item:
        host, _, p = item.rpartition(":")
        port = _port(text, p)
    if not host:
        raise StoreError(f"{text}: a server without a host name in {item!r}")
    return Node(host=host, port=port)


def _port(text: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise StoreError(f"{text}: port {value!r} is not between 1 and 65535")
    return int(value)
