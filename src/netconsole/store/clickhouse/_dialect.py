"""The SQL both ClickHouse 18.16 (Debian 12's `clickhouse-server`) and current
servers accept: every piece of SQL text the ClickHouse store builds comes from here.

What is used: MergeTree tables with a custom `PARTITION BY`/`ORDER BY`
(`ReplacingMergeTree`), `Nullable`, `Nested`, the `Distributed` engine,
`LIMIT n BY`, `FINAL`, tuple comparison, `argMax`/`-If` combinators,
`uniqExact`, `positionCaseInsensitiveUTF8`, `ALTER TABLE … DROP PARTITION`,
`system.parts`/`system.clusters`, and over HTTP the settings
`insert_distributed_sync`, `distributed_group_by_no_merge`,
`output_format_json_quote_64bit_integers` and `wait_end_of_query`.

What is avoided, and why:

* `ON CLUSTER` DDL: it goes through ZooKeeper (both versions), which a plain
  sharded cluster does not need; the store runs its DDL on each server listed
  in the URL instead.
* Query parameters (`{name:Type}`, 19.x): values are quoted here (`quote`).
* `insert_deduplication_token` (22.x) and `non_replicated_deduplication_window`
  (20.x): a retried insert is made harmless by deterministic row keys in a
  `ReplacingMergeTree` and reads that keep one row per key (`LIMIT 1 BY id`),
  see docs/scale-out.md.
* `LowCardinality` (19.x), `Map` (21.x), `DateTime64` (20.1): `String`,
  `Nested(key, value)`, and times as `Float64` unix seconds (the receiver's
  `time.time()`, exact as Python has it).
* Data-skipping indexes (`minmax`, `tokenbf_v1`, 19.x), `TTL` (19.6) and
  `hasToken` (20.x): search scans the text column with
  `positionCaseInsensitiveUTF8`; retention drops day partitions. `modern=1`
  adds the index and TTL on servers that have them (`MODERN_*`).
* `JSONCompactEachRow` (20.x) and, for results, `JSONCompact`: 18.16 writes
  invalid UTF-8 there as U+FFFD. Inserts and selects are `JSONEachRow`, whose
  strings carry the bytes as stored, both ways.
* Mutations (`ALTER … UPDATE/DELETE`): asynchronous and heavy in every version;
  host facts, incidents and stream states are appended as new rows and the
  newest read back (`argMax`, `LIMIT 1 BY`).
* Nullable columns in a sorting key (`allow_nullable_key`, 20.x): key columns
  are never Nullable.
* `JOIN … ON` and window functions: joins are done in Python, over results
  that are small (one row per host or incident).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

DATA_TABLES = ("records", "events", "incidents")
"""Tables partitioned by day, which retention drops partitions of."""
TABLES = ("hosts", "states", *DATA_TABLES)

LOCAL_SUFFIX = "_local"
"""On a cluster, each server's own table is `<name>_local` and `<name>` is the
Distributed table over them; on one server `<name>` is the table itself."""


def day(column: str) -> str:
    """The partition of a row: the UTC day (YYYYMMDD) of a unix-time column."""
    return f"toYYYYMMDD(toDateTime(toUInt32({column}), 'UTC'))"


def replacing(order_by: Sequence[str], *, partition_by: str | None = None,
              version: str | None = None) -> str:
    """A `ReplacingMergeTree` engine clause: rows with the same sorting key are
    one row (merges keep one; reads keep one with `LIMIT 1 BY`)."""
    engine = f"ReplacingMergeTree({version})" if version else "ReplacingMergeTree()"
    partition = f" PARTITION BY {partition_by}" if partition_by else ""
    return f"ENGINE = {engine}{partition} ORDER BY ({', '.join(order_by)})"


def distributed(cluster: str, database: str, local: str) -> str:
    """A Distributed engine clause sharded by host: every row of a host goes to
    one shard, so its duplicates meet there (ReplacingMergeTree only dedups
    within a table) and per-host queries read one shard."""
    return f"ENGINE = Distributed({ident(cluster)}, {ident(database)}, {ident(local)}, host_id)"


def ident(name: str) -> str:
    """A quoted identifier (names are checked to be `[A-Za-z_][A-Za-z0-9_]*`)."""
    return f"`{name}`"


def table(database: str, name: str) -> str:
    return f"{ident(database)}.{ident(name)}"


_ESCAPES = {ord("\\"): "\\\\", ord("'"): "\\'"}
for _byte in (*range(0x20), 0x7F):
    _ESCAPES[_byte] = f"\\x{_byte:02X}"


def quote(value: str | bytes) -> str:
    """A string literal. Bytes that are not UTF-8 (and control characters) are
    written as `\\xHH` escapes, so the statement stays text and the value exact."""
    text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    out = text.translate(_ESCAPES)
    if any("\udc80" <= c <= "\udcff" for c in out):
        out = "".join(f"\\x{ord(c) - 0xDC00:02X}" if "\udc80" <= c <= "\udcff" else c
                      for c in out)
    return f"'{out}'"


def number(value: float | int) -> str:
    """A numeric literal; floats in their shortest exact form (`repr`)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return repr(value)


