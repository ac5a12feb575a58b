"""The SQLite schema, as ordered migrations recorded in `_migrations`.

Each migration is a plain function registered with `@migration`, in the order
they must run. `migrate()` applies the missing ones, each in its own
transaction together with its `_migrations` row, so a crash mid-upgrade leaves
the database at the last whole version. `PRAGMA user_version` mirrors the count,
so a reader can tell cheaply whether the file is older or newer than this code.

Never edit a migration that has shipped: add a new one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from netconsole.store._errors import StoreError


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema step: `name` is recorded in `_migrations` once `apply` ran."""

    name: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: list[Migration] = []


def migration(fn: Callable[[sqlite3.Connection], None]) -> Callable[[sqlite3.Connection], None]:
    """Register `fn` as the next migration, named after the function."""
    MIGRATIONS.append(Migration(name=fn.__name__, apply=fn))
    return fn


def _script(conn: sqlite3.Connection, sql: str) -> None:
    """Run several statements inside the caller's transaction.

    `Connection.executescript` would COMMIT first, which would split a
    migration from its `_migrations` row; this runs them one by one instead.
    """
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement: {statement!r}")


@migration
def m001_initial(conn: sqlite3.Connection) -> None:
    """Hosts, records and events. Text is stored decoded for humans and FTS;
    `text_raw` keeps the exact bytes only when they are not valid UTF-8, so the
    common case pays nothing for exactness."""
    _script(
        conn,
        """
        CREATE TABLE hosts (
            id INTEGER PRIMARY KEY,
            address TEXT NOT NULL,
            port INTEGER NOT NULL,
            local_port INTEGER NOT NULL,
            name TEXT,
            release TEXT,
            first_seen REAL,
            last_seen REAL,
            last_record REAL,
            records INTEGER NOT NULL DEFAULT 0,
            lost_seq INTEGER NOT NULL DEFAULT 0,
            lost_msgid INTEGER NOT NULL DEFAULT 0,
            dropped INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            reboots INTEGER NOT NULL DEFAULT 0,
            incomplete INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0,
            boot INTEGER NOT NULL DEFAULT 0,
            stream_state TEXT,
            UNIQUE (address, port, local_port)
        );
        CREATE TABLE records (
            id INTEGER PRIMARY KEY,
            host_id INTEGER NOT NULL REFERENCES hosts(id),
            received REAL NOT NULL,
            mode TEXT NOT NULL,
            release TEXT,
            facility INTEGER,
            level INTEGER,
            seq INTEGER,
            ts_usec INTEGER,
            flag TEXT NOT NULL,
            caller TEXT,
            text TEXT NOT NULL,
            text_raw BLOB,
            fields TEXT,
            header_extra TEXT,
            msgid INTEGER,
            cpu INTEGER,
            taskname TEXT,
            complete INTEGER NOT NULL,
            missing TEXT,
            boot INTEGER NOT NULL
        );
        CREATE INDEX records_host ON records (host_id, id);
        CREATE INDEX records_received ON records (received);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            host_id INTEGER NOT NULL REFERENCES hosts(id),
            at REAL NOT NULL,
            kind TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE INDEX events_host ON events (host_id, id);
        CREATE INDEX events_at ON events (at);
        """,
    )


@migration
def m002_fts(conn: sqlite3.Connection) -> None:
    """Full-text search over records.text: an external-content FTS5 table (the
    text is stored once, in `records`) kept current by triggers, then filled
    from the rows a v1 database already holds.

    The insert trigger is skipped while `_fts_deferred.deferred` is 1: the
    batch writer sets it inside its transaction, inserts the batch, indexes it
    with one `INSERT … SELECT` and clears it before committing, so no other
    connection ever sees it set. That is 3x faster than the per-row trigger
    (FTS5 flushes its pending terms at every trigger's statement savepoint),
    and any other writer still gets its rows indexed by the trigger.
    """
    _script(
        conn,
        """
        CREATE TABLE _fts_deferred (deferred INTEGER NOT NULL);
        INSERT INTO _fts_deferred (deferred) VALUES (0);
        CREATE VIRTUAL TABLE records_fts USING fts5(
            text, content='records', content_rowid='id'
        );
        CREATE TRIGGER records_fts_insert AFTER INSERT ON records
        WHEN (SELECT deferred FROM _fts_deferred) = 0 BEGIN
            INSERT INTO records_fts (rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN
            INSERT INTO records_fts (records_fts, rowid, text)
                VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER records_fts_update AFTER UPDATE OF text ON records BEGIN
            INSERT INTO records_fts (records_fts, rowid, text)
                VALUES ('delete', old.id, old.text);
            INSERT INTO records_fts (rowid, text) VALUES (new.id, new.text);
        END;
        INSERT INTO records_fts (records_fts) VALUES ('rebuild');
        """,
    )


