"""The SQLite writer: events in, one transaction per batch.

Theory of operation
-------------------
The collector hands `apply()` a batch of stream events (records and the
accounting events beside them). `apply` opens `BEGIN IMMEDIATE` (taking the
write lock up front, so a batch never fails half-way on a lock upgrade),
inserts the records with one `executemany`, adds the gap/reboot/incomplete
rows to `events`, folds every counter into one `UPDATE hosts` per sender, and
saves the senders' stream states if given, then commits. Either all of it is
in the file or none of it is.

Durability: the database is in WAL mode. A commit appends the transaction to
the `-wal` file before `apply` returns; with `synchronous=NORMAL` it is not
fsynced at each commit, but it is in the kernel's page cache, which a killed
process (even `kill -9`) cannot lose. Only a power loss or kernel crash can
lose the last transactions, and never corrupts the file. `durability="power"`
selects `synchronous=FULL` (an fsync per batch) for those who need that too.
`close()` checkpoints the WAL into the main file.

One writer per database file: the writer caches host ids and boot numbers, and
only the collector's single writer should call `apply`. (SQLite serialises
writers anyway, with `busy_timeout`; the cache stays right as long as each
sender goes to one writer, which SO_REUSEPORT's 4-tuple hash ensures.)

What a batch writes is in `_batch.py`, retention's deletes in `_retention.py`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from netconsole.incidents import IncidentEvent
from netconsole.store import _retention
from netconsole.store._batch import prepare_batch, write_batch
from netconsole.store._codec import RECORD_COLUMNS, row_to_stored
from netconsole.store._columns import STATE_BOOT, STATE_THROUGH
from netconsole.store._errors import StoreError
from netconsole.store._model import (
    DEFAULT_SILENT_AFTER,
    PrebuiltRecords,
    Retention,
    RetentionResult,
    Shed,
)
from netconsole.store._paths import default_db_path
from netconsole.store._reader import SQLiteReader, open_sqlite_reader
from netconsole.store._schema import migrate
from netconsole.store._spans import host_rows
from netconsole.stream.events import Event, Record, Sender

if TYPE_CHECKING:
    pass

Durability = Literal["process", "power"]

CACHE_KIB = 32 * 1024
BUSY_TIMEOUT_MS = 10_000
WAL_CHECKPOINT_PAGES = 10_000



def _connect(path: Path | str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (the sqlite3
    # module's implicit transactions would defeat BEGIN IMMEDIATE).
    # check_same_thread=False: the collector may open the store in its main
    # thread and write from its writer thread; it never writes from two.
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


class SQLiteStore:
    """The SQLite sink (and, through `reader`, its queries).

    Open it with `open_store()` (store/_open.py). Not thread-safe: one thread calls `apply`,
    `save_stream_states`, `enforce_retention` and `close`.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        path: Path | None,
        retention: Retention | None = None,
        silent_after: float = DEFAULT_SILENT_AFTER,
    ) -> None:
        self._conn = conn
        self.path = path
        self.retention = retention or Retention()
        self.silent_after = silent_after
        self._hosts: dict[Sender, tuple[int, int]] = {}  # sender -> (id, boot), committed
        self._depth = 0
        self._reader: SQLiteReader | None = None

    # -- transactions -------------------------------------------------------

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """A transaction (`BEGIN IMMEDIATE`), or a savepoint when nested.

        Rolls back on any exception, including KeyboardInterrupt, and re-raises.
        """
        rollback: tuple[str, ...]
        if self._depth == 0:
            begin, commit, rollback = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
        else:
            name = f"sp{self._depth}"
            begin, commit = f"SAVEPOINT {name}", f"RELEASE {name}"
            rollback = (f"ROLLBACK TO {name}", f"RELEASE {name}")
        self._conn.execute(begin)
        self._depth += 1
        try:
            yield self._conn
        except BaseException:
            self._depth -= 1
            # After SQLITE_FULL, IOERR, NOMEM or BUSY SQLite may have rolled the
            # whole transaction back already; a ROLLBACK then fails and would
            # hide the error that says what happened.
            if self._conn.in_transaction:
                for statement in rollback:
                    self._conn.execute(statement)
            raise
        self._depth -= 1
        self._conn.execute(commit)

    # -- writing ------------------------------------------------------------

    def committed_host(self, sender: Sender) -> tuple[int, int] | None:
        """(host id, boot) of `sender` as committed by this store, or None."""
        return self._hosts.get(sender)

    def reserve_host(self, sender: Sender) -> tuple[int, int] | None:
        """(host id, committed boot) of `sender` now, so that the express lane
        can build rows for it from its first records rather than after the
        next batch commits.

        From the cache, else read from the file (a host known before a
        restart), else its `hosts` row is inserted and committed now, in a
        transaction of its own. None when that cannot happen at once: inside
        a batch, or the write lock is held by another writer (the lane then
        waits for this writer's next commit), or the file cannot be written.
        """
        known = self._hosts.get(sender)
        if known is not None or self._depth:
            return known
        key = (sender.host, sender.port, sender.local_port)
        select = "SELECT id, boot FROM hosts WHERE address = ? AND port = ? AND local_port = ?"
        try:
            row = self._conn.execute(select, key).fetchone()
            if row is None:
                # Never wait for another writer here: this runs between datagrams.
                self._conn.execute("PRAGMA busy_timeout = 0")
                try:
                    with self.atomic() as conn:
                        conn.execute("INSERT OR IGNORE INTO hosts (address, port, local_port)"
                                     " VALUES (?, ?, ?)", key)
                        row = conn.execute(select, key).fetchone()
                finally:
                    self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error:
            return None
        self._hosts[sender] = (row[0], row[1])
        return self._hosts[sender]

    def apply(
        self,
        events: Sequence[Event | IncidentEvent | PrebuiltRecords | Shed],
        states: Mapping[Sender, Mapping[str, Any]] | None = None,
    ) -> None:
        """Store a batch of stream events, and optionally stream states, atomically.

        Events are taken in order: a `Reboot` bumps the sender's boot number for
        the records after it. Records are inserted; `Gap`, `Reboot` and
        `Incomplete` are inserted into `events` and counted on the host;
        `Duplicate` and `Rejected` are only counted (they can come in floods).
        `PrebuiltRecords` are inserted as they are, in their place among the
        other records, and counted on their hosts.
        `Incident` events (from `netconsole.incidents`, placed among the
        records that made them) are upserted into `incidents` by key, with the
        boot number and record ids of their records; `Silence` events become
        `events` rows of kind `silence`. Neither touches the host's counters
        or last-seen time (a silence is decided when nothing arrived).

        When this returns, the batch is committed and survives `kill -9`.

        Args:
            events: one batch, as the streams emitted it.
            states: `SenderStream.snapshot()` per sender, saved in the same
                transaction so a restart resumes exactly where the stored
                records end. Values must be JSON-serialisable.

        Raises:
            sqlite3.Error, TypeError (unserialisable state): nothing was written.
        """
        if not events and not states:
            return
        # Everything that needs no database is done before taking the write
        # lock, so that several writer processes hold it as briefly as possible.
        batch = prepare_batch(events, states)
        with self.atomic() as conn:
            pending = write_batch(conn, batch, self._hosts)
        # Only now, committed, may the cache learn new ids and boots.
        self._hosts.update(pending)
        for sender, delta in batch.deltas.items():
            self._hosts[sender] = (delta.id, delta.boot + delta.reboots)

    def save_stream_states(self, states: Mapping[Sender, Mapping[str, Any]]) -> None:
        """Save each sender's opaque stream state (its `snapshot()`), in one transaction."""
        self.apply((), states)

    def load_stream_states(self) -> dict[Sender, dict[str, Any]]:
        """Every saved stream state, as saved (without the writer's marks)."""
        out: dict[Sender, dict[str, Any]] = {}
        for address, port, local_port, state in self._conn.execute(
            "SELECT address, port, local_port, stream_state FROM hosts"
            " WHERE stream_state IS NOT NULL"
        ):
            saved = json.loads(state)
            saved.pop(STATE_THROUGH, None)
            saved.pop(STATE_BOOT, None)
            out[Sender(host=address, port=port, local_port=local_port)] = saved
        return out

    def known_senders(self) -> set[Sender]:
        """Every sender the store has a host row for (streams to resume at restart)."""
        return {Sender(host=a, port=p, local_port=lp) for a, p, lp in self._conn.execute(
            "SELECT address, port, local_port FROM hosts")}

    def resume_stream(self, sender: Sender) -> tuple[dict[str, Any], list[Record]]:
        """A restarted receiver's starting point for `sender`: its saved stream
        state and the records stored after that state was saved, to replay onto
        it (`StreamTable.restore`).

        States are saved now and then (the collector's `STATE_EVERY`), records
        with every batch, so after a `kill -9` the state is behind the records.
        A state saved before the host's current boot is dropped, and the whole
        current boot is replayed; so is a host with no state saved yet.
        """
        row = self._conn.execute(
            "SELECT id, boot, stream_state FROM hosts"
            " WHERE address = ? AND port = ? AND local_port = ?",
            (sender.host, sender.port, sender.local_port),
        ).fetchone()
        if row is None:
            return {}, []
        host_id, boot, text = row
        state: dict[str, Any] = json.loads(text) if text else {}
        if state and STATE_THROUGH not in state:
            return state, []  # saved with every batch by an older netconsole: exact
        through = int(state.pop(STATE_THROUGH, 0))
        if state.pop(STATE_BOOT, None) != boot:
            state, through = {}, 0
        last = self._conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
        if through > last:
            through = 0  # the table was emptied by retention since, and ids began again
        rows = host_rows(
            self._conn, f"SELECT {RECORD_COLUMNS} FROM records r JOIN hosts h ON h.id = r.host_id",
            host_id, above=through, where=["r.boot = ?"], params=[boot])
        return state, [row_to_stored(r).record for r in rows]

    # -- retention ----------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes of the database in use (pages not on the freelist)."""
        return _retention.used_bytes(self._conn)

    def enforce_retention(self, now: float) -> RetentionResult:
        """Delete what the retention policy no longer keeps, oldest first.

        By age: records received (and events that happened) before
        `now - max_age`. By size: the oldest records until the used size is
        under `max_bytes`, then the events older than the oldest record left.
        Deletes run `chunk` rows per transaction, at most `budget` rows per
        call (`more` says the policy is not met yet); freed pages are returned
        to the file system at the end (`auto_vacuum=INCREMENTAL`), so the file
        shrinks too.

        Call it from the writer's thread, between batches (e.g. once a minute,
        and again soon while `more`).
        """
        return _retention.enforce(self._conn, self.atomic, self.retention, now)

    # -- queries and lifetime -----------------------------------------------

    @property
    def reader(self) -> SQLiteReader:
        """A read-only (`mode=ro`) connection's queries, opened on first use.

        An in-memory store has no file to open twice, so its queries share
        the writer's connection.
        """
        if self._reader is None:
            if self.path is None:
                self._reader = SQLiteReader(self._conn, silent_after=self.silent_after)
            else:
                self._reader = open_sqlite_reader(self.path, silent_after=self.silent_after)
        return self._reader

    def close(self) -> None:
        """Flush and close: checkpoint the WAL into the database file.

        Everything `apply` returned from is already safe; this makes the main
        file complete on its own and removes the `-wal` file.
        """
        if self._reader is not None and self._reader.conn is not self._conn:
            self._reader.close()
        self._reader = None
        if self.path is not None:
            # Maintenance only: every batch is already committed. With other
            # writers on the file (one per worker) SQLite may refuse these at once
            # (SQLITE_BUSY without the busy handler); the last writer to close, or
            # SQLite's own auto-checkpoint, does the work then.
            for pragma in ("PRAGMA optimize", "PRAGMA wal_checkpoint(TRUNCATE)"):
                with contextlib.suppress(sqlite3.OperationalError):
                    self._conn.execute(pragma)
        self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sqlite_store(
    path: Path | str | None = None,
    *,
    retention: Retention | None = None,
    durability: Durability = "process",
    silent_after: float = DEFAULT_SILENT_AFTER,
) -> SQLiteStore:
    """Open (creating and migrating as needed) the database for writing.

    Args:
        path: the database file; None for the default (`default_db_path()`),
            `":memory:"` for a private in-memory store (tests). (`open_store` in
            store/_open.py picks this backend or ClickHouse's.)
        retention: what `enforce_retention` keeps.
        durability: `"process"` (WAL, synchronous=NORMAL: survives `kill -9`,
            may lose the last batches on power loss) or `"power"`
            (synchronous=FULL: also survives power loss, one fsync per batch).
        silent_after: seconds without a record before a host is `silent`.

    Raises:
        StoreError: the file is not a database, or its schema is newer.
    """
    memory = str(path) == ":memory:"
    resolved: Path | None = None
    if not memory:
        resolved = Path(path) if path is not None else default_db_path()
        try:
            resolved.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {resolved.parent}: {exc.strerror}") from exc
    try:
        conn = _connect(":memory:" if resolved is None else resolved)
        if conn.execute("PRAGMA page_count").fetchone()[0] == 0:
            # Must precede the first table; lets retention give space back.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if not memory:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                raise StoreError(f"{resolved}: cannot use WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'power' else 'NORMAL'}")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # The writer's B-trees (records, its indexes, FTS) stay in its cache,
        # and the WAL is folded back 10x less often than SQLite's default, which
        # writes pages that many batches change (index and FTS pages) once per
        # checkpoint rather than each time: together ~10 % of a record's cost.
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        try:
            migrate(conn)
        except StoreError as exc:  # a newer schema: name the file
            conn.close()
            raise StoreError(f"{resolved or path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{resolved or path}: {exc}") from exc
    return SQLiteStore(conn, path=resolved, retention=retention, silent_after=silent_after)