def in_list(column: str, values: Iterable[int]) -> str:
    """`column IN (…)` over integers; an empty list is false."""
    items = ", ".join(str(int(v)) for v in values)
    return f"{column} IN ({items})" if items else "0"


def after(columns: Sequence[str], key: Sequence[float | int]) -> str:
    """Rows after `key` in the order of `columns` (a keyset page: `(a, b) > (x, y)`)."""
    return f"({', '.join(columns)}) > ({', '.join(number(v) for v in key)})"


def contains_ci(column: str, needle: str) -> str:
    """The column contains `needle`, ignoring case (a superset of an FTS word match)."""
    return f"positionCaseInsensitiveUTF8({column}, {quote(needle)}) > 0"


def contains(column: str, needle: str | bytes) -> str:
    """The column contains `needle` exactly."""
    return f"position({column}, {quote(needle)}) > 0"


ONE_PER_KEY = "LIMIT 1 BY id"
"""After an ORDER BY: one row per id, so the copies of a retried insert (until a
merge folds them) are read once."""

SETTINGS_INSERT_CLUSTER = {"insert_distributed_sync": 1}
"""Inserts into a Distributed table return once every shard has its rows, so
an insert that returned is stored, and one that failed is retried whole (the
part a shard took then meets its copy: same keys)."""

SETTINGS_PER_HOST = {"distributed_group_by_no_merge": 1}
"""A GROUP BY host_id finishes on each shard (a host lives on one), so the
initiator concatenates results instead of merging every id's state."""

MODERN_TEXT_INDEX = ("ALTER TABLE {table} ADD INDEX IF NOT EXISTS text_tokens lowerUTF8(text)"
                     " TYPE tokenbf_v1(8192, 3, 0) GRANULARITY 4")
"""`modern=1`: a token bloom filter over the lower-cased text, which `has_token`
lets a search prune granules with."""

MODERN_TTL = ("ALTER TABLE {table} MODIFY TTL toDateTime(toUInt32({column}))"
              " + INTERVAL {seconds} SECOND")
"""`modern=1` with `--retain`: the servers delete old rows themselves."""

_ASCII_WORD = re.compile(r"[0-9a-z]+")


def has_token(column: str, token: str) -> str | None:
    """`modern=1`: the lower-cased column has `token` as a whole token, as the
    `tokenbf_v1` index sees them (runs of ASCII letters and digits); None for a
    token `hasToken` cannot take (not plain ASCII)."""
    if not _ASCII_WORD.fullmatch(token):
        return None
    return f"hasToken(lowerUTF8({column}), {quote(token)})"