@migration
def m003_incidents(conn: sqlite3.Connection) -> None:
    """Incidents: crash reports grouped from records (see docs/incidents.md).

    One row per incident, upserted by `(host_id, key)` as the detector
    reopens it (opened, updated, closed, amended). It links to its records
    by id (`first_record_id`, `last_record_id`, rows of the same host) and by
    `boot` + `first_seq`/`last_seq`; the report's whole text is kept here
    too, so `incidents show` works after retention removed the records.
    Silences are rows of `events` (kind `silence`), which needs no schema.
    """
    _script(
        conn,
        """
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            host_id INTEGER NOT NULL REFERENCES hosts(id),
            key TEXT NOT NULL,
            boot INTEGER NOT NULL,
            kind TEXT NOT NULL,
            severity TEXT NOT NULL,
            state TEXT NOT NULL,
            title TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            culprit TEXT,
            frames TEXT NOT NULL,
            text TEXT NOT NULL,
            release TEXT,
            first_seq INTEGER,
            last_seq INTEGER,
            first_received REAL NOT NULL,
            last_received REAL NOT NULL,
            first_ts_usec INTEGER,
            last_ts_usec INTEGER,
            first_record_id INTEGER,
            last_record_id INTEGER,
            lines INTEGER NOT NULL,
            dropped_lines INTEGER NOT NULL DEFAULT 0,
            count INTEGER NOT NULL DEFAULT 1,
            truncated INTEGER NOT NULL DEFAULT 0,
            fatal INTEGER NOT NULL DEFAULT 0,
            lane TEXT,
            task TEXT,
            updated_at REAL NOT NULL,
            closed_at REAL,
            UNIQUE (host_id, key)
        );
        CREATE INDEX incidents_first ON incidents (first_received);
        CREATE INDEX incidents_fingerprint ON incidents (fingerprint, first_received);
        CREATE INDEX incidents_host ON incidents (host_id, id);
        """,
    )


@migration
def m004_fts_by_the_writer(conn: sqlite3.Connection) -> None:
    """The store's writer indexes every batch itself (one `INSERT … SELECT`
    into `records_fts`, in the batch's transaction), so the insert trigger,
    which the writer always switched off, goes. Its mere presence cost every
    insert statement a savepoint on the FTS table: about a tenth of the
    receiver's time at 50,000 records/s. Deletes and updates keep their
    triggers. A row inserted into `records` by hand is now not searchable
    until `INSERT INTO records_fts (records_fts) VALUES ('rebuild')`.
    """
    _script(
        conn,
        """
        DROP TRIGGER records_fts_insert;
        DROP TABLE _fts_deferred;
        """,
    )


@migration
def m005_shed_and_previous_boot(conn: sqlite3.Connection) -> None:
    """`hosts.shed`: datagrams the receiver shed for the host while it was behind
    and the host over its budget (collector/_budget.py). `incidents.previous_boot`:
    the report was replayed from pstore after a reboot (`netconsole forward`), so
    it belongs to the boot before the host's current one."""
    _script(
        conn,
        """
        ALTER TABLE hosts ADD COLUMN shed INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE incidents ADD COLUMN previous_boot INTEGER NOT NULL DEFAULT 0;
        """,
    )


