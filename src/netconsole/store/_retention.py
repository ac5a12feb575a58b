"""Retention: deleting what the `Retention` policy no longer keeps.

The passes of `SQLiteStore.enforce_retention`, by age and by size. Deletes run
in chunks of `Retention.chunk` rows, each in a transaction of its own (the
store's `atomic`), so other writers' batches interleave; the freed pages then
go back to the file system.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from netconsole.store._model import Retention, RetentionResult

LOW_WATER = 0.9
"""Size retention deletes down to this share of `max_bytes`, not just under it."""

FTS_MERGE_PAGES = 2000
"""Pages of FTS5 index merged after a size-retention pass: enough to fold in
the tombstones of the deleted rows, bounded (~8 MB of work) so the write lock
is held briefly whatever the index size."""

Atomic = Callable[[], AbstractContextManager[sqlite3.Connection]]
"""`SQLiteStore.atomic`: a transaction, rolled back on any exception."""


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes of the database in use (pages not on the freelist)."""
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def enforce(
    conn: sqlite3.Connection, atomic: Atomic, policy: Retention, now: float
) -> RetentionResult:
    """Apply `policy` at `now` (see `SQLiteStore.enforce_retention`), outside a transaction."""
    budget = [policy.budget]  # rows this call may still delete, shared by the passes
    records = events = 0
    if policy.max_age is not None:
        cutoff = now - policy.max_age
        records += _delete_all(
            atomic,
            policy.chunk,
            "DELETE FROM records WHERE id IN"
            " (SELECT id FROM records WHERE received < ? ORDER BY received LIMIT ?)",
            cutoff,
            budget,
            records=True,
        )
        events += _delete_all(
            atomic,
            policy.chunk,
            "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? LIMIT ?)",
            cutoff,
            budget,
        )
        _delete_all(
            atomic,
            policy.chunk,
            "DELETE FROM incidents WHERE id IN"
            " (SELECT id FROM incidents WHERE last_received < ? LIMIT ?)",
            cutoff,
            budget,
        )
    if policy.max_bytes is not None and budget[0] > 0:
        deleted = _shrink_to(conn, atomic, policy.chunk, policy.max_bytes, budget)
        records += deleted
        if deleted:
            oldest = conn.execute("SELECT min(received) FROM records").fetchone()[0]
            events += _delete_all(
                atomic,
                policy.chunk,
                "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ? LIMIT ?)",
                oldest if oldest is not None else now,
                budget,
            )
    if records or events:
        # Give the freed pages back to the file system. Each step of this
        # pragma frees one page, and `execute` steps a column-less statement
        # only once; `executescript` steps it to the end (and there is no
        # open transaction here for it to commit).
        assert not conn.in_transaction
        conn.executescript("PRAGMA incremental_vacuum;")
    return RetentionResult(records=records, events=events, more=budget[0] <= 0)


_DROP_DEAD_SPANS = (
    "DELETE FROM record_spans WHERE last_id <"
    " coalesce((SELECT min(id) FROM records), 9223372036854775807)"
)
"""The spans (m009_record_spans) of records all deleted. Only the oldest are, so
these are the spans below the first id left; once the table is empty ids begin
again at 1, so none may outlive it. A span holding some deleted records keeps
its range: readers find only what is left in it."""


def _delete_chunk(atomic: Atomic, sql: str, *params: Any, records: bool = False) -> int:
    """Run one delete in a transaction; of `records`, their dead spans go with them."""
    with atomic() as conn:
        count = conn.execute(sql, params).rowcount
        if count and records:
            conn.execute(_DROP_DEAD_SPANS)
        return count


def _delete_all(atomic: Atomic, chunk: int, sql: str, cutoff: float, budget: list[int],
                *, records: bool = False) -> int:
    """Run a `DELETE … LIMIT ?` in chunks until it deletes less than asked."""
    total = 0
    while budget[0] > 0:
        step = min(chunk, budget[0])
        count = _delete_chunk(atomic, sql, cutoff, step, records=records)
        total += count
        budget[0] -= count
        if count < step:
            break
    return total


def _shrink_to(
    conn: sqlite3.Connection, atomic: Atomic, chunk: int, max_bytes: int, budget: list[int]
) -> int:
    """Delete the oldest records until the used size is at most `max_bytes`.

    Each pass deletes the share of records that should bring the size down
    to `LOW_WATER` of the limit (so retention does not run again at every
    batch), estimating bytes per record from the database as a whole, then
    measures again. FTS5 frees its space lazily (a delete first adds a
    tombstone), so each pass ends with a bounded merge of the index
    (`FTS_MERGE_PAGES`) rather than an `optimize`, whose cost grows with
    the whole index and would stall the writer on a large database.
    """
    total = 0
    for _ in range(4):
        used = used_bytes(conn)
        if used <= max_bytes or budget[0] <= 0:
            break
        # Only the oldest records are ever deleted, so the ids left are
        # contiguous: the count without a scan of the table.
        low, high = conn.execute("SELECT min(id), max(id) FROM records").fetchone()
        if low is None:
            break
        count = high - low + 1
        goal = max_bytes * LOW_WATER
        target = min(count, budget[0], max(1, math.ceil(count * (used - goal) / used)))
        while target > 0:
            step = min(target, chunk)
            deleted = _delete_chunk(
                atomic,
                "DELETE FROM records WHERE id IN (SELECT id FROM records ORDER BY id LIMIT ?)",
                step,
                records=True,
            )
            total += deleted
            target -= deleted
            budget[0] -= deleted
            if deleted < step:
                break
        with atomic():
            conn.execute(
                "INSERT INTO records_fts (records_fts, rank) VALUES ('merge', ?)",
                (-FTS_MERGE_PAGES,),
            )
    return total
