"""A host's records, found through its spans (m009_record_spans).

The writer adds one `record_spans` row per host per batch: the host's last and
first record id in the batch, and the offsets of its ids from the first when
other hosts' records lie between (`_batch.record_spans`). The records table has
no index by host: at fleet size every insert into one landed at another place
in it, the writer's largest cost per record after full-text search.

`record_ids` walks a host's spans from an id, newest or oldest first, a chunk of
spans per query (chunks grow: a page of one record reads one span, a long export
hundreds per query); `host_rows` reads the rows of a SELECT over `records r` for
those ids, with more conditions, in id order, up to a limit, a batch of ids per
query.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain, islice
from typing import Any

from netconsole.store._columns import INT64_MAX

FIRST_CHUNK = 4
MAX_CHUNK = 256
"""Spans per query: the first chunk is small (most pages need one or two
spans), each next one twice as large, up to `MAX_CHUNK`."""

FIRST_IDS = 64
MAX_IDS = 8192
"""Ids per records query when rows may fail the conditions or no limit is set:
twice as many each time, up to `MAX_IDS`."""


def _span_ids(first: int, last: int, offsets: str | None, above: int, below: int,
              newest_first: bool) -> Iterable[int]:
    if offsets is None:
        low, high = max(first, above + 1), min(last, below - 1)
        return range(high, low - 1, -1) if newest_first else range(low, high + 1)
    ids = [first + o for o in json.loads(offsets) if above < first + o < below]
    return reversed(ids) if newest_first else ids


def record_ids(
    conn: sqlite3.Connection,
    host_id: int,
    *,
    above: int = 0,
    below: int = INT64_MAX,
    newest_first: bool = False,
) -> Iterator[Iterable[int]]:
    """The host's record ids within `(above, below)`, a span at a time, in id
    order (descending with `newest_first`). Ids of deleted records may be among
    them (retention deletes a span with its last record)."""
    chunk = FIRST_CHUNK
    if newest_first:
        # The span holding `below` (if it starts before it) has a last id >= below.
        row = conn.execute(
            "SELECT first_id, last_id, offsets FROM record_spans WHERE host_id = ?"
            " AND last_id >= ? ORDER BY last_id LIMIT 1", (host_id, below)).fetchone()
        if row is not None and row[0] < below:
            yield _span_ids(row[0], row[1], row[2], above, below, True)
        bound = below
        while True:
            rows = conn.execute(
                "SELECT first_id, last_id, offsets FROM record_spans WHERE host_id = ?"
                " AND last_id < ? AND last_id > ? ORDER BY last_id DESC LIMIT ?",
                (host_id, bound, above, chunk)).fetchall()
            for first, last, offsets in rows:
                yield _span_ids(first, last, offsets, above, below, True)
            if len(rows) < chunk:
                return
            bound = rows[-1][1]
            chunk = min(chunk * 2, MAX_CHUNK)
    bound = above
    while True:
        rows = conn.execute(
            "SELECT first_id, last_id, offsets FROM record_spans WHERE host_id = ?"
            " AND last_id > ? ORDER BY last_id LIMIT ?", (host_id, bound, chunk)).fetchall()
        for first, last, offsets in rows:
            if first >= below:
                return
            yield _span_ids(first, last, offsets, above, below, False)
        if len(rows) < chunk:
            return
        bound = rows[-1][1]
        chunk = min(chunk * 2, MAX_CHUNK)


def id_batches(ids: Iterator[Iterable[int]], size: int | None = None) -> Iterator[list[int]]:
    """`ids` flattened into lists of `size` (default: `FIRST_IDS`, doubling up to
    `MAX_IDS`)."""
    flat = chain.from_iterable(ids)
    want = size or FIRST_IDS
    while batch := list(islice(flat, want)):
        yield batch
        if size is None:
            want = min(want * 2, MAX_IDS)


SPAN_RECORDS = (
    "record_spans s, json_each(s.offsets) j JOIN records r ON r.id = s.first_id + j.value"
    " WHERE s.offsets IS NOT NULL",
    "record_spans s JOIN records r ON r.id BETWEEN s.first_id AND s.last_id"
    " WHERE s.offsets IS NULL",
)
"""Spans joined to their records `r`, for an aggregate over a host's records in SQL:
`SELECT … FROM {each} AND s.host_id = ? …`, once with each, the results added.
Write a condition on an indexed column of `r` but the id as `+r.received`, so
that the records are found by id and not by that index."""

IN_IDS = "r.id IN (SELECT value FROM json_each(?))"
"""The condition that a record is one of a JSON array of ids (`json.dumps(ids)`)."""


def host_rows(
    conn: sqlite3.Connection,
    select: str,
    host_id: int,
    *,
    above: int = 0,
    below: int = INT64_MAX,
    where: Sequence[str] = (),
    params: Sequence[Any] = (),
    newest_first: bool = False,
    limit: int | None = None,
) -> list[Any]:
    """Rows of `select` (a SELECT over `records r`, without WHERE) for the host's
    records with ids in `(above, below)` that meet every condition in `where`
    (with `params`), in id order (descending with `newest_first`), at most `limit`."""
    if limit is not None and limit <= 0:
        return []
    out: list[Any] = []
    order = " ORDER BY r.id DESC" if newest_first else " ORDER BY r.id"
    sql = f"{select} WHERE {' AND '.join([IN_IDS, *where])}{order}"
    # Without conditions, `limit` ids are `limit` rows (but for deleted ones).
    size = limit if limit is not None and not where else None
    ids = record_ids(conn, host_id, above=above, below=below, newest_first=newest_first)
    for batch in id_batches(ids, size):
        if limit is None:
            out += conn.execute(sql, [json.dumps(batch), *params]).fetchall()
            continue
        out += conn.execute(sql + " LIMIT ?",
                            [json.dumps(batch), *params, limit - len(out)]).fetchall()
        if len(out) >= limit:
            break
    return out
