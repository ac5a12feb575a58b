"""The ClickHouse schema, as ordered migrations recorded in `_migrations` on each server.

As in the SQLite store (store/_schema.py), each migration is a function
registered with `@migration`, in the order they must run; `migrate()` applies
the missing ones on every server the URL lists (ClickHouse 18.16 has no
cluster-wide DDL without ZooKeeper), each followed by its `_migrations` row, so
a server records exactly the steps it has. Statements are `IF NOT EXISTS`, so
a migration cut short by a crash runs again whole. Never edit a migration that
has shipped: add a new one.

The model (docs/scale-out.md): rows are only ever appended. Every row has a
deterministic key from the event it stores, so an insert retried after an
error whose outcome was unknown adds copies with the same key, which the
`ReplacingMergeTree` folds at its next merge and the reads skip until then.
Data tables are partitioned by UTC day (retention drops whole days) and
ordered by host first (`tail --host X` reads one range of one shard).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from netconsole.store._errors import StoreError
from netconsole.store.clickhouse._client import Client
from netconsole.store.clickhouse._dialect import (
    LOCAL_SUFFIX,
    MODERN_TEXT_INDEX,
    MODERN_TTL,
    day,
    distributed,
    ident,
    number,
    quote,
    replacing,
    table,
)
from netconsole.store.clickhouse._url import ClickHouseURL, Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Layout:
    """Where a migration creates things: one server's database, on a cluster or not."""

    database: str
    cluster: str | None

    def create(self, name: str, columns: str, engine: str) -> list[str]:
        """CREATE the table `name` (local table + Distributed table on a cluster)."""
        if self.cluster is None:
            return [f"CREATE TABLE IF NOT EXISTS {table(self.database, name)} ({columns}) "
                    f"{engine}"]
        local = name + LOCAL_SUFFIX
        return [
            f"CREATE TABLE IF NOT EXISTS {table(self.database, local)} ({columns}) {engine}",
            f"CREATE TABLE IF NOT EXISTS {table(self.database, name)} AS "
            f"{table(self.database, local)} {distributed(self.cluster, self.database, local)}",
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    name: str
    statements: Callable[[Layout], list[str]]


MIGRATIONS: list[Migration] = []


def migration(fn: Callable[[Layout], list[str]]) -> Callable[[Layout], list[str]]:
    """Register `fn` as the next migration, named after the function."""
    MIGRATIONS.append(Migration(name=fn.__name__, statements=fn))
    return fn


@migration
def m001_initial(at: Layout) -> list[str]:
    """Hosts, records, events, incidents and stream states.

    * `hosts`: one row per fact about a sender -- `host` (it exists), `name`,
      `release`, `boot` -- keyed by the time and ordinal of the event that
      set it; a host's current name is its newest `name` row, and so on.
    * `records`: `text` holds the exact bytes (a String is bytes), `fields` the
      userdata/sysdata pairs in wire order. `n` orders records of the same
      receive time as they arrived; `stored` is the receiver's clock at the
      insert, which `tail -f` follows.
    * `events`: gaps, reboots, incomplete records, shed datagrams, silences,
      and the duplicates and rejected datagrams the host counters count.
    * `incidents`: one row per update of a report, the newest read back.
    * `states`: each sender's stream state; the newest is kept.
    """
    return [
        *at.create("hosts", """
            host_id UInt64, address String, port UInt16, local_port UInt16,
            kind String, value String, at Float64, n UInt32""",
                   replacing(("host_id", "kind", "at", "n"))),
        *at.create("records", """
            host_id UInt64, received Float64, n UInt32, id UInt64, boot UInt32, stored UInt64,
            mode String, release Nullable(String), facility Nullable(Int64),
            level Nullable(Int64), seq Nullable(Int64), ts_usec Nullable(Int64), flag String,
            caller Nullable(String), text String, fields Nested(key String, value String),
            header_extra Nullable(String), msgid Nullable(Int64), cpu Nullable(Int64),
            taskname Nullable(String), complete UInt8, missing Nullable(String)""",
                   replacing(("host_id", "received", "n", "id"), partition_by=day("received"))),
        *at.create("events", """
            host_id UInt64, at Float64, n UInt32, id UInt64, kind String, sub String,
            count UInt64, detail String""",
                   replacing(("host_id", "at", "n", "id"), partition_by=day("at"))),
        *at.create("incidents", """
            host_id UInt64, key String, id UInt64, at Float64, n UInt32, opened_at Float64,
            opened_n UInt32, boot UInt32, kind String, severity String, state String,
            title String, fingerprint String, culprit Nullable(String), frames String,
            text String, release Nullable(String), first_seq Nullable(Int64),
            last_seq Nullable(Int64), first_received Float64, last_received Float64,
            first_ts_usec Nullable(Int64), last_ts_usec Nullable(Int64),
            first_record_id Nullable(UInt64), last_record_id Nullable(UInt64), lines Int64,
            dropped_lines Int64, count Int64, truncated UInt8, fatal UInt8,
            lane Nullable(String), task Nullable(String), previous_boot UInt8,
            closed_at Nullable(Float64)""",
                   replacing(("host_id", "key", "at", "n"),
                             partition_by=day("first_received"))),
        *at.create("states", """
            host_id UInt64, saved Float64, version UInt64, state String,
            through_received Float64, through_n UInt32, boot UInt32""",
                   replacing(("host_id",), version="version")),
    ]


LATEST = len(MIGRATIONS)
_TABLE = "_migrations"
MODERN_SINCE = (20, 3)
"""The first release with everything `modern=1` uses (token bloom filter indexes
and `hasToken` out of experimental, TTL)."""


def _ensure(client: Client, node: Node, database: str) -> None:
    client.execute(f"CREATE DATABASE IF NOT EXISTS {ident(database)}", node=node)
    client.execute(f"CREATE TABLE IF NOT EXISTS {table(database, _TABLE)} "
                   "(name String, applied_at Float64) ENGINE = MergeTree() ORDER BY name",
                   node=node)


def applied(client: Client, node: Node, database: str) -> list[str] | None:
    """Migration names a server has had (None: no netconsole schema there)."""
    exists = client.select(
        f"SELECT count() FROM system.tables WHERE database = {quote(database)}"
        f" AND name = {quote(_TABLE)}", node=node)
    if not exists or not exists[0][0]:
        return None
    return [row[0] for row in client.select(
        f"SELECT DISTINCT name FROM {table(database, _TABLE)}", node=node)]


def _check_known(done: list[str], node: Node) -> None:
    known = {m.name for m in MIGRATIONS}
    unknown = [name for name in done if name not in known]
    if unknown:
        raise StoreError(f"ClickHouse at {node}: schema is newer than this netconsole "
                         f"(unknown migrations: {', '.join(sorted(unknown))}); upgrade "
                         "netconsole")


def check_cluster(client: Client, url: ClickHouseURL) -> None:
    """Every server of the cluster is listed in the URL (DDL runs on each), and
    every listed one belongs to it.

    Raises:
        StoreError: which server is missing, or which is not in the cluster.
    """
    assert url.cluster is not None
    covered: set[tuple[int, int]] = set()
    everyone: set[tuple[int, int]] = set()
    for node in url.nodes:
        rows = client.select(
            "SELECT shard_num, replica_num, is_local, host_name, port FROM system.clusters"
            f" WHERE cluster = {quote(url.cluster)}", node=node)
        if not rows:
            raise StoreError(f"ClickHouse at {node}: no cluster {url.cluster!r} in its "
                             "remote_servers configuration")
        everyone |= {(int(r[0]), int(r[1])) for r in rows}
        local = [(int(r[0]), int(r[1])) for r in rows if r[2]]
        if not local:
            raise StoreError(f"ClickHouse at {node}: it is not a server of cluster "
                             f"{url.cluster!r} (its remote_servers list other hosts)")
        covered |= set(local)
    missing = sorted(everyone - covered)
    if missing:
        names = {(int(r[0]), int(r[1])): f"{r[3]}:{r[4]}" for r in client.select(
            "SELECT shard_num, replica_num, is_local, host_name, port FROM system.clusters"
            f" WHERE cluster = {quote(url.cluster)}", node=url.nodes[0])}
        raise StoreError(
            f"cluster {url.cluster!r} has servers the URL does not list: "
            f"{', '.join(names[m] for m in missing)} (TCP); add each one's HTTP HOST:PORT to "
            "the URL, comma-separated, so the schema is made there too")


def migrate(client: Client, url: ClickHouseURL, *, upto: int | None = None) -> list[str]:
    """Apply the migrations each listed server lacks. Returns the names applied
    on any server now.

    Raises:
        StoreError: a server has a newer schema, or the cluster is not what the
            URL says; StoreUnavailable: a server cannot be reached.
    """
    if url.cluster is not None:
        check_cluster(client, url)
    layout = Layout(database=url.database, cluster=url.cluster)
    ran: list[str] = []
    for node in url.nodes:
        _ensure(client, node, url.database)
        done = applied(client, node, url.database) or []
        _check_known(done, node)
        for step in MIGRATIONS[:upto]:
            if step.name in done:
                continue
            for statement in step.statements(layout):
                client.execute(statement, node=node)
            client.execute(
                f"INSERT INTO {table(url.database, _TABLE)} (name, applied_at) VALUES "
                f"({quote(step.name)}, {number(time.time())})", node=node)
            if step.name not in ran:
                ran.append(step.name)
    return ran


def modernize(client: Client, url: ClickHouseURL, *, retain: float | None) -> None:
    """`modern=1`, on servers that have them (19.6+; never 18.16): a token bloom
    filter index over the lower-cased text, which `search` prunes with
    (`hasToken`), and with `retain` a TTL on the data tables, so the servers
    delete old rows themselves (day partitions are still dropped). Idempotent:
    run at every start, after `migrate`.
    """
    suffix = LOCAL_SUFFIX if url.cluster else ""
    for node in url.nodes:
        version = str(client.select("SELECT version()", node=node)[0][0])
        if tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) < MODERN_SINCE:
            raise StoreError(f"ClickHouse at {node} is {version}: modern=1 needs "
                             f"{'.'.join(map(str, MODERN_SINCE))} or later (drop it)")
        client.execute(MODERN_TEXT_INDEX.format(
            table=table(url.database, "records" + suffix)), node=node)
        if retain is not None:
            for name, column in (("records", "received"), ("events", "at"),
                                 ("incidents", "first_received")):
                client.execute(MODERN_TTL.format(
                    table=table(url.database, name + suffix), column=column,
                    seconds=max(1, int(retain))), node=node)


def check_version(client: Client, url: ClickHouseURL) -> None:
    """For readers: the first server has exactly this netconsole's schema.

    Raises:
        StoreError: none yet (start `listen` once), older, or newer.
    """
    node = client.node
    done = applied(client, node, url.database)
    if done is None:
        raise StoreError(f"no netconsole schema in {url}: start `netconsole listen --store "
                         f"{url}` first")
    _check_known(done, node)
    if len(set(done)) < LATEST:
        raise StoreError(f"{url}: schema v{len(set(done))} is older than v{LATEST}; start "
                         "`netconsole listen` once to migrate it")
