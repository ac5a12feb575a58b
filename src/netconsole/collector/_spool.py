"""Committing the worker's batches when the store fails: nothing lost silently.

Theory of operation
-------------------
`BatchWriter.write` commits a batch with `RecordSink.apply`. A failure is one
of two kinds, told apart by the exception (`about_the_store`):

* About the data: a row the store refuses (a number it cannot hold, a value
  it cannot bind). Retrying cannot help and must not hold back the other
  records, so the batch is bisected -- each half applied on its own, the
  failing half split again -- until the bad event is alone; it is set aside
  (counted in `quarantined`, logged once per sender, written as JSON to a
  quarantine file beside the database) and the rest commits, in order.
* About the store: the disk is full, the file is locked or read-only, an I/O
  error. The data is fine, so it is held: in memory up to `memory_records`,
  the newer part beyond that spilled to spool files in a directory beside the
  database (`<db>.spool/`: make it a link to put the spool elsewhere). Writing
  is retried with backoff at the worker's next flushes (never sleeping: the
  worker goes on draining its sockets), oldest first, in pieces (at most
  `piece` records a transaction, halved at each failure so that a little free
  space is used at once, doubled again at each success) and for at most
  `DRAIN_SECONDS` a flush.

Order is kept: held events are committed before newer ones, and the senders'
stream states are saved only with the piece that leaves nothing held (a state
saved ahead of its records would hide them from the replay after a restart).

At shutdown `persist` spools what is still held; `replay_spool` commits the
spool of an earlier run at the next start. What neither the store nor the
spool could take is counted in `lost_records` and said on stderr, never
dropped silently. Only a `kill -9` loses what was held in memory, as before
this existed (what the store reported stored is never lost).

Spool files are pickles of the events (dataclasses), one file a piece, named
so that their names sort in the order they were written. They are read only
from the database's own directory, which only its owner should be able to
write.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import sqlite3
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from netconsole.collector._metrics import Counters
from netconsole.incidents import Output
from netconsole.records_json import event_to_json
from netconsole.store import (
    LaneHostCount,
    PrebuiltRecords,
    PrebuiltRow,
    RecordSink,
    Shed,
    StoreUnavailable,
)
from netconsole.stream import Duplicate, Gap, Incomplete, Reboot, Record, Rejected, Sender

Item = Output | PrebuiltRecords | Shed
States = Mapping[Sender, Mapping[str, Any]]

PIECE_RECORDS = 5000
"""Records a transaction at most when held records are written (the worker's
MAX_BATCH)."""
HOLD_IN_MEMORY = 20_000
"""Held records kept in memory (~1 KiB each); more are spilled to the spool."""
DRAIN_SECONDS = 0.5
"""Longest one flush spends writing held records, so that receiving goes on."""
FIRST_BACKOFF, MAX_BACKOFF = 0.2, 5.0
"""Seconds before the first retry of a failing store, and at most between two."""
QUARANTINE_MAX_BYTES = 64 << 20
"""The quarantine file stops growing here (set-aside events are still counted
and logged): a hostile sender must not fill the disk through it."""

# SQLite result codes (the low byte of an extended code) that say the store
# cannot write now, whatever the data: hold and retry, never set anything aside.
_STORE_CODES = frozenset({
    sqlite3.SQLITE_PERM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM,
    sqlite3.SQLITE_READONLY, sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOLFS, sqlite3.SQLITE_NOTADB,
})


def about_the_store(exc: BaseException) -> bool:
    """Whether a failed `apply` says the store cannot write (True) rather than
    that something in the batch cannot be stored (False).

    SQLite errors are judged by their result code; OSError and MemoryError
    (a sink on the network, a machine out of memory) are the store's. The rest
    -- OverflowError, TypeError, ValueError, IntegrityError, InterfaceError,
    a generic SQLite error -- are the data's: bisection finds out.
    """
    if isinstance(exc, StoreUnavailable):  # a server that cannot write now (ClickHouse)
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)
        return code is not None and (code & 0xFF) in _STORE_CODES
    return isinstance(exc, (OSError, MemoryError))


_STREAM_EVENTS = (Record, Gap, Duplicate, Reboot, Incomplete, Rejected)


def weight(items: Sequence[Item]) -> int:
    """What `items` weigh in memory: express rows and events, one each."""
    return sum(max(1, len(i.rows)) if isinstance(i, PrebuiltRecords) else 1 for i in items)


def records_in(items: Sequence[Item]) -> int:
    """Records in `items`, express rows included: what operators are told."""
    return sum(len(i.rows) if isinstance(i, PrebuiltRecords) else type(i) is Record
               for i in items)


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass(slots=True)
class Written:
    """What one `write` did: the pieces committed now (in order, each one
    transaction, set-aside events left out) and whether the states were saved
    (if not, they are due again)."""

    committed: list[list[Item]] = field(default_factory=list)
    states_saved: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Persisted:
    """What `persist` did with what was still held at shutdown."""

    spooled: int  # records now in the spool, for the next start
    lost: int  # records neither the store nor the spool could take
    spool: Path | None
    error: str | None  # why the spool could not take them


@dataclass(frozen=True, slots=True, kw_only=True)
class Replayed:
    """What `replay_spool` committed of an earlier run's spool."""

    records: int
    left: int  # records still spooled (the store failed again)
    quarantined: int
    error: str | None