_SYSDATA = ("cpu", "taskname", "release", "msgid")
FTS_FIELD_VALUES = (
    "CASE WHEN {fields} IS NULL"
    + "".join(f" OR substr({{fields}}, 1, {len(key) + 6}) = '[[\"{key}\", '" for key in _SYSDATA)
    + " THEN NULL ELSE ("
    "WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i"
    " WHERE n + 1 < json_array_length({fields}))"
    " SELECT group_concat(json_extract({fields}, '$[' || n || '][1]'), ' ') FROM i"
    " WHERE json_extract({fields}, '$[' || n || '][0]') NOT IN ("
    + ", ".join(f"'{key}'" for key in _SYSDATA) + ")) END"
)
"""SQL for the text FTS indexes of a record's fields: the values of its userdata and
printk dictionary, space-separated. Sysdata (cpu, taskname, release, msgid) is left
out: each has a filter of its own, and indexing it would cost every record of a
kernel that sends it (it comes last on the wire, so fields that start with it are
sysdata only and cost a comparison). A recursive CTE rather than json_each: FTS5's
`rebuild` refuses a content view that calls a table-valued function."""


@migration
def m006_fts_field_values(conn: sqlite3.Connection) -> None:
    """`search` finds field values too (userdata such as `rack=b12`, the printk
    dictionary), not only the text: records_fts gets a second
    column, `fields`, made of the values of `records.fields` but sysdata
    (FTS_FIELD_VALUES; keys are left out, or a search for "rack" would match
    every record of a host with that userdata).

    The FTS table's external content becomes the view `records_fts_source`,
    which computes that column, so that the delete and update triggers and
    every read and `rebuild` give FTS exactly what the writer indexed. The
    index is rebuilt from the rows a v5 database holds.
    """
    _script(
        conn,
        f"""
        DROP TRIGGER records_fts_delete;
        DROP TRIGGER records_fts_update;
        DROP TABLE records_fts;
        {_fts_source_view(FTS_FIELD_VALUES)}
        CREATE VIRTUAL TABLE records_fts USING fts5(
            text, fields, content='records_fts_source', content_rowid='id'
        );
        {_fts_triggers(FTS_FIELD_VALUES)}
        INSERT INTO records_fts (records_fts) VALUES ('rebuild');
        """,
    )


def _fts_source_view(values: str) -> str:
    """The FTS content view, its `fields` column computed by the SQL template `values`."""
    return ("CREATE VIEW records_fts_source AS SELECT id, text, "
            f"{values.format(fields='records.fields')} AS fields FROM records;")


def _fts_triggers(values: str) -> str:
    """The triggers that keep FTS current on delete and update (m006 on)."""
    old = values.format(fields="old.fields")
    new = values.format(fields="new.fields")
    return f"""
        CREATE TRIGGER records_fts_delete AFTER DELETE ON records BEGIN
            INSERT INTO records_fts (records_fts, rowid, text, fields)
                VALUES ('delete', old.id, old.text, {old});
        END;
        CREATE TRIGGER records_fts_update AFTER UPDATE OF text, fields ON records BEGIN
            INSERT INTO records_fts (records_fts, rowid, text, fields)
                VALUES ('delete', old.id, old.text, {old});
            INSERT INTO records_fts (rowid, text, fields) VALUES (new.id, new.text, {new});
        END;"""


FTS_FIELD_VALUES_ONE_PAIR = (
    "CASE WHEN {fields} IS NULL THEN NULL"
    " WHEN json_array_length({fields}) = 1 THEN"
    " CASE WHEN json_extract({fields}, '$[0][0]') IN ("
    + ", ".join(f"'{key}'" for key in _SYSDATA) + ") THEN NULL"
    " ELSE json_extract({fields}, '$[0][1]') END"
    " ELSE " + FTS_FIELD_VALUES + " END"
)
"""FTS_FIELD_VALUES with a shortcut for the common record of one field (a
`hostname=` userdata line): the same value, without the recursive query."""


@migration
def m007_fts_one_field_shortcut(conn: sqlite3.Connection) -> None:
    """The FTS source view and its triggers compute a record's field values with
    FTS_FIELD_VALUES_ONE_PAIR: the same values as m006 (so the index stays as it
    is), a sixth of the writer's FTS cost less for a fleet whose every record
    carries one userdata field (bench/mix.py)."""
    _script(
        conn,
        f"""
        DROP TRIGGER records_fts_delete;
        DROP TRIGGER records_fts_update;
        DROP VIEW records_fts_source;
        {_fts_source_view(FTS_FIELD_VALUES_ONE_PAIR)}
        {_fts_triggers(FTS_FIELD_VALUES_ONE_PAIR)}
        """,
    )