class Backlog:
    """Held items in order: pieces kept in memory, or spilled to spool files.

    Each piece gets an increasing number when added, so that wherever a piece
    lives (memory or file) the oldest is taken first. When memory holds more
    than `memory_records`, the newest pieces in memory go to files; when the
    spool cannot take them either, the oldest pieces in memory are dropped and
    counted (`lost`): the newest records are the ones that tell what happened
    last.
    """

    def __init__(self, spool_dir: Path | None, *, memory_records: int = HOLD_IN_MEMORY,
                 piece: int = PIECE_RECORDS) -> None:
        self.spool_dir = spool_dir
        self.memory_records = memory_records
        self.piece = piece
        self._pieces: OrderedDict[int, list[Item] | Path] = OrderedDict()
        self._sizes: dict[int, tuple[int, int]] = {}  # key -> (weight, records)
        self._next = 0
        self._run = f"{time.time_ns():020d}-{os.getpid()}"  # names sort by start time
        self.in_memory = 0  # weight of the pieces in memory
        self.records = 0  # records held, in memory or spooled
        self.spooled = 0  # of which spooled
        self.lost = 0  # records dropped and not yet reported (the owner resets it)
        self.spool_error: str | None = None

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def add(self, items: list[Item]) -> None:
        """Hold `items` after everything held."""
        if not items:
            return
        w, r = weight(items), records_in(items)
        last = next(reversed(self._pieces), None)
        if last is not None:
            tail = self._pieces[last]
            tail_w, tail_r = self._sizes[last]
            if isinstance(tail, list) and tail_w + w <= self.piece:
                tail.extend(items)  # small batches make one piece: fewer files, fewer commits
                self._sizes[last] = (tail_w + w, tail_r + r)
                self.in_memory += w
                self.records += r
                self._bound()
                return
        self._hold(self._next, items, (w, r), last=True)
        self._next += 1
        self._bound()

    def take(self) -> tuple[int, list[Item]]:
        """(key, items): the oldest piece held; hand the key back to `put_back`
        with what of it was not stored."""
        while True:
            key, held = self._pieces.popitem(last=False)
            w, r = self._sizes.pop(key)
            self.records -= r
            if isinstance(held, list):
                self.in_memory -= w
                return key, held
            self.spooled -= r
            loaded = self._load(held, r)
            if loaded is not None:
                return key, loaded
            if not self._pieces:
                return key, []

    def put_back(self, key: int, items: list[Item]) -> None:
        """Hold `items` again before everything held: the rest of piece `key`,
        the last one taken."""
        if items:
            self._hold(key, items, (weight(items), records_in(items)), last=False)

    def spill_all(self) -> None:
        """Spool every piece held in memory (at shutdown); what the spool cannot
        take is dropped and counted in `lost`."""
        for key, held in list(self._pieces.items()):
            if isinstance(held, list) and not self._spill(key, held):
                self._drop(key)

    def _hold(self, key: int, items: list[Item], size: tuple[int, int], *, last: bool) -> None:
        self._pieces[key] = items
        self._pieces.move_to_end(key, last=last)
        self._sizes[key] = size
        self.in_memory += size[0]
        self.records += size[1]

    def _bound(self) -> None:
        if self.in_memory <= self.memory_records:
            return
        for key in reversed(list(self._pieces)):  # the newest go to disk
            held = self._pieces[key]
            if isinstance(held, list) and not self._spill(key, held):
                break
            if self.in_memory <= self.memory_records:
                return
        while self.in_memory > self.memory_records:
            oldest = next((k for k, h in self._pieces.items() if isinstance(h, list)), None)
            if oldest is None:
                break
            self._drop(oldest)

    def _drop(self, key: int) -> None:
        self._pieces.pop(key)
        w, r = self._sizes.pop(key)
        self.in_memory -= w
        self.records -= r
        self.lost += r

    def _spill(self, key: int, items: list[Item]) -> bool:
        if self.spool_dir is None:
            self.spool_error = "this store has no directory to spool in"
            return False
        w, r = self._sizes[key]
        path = self.spool_dir / f"{self._run}-{key:012d}-{r}.spool"
        try:
            data = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
            self.spool_dir.mkdir(mode=0o700, exist_ok=True)
            _write_whole(path, data)
        except (OSError, pickle.PicklingError) as exc:
            self.spool_error = f"{self.spool_dir}: {getattr(exc, 'strerror', None) or exc}"
            return False
        self.spool_error = None
        self._pieces[key] = path
        self.in_memory -= w
        self.spooled += r
        return True

    def _load(self, path: Path, records: int) -> list[Item] | None:
        try:
            items = _unpickle(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            self.lost += records
            self.spool_error = f"cannot read {path}: {exc}"
            return None
        with contextlib.suppress(OSError):
            path.unlink()
        return items


def _unpickle(data: bytes) -> list[Item]:
    """A spool file's events. One an older version spooled holds the express
    lane's rows and host counts as plain tuples (same order): made typed, so that
    an upgrade between a failure and its replay stores them."""
    items: list[Item] = pickle.loads(data)
    for i, item in enumerate(items):
        if isinstance(item, PrebuiltRecords) and (
                any(type(row) is tuple for row in item.rows)
                or any(isinstance(h, tuple) for h in item.hosts)):
            items[i] = PrebuiltRecords(
                [PrebuiltRow._make(r) if type(r) is tuple else r for r in item.rows],
                [_host_count(h) if isinstance(h, tuple) else h for h in item.hosts])
    return items


def _host_count(old: tuple[Any, ...]) -> LaneHostCount:
    sender, records, first, last, name, release = old
    return LaneHostCount(sender=sender, records=records, first_received=first,
                         last_received=last, name=name, release=release)


def _write_whole(path: Path, data: bytes) -> None:
    """Write a new file completely, or leave none (a full disk must not leave
    half a file for the next start to choke on)."""
    tmp = path.with_suffix(".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _say(message: str) -> None:
    print(f"netconsole listen: {message}", file=sys.stderr, flush=True)


def spool_dir_for(db: Path) -> Path:
    """Where the spool of database `db` lives."""
    return db.with_name(db.name + ".spool")


def quarantine_for(db: Path) -> Path:
    """Where events the store refused are kept (JSON lines)."""
    return db.with_name(db.name + ".quarantine.jsonl")


class BatchWriter:
    """A worker's way to its sink: bisects bad batches, holds through outages."""

    def __init__(self, sink: RecordSink, counters: Counters, *, db: Path | None,
                 memory_records: int = HOLD_IN_MEMORY, piece: int = PIECE_RECORDS,
                 clock: Callable[[], float] = time.monotonic,
                 say: Callable[[str], None] = _say) -> None:
        self.sink = sink
        self.counters = counters
        self.backlog = Backlog(spool_dir_for(db) if db is not None else None,
                               memory_records=memory_records, piece=piece)
        self.quarantine = quarantine_for(db) if db is not None else None
        self.piece = piece
        self._piece = piece
        self._clock = clock
        self._say = say
        self._retry_at: float | None = None
        self._backoff = FIRST_BACKOFF
        self._down: str | None = None  # the error of the outage going on, said once
        self._down_since = 0.0
        self._told: set[str] = set()  # senders whose set-aside event was logged

    @property
    def holding(self) -> bool:
        """Events are held: call `write` again (even with nothing new) to retry."""
        return bool(self.backlog)

    def write(self, events: list[Item], states: States | None = None, *,
              final: bool = False) -> Written:
        """Commit `events` (after anything held), with `states` if nothing stays held.

        `final`: at shutdown, try now whatever the backoff, and write all that
        the store takes.
        """
        backlog = self.backlog
        if not backlog and self._retry_at is None:
            # The common case: straight in, one transaction (bisected if the
            # data is bad), however many express rows it carries.
            done, rest, exc, saved = self._commit(events, states, None)
            if exc is not None:
                backlog.add(rest)
                self._failed(exc)
            return self._account(Written(done, saved))
        backlog.add(events)
        now = self._clock()
        if not final and self._retry_at is not None and now < self._retry_at:
            return self._account(Written())
        out = Written(states_saved=not states)
        stop = now + DRAIN_SECONDS
        while backlog:
            key, items = backlog.take()
            done, rest, exc, saved = self._commit(items, None if backlog else states,
                                                  self._piece)
            out.committed += done
            if exc is not None:
                backlog.put_back(key, rest)
                self._piece = max(1, self._piece // 2)  # a little space takes a little
                self._failed(exc)
                return self._account(out)
            self._piece = min(self.piece, self._piece * 2)
            out.states_saved = saved
            if backlog and not final and self._clock() >= stop:
                self._retry_at = self._clock()  # more at the next flush
                return self._account(Written(out.committed))
        self._recovered(out)
        return self._account(out)

    def persist(self) -> Persisted:
        """At shutdown, after a last `write(final=True)`: spool what is still
        held. `lost` counts the records lost now (`counters.lost_records` has
        the whole run's)."""
        backlog = self.backlog
        before = self.counters.lost_records
        backlog.spill_all()
        self._account(Written(), say=False)
        return Persisted(spooled=backlog.spooled, lost=self.counters.lost_records - before,
                         spool=backlog.spool_dir, error=backlog.spool_error)

    # -- commit, bisecting -----------------------------------------------------------

    def _commit(self, items: list[Item], states: States | None, limit: int | None
                ) -> tuple[list[list[Item]], list[Item], BaseException | None, bool]:
        """Commit `items` in order, in transactions of about `limit` records (None:
        one), each bad event set aside, `states` with the last piece. Returns (the pieces
        committed, the rest not committed, the store's error that stopped it
        or None, whether `states` were saved)."""
        done: list[list[Item]] = []
        todo = [items] if limit is None else _pieces(items, limit)[::-1]  # next piece last
        saved = not states
        while todo:
            piece = todo.pop()
            last = not todo
            started = time.perf_counter()
            try:
                self.sink.apply(piece, states if last else None)
            except Exception as exc:  # judged below: the receiver never dies on it
                self.counters.store_errors += 1
                if about_the_store(exc):
                    return done, [i for p in [piece, *reversed(todo)] for i in p], exc, saved
                halves = _halves(piece)
                if halves is not None:
                    todo += reversed(halves)
                elif piece:  # one bad event
                    self._set_aside(piece[0], exc)
                    if last and states:
                        todo.append([])  # the states, on their own
                else:  # only the states: they are due again later
                    self._say(f"stream states not saved: {_one_line(exc)}")
                continue
            self.counters.store_batches += 1
            self.counters.commit_took(time.perf_counter() - started)
            saved = saved or last
            if piece:
                done.append(piece)
        return done, [], None, saved

    def _set_aside(self, item: Item, exc: BaseException) -> None:
        self.counters.quarantined += 1
        if isinstance(item, PrebuiltRecords):
            who = (", ".join(f"{h.sender.host}:{h.sender.port}" for h in item.hosts)
                   or "express rows")
            hosts = [[str(getattr(h, f.name)) for f in fields(h)] for h in item.hosts]
            detail: Any = {"rows": item.rows, "hosts": hosts}
        else:
            who = f"{item.sender.host}:{item.sender.port}"
            detail = event_to_json(item) if isinstance(item, _STREAM_EVENTS) else repr(item)
        kept = self._keep(detail, exc)
        if who not in self._told:
            if len(self._told) > 10_000:
                self._told.clear()
            self._told.add(who)
            where = f"; kept in {self.quarantine}" if kept else ""
            self._say(f"set aside a {type(item).__name__} from {who} that the store refuses "
                      f"({_one_line(exc)}); the rest is stored{where}")

    def _keep(self, detail: Any, exc: BaseException) -> bool:
        path = self.quarantine
        if path is None:
            return False
        line = json.dumps({"at": time.time(), "error": _one_line(exc), "event": detail},
                          default=repr, ensure_ascii=False) + "\n"
        try:
            if path.exists() and path.stat().st_size + len(line) > QUARANTINE_MAX_BYTES:
                return False
            with path.open("a", encoding="utf-8") as f:
                f.write(line)
        except OSError:
            return False
        return True

    # -- outages ----------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> None:
        now = self._clock()
        if self._down is None:
            self._down_since = now
            self._down = _one_line(exc)
            self._say(f"the store cannot write ({exc}); holding records and retrying "
                      f"(at most {self.backlog.memory_records} in memory, more spooled in "
                      f"{self.backlog.spool_dir})")
            self._backoff = FIRST_BACKOFF
        self._retry_at = now + self._backoff
        self._backoff = min(MAX_BACKOFF, self._backoff * 2)

    def _recovered(self, out: Written) -> None:
        self._retry_at = None
        if self._down is not None:
            stored = sum(records_in(p) for p in out.committed)
            self._say(f"the store writes again after {self._clock() - self._down_since:.1f} s; "
                      f"stored the held records ({stored} in this last pass)")
            self._down = None
        self._backoff = FIRST_BACKOFF

    def _account(self, out: Written, *, say: bool = True) -> Written:
        c, backlog = self.counters, self.backlog
        c.held_records = backlog.records
        c.spooled_records = backlog.spooled
        if backlog.lost:
            c.lost_records += backlog.lost
            if say:
                self._say(f"lost {backlog.lost} records: the store cannot write ({self._down})"
                          f" and the spool cannot take them ({backlog.spool_error})")
            backlog.lost = 0
        return out


def _halves(piece: list[Item]) -> tuple[list[Item], list[Item]] | None:
    """`piece` in two, in order; None when it is one event that cannot be split."""
    if len(piece) > 1:
        half = len(piece) // 2
        return piece[:half], piece[half:]
    if len(piece) == 1 and isinstance(piece[0], PrebuiltRecords) and len(piece[0].rows) > 1:
        rows, half = piece[0].rows, len(piece[0].rows) // 2
        # The host counts go with the first half: one row set aside leaves them
        # one too high, rather than losing them all.
        return [PrebuiltRecords(rows[:half], piece[0].hosts)], [PrebuiltRecords(rows[half:])]
    return None


def spool_files(db: Path) -> list[Path]:
    """An earlier run's spool files of database `db`, oldest first."""
    directory = spool_dir_for(db)
    try:
        return sorted(directory.glob("*.spool"))
    except OSError:
        return []


def replay_spool(sink: RecordSink, db: Path) -> Replayed:
    """Commit the spool an earlier run left (`persist`), oldest first, in pieces,
    bisecting bad data as `BatchWriter` does. Each file is deleted once all of
    it is committed; when the store fails, what is left stays for the next start."""
    counters = Counters()
    writer = BatchWriter(sink, counters, db=db)
    stored = 0
    files = spool_files(db)
    for i, path in enumerate(files):
        try:
            items = _unpickle(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
            return Replayed(records=stored, left=sum(map(_records_named, files[i:])),
                            quarantined=counters.quarantined, error=f"cannot read {path}: {exc}")
        done, rest, failure, _ = writer._commit(items, None, PIECE_RECORDS)
        stored += sum(records_in(p) for p in done)
        if failure is not None:
            if len(rest) < len(items):  # keep only what is left, or the next start
                # stores some twice
                with contextlib.suppress(OSError, pickle.PicklingError):
                    _write_whole(path, pickle.dumps(rest, protocol=pickle.HIGHEST_PROTOCOL))
            left = records_in(rest) + sum(map(_records_named, files[i + 1:]))
            return Replayed(records=stored, left=left, quarantined=counters.quarantined,
                            error=_one_line(failure))
        path.unlink()
    return Replayed(records=stored, left=0, quarantined=counters.quarantined, error=None)


def _records_named(path: Path) -> int:
    """The records a spool file holds, from its name (`…-<records>.spool`)."""
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


def _pieces(items: list[Item], limit: int) -> list[list[Item]]:
    """`items` cut in order into pieces of about `limit` weight (one at least)."""
    if weight(items) <= limit:
        return [items]
    out: list[list[Item]] = []
    piece: list[Item] = []
    w = 0
    for item in items:
        piece.append(item)
        w += weight((item,))
        if w >= limit:
            out.append(piece)
            piece, w = [], 0
    if piece:
        out.append(piece)
    return out