@migration
def m008_fts_without_column_sizes(conn: sqlite3.Connection) -> None:
    """Full-text search keeps no column sizes per record (`columnsize=0`): nothing
    ranks by bm25 (search orders by id, matches are marked in Python), and the
    `records_fts_docsize` row FTS5 wrote for every record was a tenth of the
    writer's indexing cost (bench/mix.py). The index is rebuilt from the records."""
    _script(
        conn,
        f"""
        DROP TRIGGER records_fts_delete;
        DROP TRIGGER records_fts_update;
        DROP TABLE records_fts;
        CREATE VIRTUAL TABLE records_fts USING fts5(
            text, fields, content='records_fts_source', content_rowid='id', columnsize=0
        );
        {_fts_triggers(FTS_FIELD_VALUES_ONE_PAIR)}
        INSERT INTO records_fts (records_fts) VALUES ('rebuild');
        """,
    )


@migration
def m009_record_spans(conn: sqlite3.Connection) -> None:
    """A host's records are found through `record_spans`, not an index on records.

    The writer adds one row per host per batch: the host's last and first record
    id in the batch and, when other hosts' records lie between, the host's ids as
    JSON offsets from the first (`_batch.record_spans`). The `(host_id, id)`
    index took an insert per record at a different place for every sender: from
    1,000 senders the receiver spends about an eighth less per record without it
    (bench/mix.py). Readers
    walk a host's spans (store/_spans.py). The spans of the records already here
    are their runs of one host in id order.
    """
    _script(
        conn,
        """
        CREATE TABLE record_spans (
            last_id INTEGER PRIMARY KEY,
            first_id INTEGER NOT NULL,
            host_id INTEGER NOT NULL,
            offsets TEXT
        );
        CREATE INDEX record_spans_host ON record_spans (host_id, last_id);
        INSERT INTO record_spans (last_id, first_id, host_id)
            SELECT max(id), min(id), host_id FROM (
                SELECT id, host_id,
                    row_number() OVER (ORDER BY id)
                    - row_number() OVER (PARTITION BY host_id ORDER BY id) AS run
                FROM records)
            GROUP BY host_id, run;
        DROP INDEX records_host;
        """,
    )


@migration
def m010_fts_automerge_8(conn: sqlite3.Connection) -> None:
    """Full-text search merges its index segments 8 at a time, not FTS5's default
    4: each token is rewritten about a third fewer times as the index grows
    (log8 instead of log4 levels), and a search reads up to 7 segments per level
    instead of 3. Receiving 1,000 senders at 70,000 records/s on a growing
    database cost 10.5 to 13.5 CPU-s per million with it, 11.4 to 18.4 without
    (bench/mix.py, back to back)."""
    conn.execute("INSERT INTO records_fts (records_fts, rank) VALUES ('automerge', 8)")


LATEST = len(MIGRATIONS)


def _ensure_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )


def applied(conn: sqlite3.Connection) -> list[str]:
    """Names of the migrations this database has had, oldest first."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_migrations'"
    ).fetchone()
    if exists is None:
        return []
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def migrate(conn: sqlite3.Connection, *, upto: int | None = None) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction.

    Args:
        conn: a connection in autocommit mode (`isolation_level=None`), which
            is how the store opens its writer.
        upto: stop after this many migrations in all (tests build old versions).

    Returns:
        The names of the migrations applied now.

    Raises:
        StoreError: the database records a migration this code does not know,
            or a `user_version` past this code's: it was written by a newer
            netconsole (which the readers refuse too).
    """
    known = [m.name for m in MIGRATIONS]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(known):
        raise StoreError(
            f"schema v{version} is newer than this netconsole (v{len(known)}); upgrade netconsole"
        )
    done = applied(conn)
    unknown = [name for name in done if name not in known]
    if unknown:
        raise StoreError(
            f"database schema is newer than this netconsole (unknown migrations: "
            f"{', '.join(unknown)}); upgrade netconsole"
        )
    ran: list[str] = []
    for index, step in enumerate(MIGRATIONS[:upto], start=1):
        if step.name in done:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            _ensure_table(conn)
            step.apply(conn)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (step.name, time.time()),
            )
            conn.execute(f"PRAGMA user_version = {index}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        ran.append(step.name)
    return ran
