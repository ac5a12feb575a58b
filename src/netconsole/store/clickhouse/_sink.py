"""The ClickHouse sink: each batch as a few `INSERT … FORMAT JSONEachRow`.

Theory of operation
-------------------
`apply` turns a batch of stream events into rows, in order -- records,
events (gaps, reboots, incomplete, shed, duplicates, rejected, silences),
incident updates, facts about hosts (exists, name, release, boot) and stream
states -- and inserts them table by table. There is no transaction: an
insert that fails part-way leaves some rows stored. What makes that harmless
is that every row's key is deterministic (`_ids`): the receiver's writer
(collector/_spool.py) holds a failed batch and retries it, in the same order,
and this sink gives the retry the very same rows -- the `Ordinals` it took
are handed back on failure, the caches it updates change only on success --
so the rows stored the first time are stored again under the same keys, and
the `ReplacingMergeTree` tables fold the copies (reads skip them until then).

Errors: a server that cannot take rows now raises `StoreUnavailable` (held
and retried: nothing lost); rows it refuses raise `ClickHouseRejected` and
values that cannot be stored at all `ValueError` (the writer bisects the batch
and sets the bad event aside). Durability: an insert that returned is on the
servers' disks (with a cluster, on every shard: `insert_distributed_sync`).

Hosts: a host's id is computed (`_ids.host_id`), so receivers agree on it
without asking each other. Its boot number, name and release are cached here
once read from the store; its counters are not kept anywhere but computed by
the reader from the rows themselves (a count of rows cannot be told twice).

Many receivers: a host's stream is accounted by the receiver that gets its
datagrams. When it moves (ECMP rehash, a receiver restart), the new receiver
finds it in the store (`known_senders`, refreshed while running) and resumes
its stream from the saved state plus the records stored after it
(`resume_stream`), so no gap or reboot is invented.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netconsole.incidents import Incident, IncidentEvent, Silence
from netconsole.store._codec import PrebuiltRow
from netconsole.store._columns import (
    INT64_MAX,
    STATE_BOOT,
    STATE_THROUGH,
    event_row,
    incident_columns,
    shed_row,
    silence_row,
)
from netconsole.store._errors import StoreError
from netconsole.store._model import (
    DEFAULT_SILENT_AFTER,
    PrebuiltRecords,
    Retention,
    RetentionResult,
    Shed,
)
from netconsole.store.clickhouse._client import Client
from netconsole.store.clickhouse._dialect import (
    DATA_TABLES,
    LOCAL_SUFFIX,
    SETTINGS_INSERT_CLUSTER,
    SETTINGS_PER_HOST,
    in_list,
    number,
    quote,
    table,
)
from netconsole.store.clickhouse._ids import Ordinals, host_id, incident_id, row_id
from netconsole.store.clickhouse._reader import (
    HOST_FACTS,
    SELECT_RECORDS,
    ClickHouseReader,
    row_to_stored,
)
from netconsole.store.clickhouse._schema import migrate, modernize
from netconsole.store.clickhouse._url import ClickHouseURL
from netconsole.stream.events import (
    Duplicate,
    Event,
    Gap,
    Incomplete,
    Reboot,
    Record,
    Rejected,
    Sender,
)

_HOSTNAME = b"hostname"

REFRESH_KNOWN = 2.0
"""Seconds between two reloads of the hosts the store knows, at most: a sender
new to this receiver may be one another receiver had (it moved here)."""

INCIDENT_CACHE = 10_000


def _s(value: bytes) -> str:
    """Bytes as a str that `json.dumps(ensure_ascii=False)` and then
    `encode("utf-8", "surrogateescape")` write back as the same bytes."""
    return value.decode("utf-8", "surrogateescape")


def _int(value: int | None, what: str) -> int | None:
    """A number the Int64 columns hold; a ValueError (the data's fault) if not."""
    if value is not None and not -INT64_MAX - 1 <= value <= INT64_MAX:
        raise ValueError(f"{what} {value} does not fit a signed 64-bit integer")
    return value


def _dumps(row: dict[str, Any]) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogateescape")


@dataclass(slots=True)
class _Host:
    """What this sink knows of a host: committed values only."""

    sender: Sender
    id: int
    boot: int = 0
    name: str | None = None
    release: str | None = None
    written: bool = False  # its `host` row is stored
    last: tuple[float, int] | None = None  # (received, n) of its newest record stored


@dataclass(slots=True)
class _Pending:
    """A host's values as the batch goes (committed to `_Host` after the inserts)."""

    host: _Host
    boot: int
    name: str | None
    release: str | None
    last: tuple[float, int] | None
    identity: bool = False  # its `host` row goes in this batch

    def newest(self, key: tuple[float, int]) -> None:
        """A record stored: the state's mark is the newest in (received, n) order
        (a reassembled record may come after newer ones)."""
        if self.last is None or key > self.last:
            self.last = key


@dataclass(slots=True)
class _Rows:
    hosts: list[bytes] = field(default_factory=list)
    records: list[bytes] = field(default_factory=list)
    events: list[bytes] = field(default_factory=list)
    incidents: list[bytes] = field(default_factory=list)
    states: list[bytes] = field(default_factory=list)
    merged: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)


class KnownSenders(set[Sender]):
    """The senders the store knows: loaded at start, and reloaded (at most every
    `REFRESH_KNOWN` seconds) when asked about one it does not have, which may be a
    host that another receiver had and that moved here."""

    def __init__(self, store: ClickHouseStore, senders: Iterable[Sender]) -> None:
        super().__init__(senders)
        self._store = store
        self._loaded = time.monotonic()
        self._taken: set[Sender] = set()  # discarded: resumed once already

    def __contains__(self, sender: object) -> bool:
        if set.__contains__(self, sender):
            return True
        if sender in self._taken or not isinstance(sender, Sender):
            return False
        if time.monotonic() - self._loaded >= REFRESH_KNOWN:
            self._loaded = time.monotonic()
            try:
                self.update(s for s in self._store.stored_senders() if s not in self._taken)
            except StoreError:
                return False  # the store unreachable: the stream starts afresh
        return set.__contains__(self, sender)

    def discard(self, sender: object) -> None:
        if isinstance(sender, Sender):
            self._taken.add(sender)
        super().discard(sender)


class ClickHouseStore:
    """The ClickHouse sink (and, through `reader`, its queries).

    Open it with `open_clickhouse_store()`. Not thread-safe: one thread calls
    `apply`, `reserve_host`, `resume_stream`, `enforce_retention` and `close`.
    """

    def __init__(self, client: Client, url: ClickHouseURL, *,
                 retention: Retention | None = None,
                 silent_after: float = DEFAULT_SILENT_AFTER) -> None:
        self.client = client
        self.url = url
        self.path: Path | None = url.spool_base
        """Not a database file: what the receiver names its spool after."""
        with contextlib.suppress(OSError):  # else the spool says why it cannot spill
            url.spool_base.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention or Retention()
        self.silent_after = silent_after
        self._db = url.database
        self._insert_settings = SETTINGS_INSERT_CLUSTER if url.cluster else {}
        self._ordinals = Ordinals()
        self._hosts: dict[Sender, _Host] = {}
        self._by_id: dict[int, _Host] = {}
        self._incidents: OrderedDict[tuple[int, str], dict[str, Any]] = OrderedDict()
        self._reader: ClickHouseReader | None = None

    def _table(self, name: str) -> str:
        return table(self._db, name)

    # -- hosts ------------------------------------------------------------------------

    def _load(self, senders: Sequence[Sender] = (), ids: Sequence[int] = ()) -> None:
        """Read what the store has of hosts this sink has not cached (one query):
        by sender, or by id alone (express rows an earlier run spooled: their
        hosts' `host` rows were written by `reserve_host`)."""
        new = {host_id(s): s for s in senders if s not in self._hosts}
        unknown = {i for i in ids if i not in self._by_id and i not in new}
        if not new and not unknown:
            return
        found = {row[0]: row for row in self.client.select(
            f"SELECT host_id, {HOST_FACTS}, any(address), any(port), any(local_port)"
            f" FROM {self._table('hosts')} WHERE {in_list('host_id', [*new, *unknown])}"
            " GROUP BY host_id", settings=SETTINGS_PER_HOST)}
        for hid in unknown:
            row = found.get(hid)
            if row is not None:
                new[hid] = Sender(host=row[7], port=int(row[8]), local_port=int(row[9]))
        for hid, sender in new.items():
            host = _Host(sender=sender, id=hid)
            row = found.get(hid)
            if row is not None:
                _, name, has_name, release, has_release, boot, exists, *_ = row
                host.name = name if has_name else None
                host.release = release if has_release else None
                host.boot = int(boot)
                host.written = bool(exists)
            self._hosts[sender] = self._by_id[hid] = host

    def committed_host(self, sender: Sender) -> tuple[int, int] | None:
        """(host id, boot) of `sender` as this sink has stored it, or None."""
        host = self._hosts.get(sender)
        return (host.id, host.boot) if host is not None and host.written else None

    def reserve_host(self, sender: Sender) -> tuple[int, int] | None:
        """(host id, committed boot) of `sender`, its `host` row written now if the
        store has none, so that the express lane can build rows for it at once:
        its id needs nobody, its boot is read from the store the first time.
        None when the store cannot answer or write now."""
        host = self._hosts.get(sender)
        try:
            if host is None:
                self._load([sender])
                host = self._hosts[sender]
            if not host.written:
                self.client.insert(self._table("hosts"), self._fact(host, "host", "", 0.0, 0),
                                   settings=self._insert_settings)
                host.written = True
        except StoreError:
            return None
        return host.id, host.boot

    def stored_senders(self) -> set[Sender]:
        """Every sender with a `host` row in the store."""
        return {Sender(host=a, port=int(p), local_port=int(lp)) for a, p, lp in
                self.client.select(
                    f"SELECT DISTINCT address, port, local_port FROM {self._table('hosts')}"
                    " WHERE kind = 'host'")}

    def known_senders(self) -> set[Sender]:
        """The senders the store knows (streams to resume), kept current: see
        `KnownSenders`."""
        return KnownSenders(self, self.stored_senders())

    # -- the batch ----------------------------------------------------------------------

    def apply(
        self,
        events: Sequence[Event | IncidentEvent | PrebuiltRecords | Shed],
        states: Mapping[Sender, Mapping[str, Any]] | None = None,
    ) -> None:
        """Store a batch of stream events, and optionally stream states.

        Rows go in as the SQLite store's do (store/_writer.py `apply`): records
        in order, a `Reboot` bumps the boot of the records after it, incidents
        are merged into their earlier versions by key. Counters are not written:
        the reader counts rows.

        Raises:
            StoreUnavailable: the servers cannot take it now (retry: the same
                rows come again, and copies of what was stored fold).
            ClickHouseRejected, ValueError, TypeError: something in the batch
                cannot be stored.
        """
        if not events and not states:
            return
        senders = [e.sender for e in events if not isinstance(e, PrebuiltRecords)]
        ids: set[int] = set()
        for e in events:
            if isinstance(e, PrebuiltRecords):
                senders += [h.sender for h in e.hosts]
                ids.update(row.host_id for row in e.rows)
        if states:
            senders += list(states)
        self._load(senders, [i for i in ids if i not in self._by_id])
        missing = [i for i in ids if i not in self._by_id]
        if missing:  # the data's fault: set aside, never retried forever
            raise ValueError(f"express rows of unknown host ids {missing[:3]}")
        self._ordinals.begin()
        try:
            pending: dict[Sender, _Pending] = {}
            rows = self._rows(events, pending)
            if states:
                self._state_rows(states, pending, rows)
            for name in ("hosts", "records", "events", "incidents", "states"):
                body: list[bytes] = getattr(rows, name)
                if body:
                    self.client.insert(self._table(name), b"\n".join(body),
                                       settings=self._insert_settings)
        except BaseException:
            self._ordinals.rollback()
            raise
        self._ordinals.commit()
        for p in pending.values():
            host = p.host
            host.boot, host.name, host.release = p.boot, p.name, p.release
            host.last = p.last
            host.written = True
        for key, merged in rows.merged.items():
            self._incidents[key] = merged
            self._incidents.move_to_end(key)
        while len(self._incidents) > INCIDENT_CACHE:
            self._incidents.popitem(last=False)

    def _pending(self, sender: Sender, pending: dict[Sender, _Pending], rows: _Rows) -> _Pending:
        p = pending.get(sender)
        if p is None:
            host = self._hosts[sender]
            p = pending[sender] = _Pending(host=host, boot=host.boot, name=host.name,
                                           release=host.release, last=host.last)
            if not host.written:
                p.identity = True
                rows.hosts.append(self._fact(host, "host", "", 0.0, 0))
        return p

    def _fact(self, host: _Host, kind: str, value: str, at: float, n: int) -> bytes:
        s = host.sender
        return _dumps({"host_id": host.id, "address": s.host, "port": s.port,
                       "local_port": s.local_port, "kind": kind, "value": value, "at": at,
                       "n": n})

    def _facts(self, p: _Pending, name: str | None, release: str | None, at: float, n: int,
               rows: _Rows) -> None:
        if name is not None and name != p.name:
            p.name = name
            rows.hosts.append(self._fact(p.host, "name", name, at, n))
        if release is not None and release != p.release:
            p.release = release
            rows.hosts.append(self._fact(p.host, "release", release, at, n))

    def _rows(self, events: Sequence[Event | IncidentEvent | PrebuiltRecords | Shed],
              pending: dict[Sender, _Pending]) -> _Rows:
        rows = _Rows()
        stored = int(time.time() * 1e6)
        take = self._ordinals.take
        ids: dict[tuple[int, Any, Any], int] = {}  # (host, seq, received) -> record id
        for event in events:
            if type(event) is PrebuiltRecords:
                for row in event.rows:
                    host = self._by_id[row.host_id]
                    p = self._pending(host.sender, pending, rows)
                    n = take(row.received)
                    rows.records.append(self._prebuilt(row, n, stored))
                    p.newest((row.received, n))
                for counted in event.hosts:
                    p = self._pending(counted.sender, pending, rows)
                    name, last = counted.name, counted.last_received
                    self._facts(p, name.decode("utf-8", "replace") if name is not None
                                else None, counted.release, last, take(last), rows)
                continue
            assert not isinstance(event, PrebuiltRecords)
            p = self._pending(event.sender, pending, rows)
            if isinstance(event, Record):
                n = take(event.received)
                rid, line = self._record(event, p, n, stored)
                rows.records.append(line)
                ids[(p.host.id, event.seq, event.received)] = rid
                p.newest((event.received, n))
                hostname = event.field(_HOSTNAME)
                self._facts(p, hostname.decode("utf-8", "replace") if hostname is not None
                            else None, event.kernel_release, event.received, n, rows)
            elif isinstance(event, Incident):
                self._incident(event, p, take(event.at), ids, rows)
            elif isinstance(event, Silence):
                at, kind, detail = silence_row(event)
                rows.events.append(self._event(p, at, take(at), kind, "", 0, detail))
            elif isinstance(event, Gap | Reboot | Incomplete):
                at, kind, detail = event_row(event)
                n = take(at)
                sub, count = "", 0
                if isinstance(event, Gap):
                    sub, count = event.kind.value, event.count
                elif isinstance(event, Reboot):
                    p.boot += 1
                    rows.hosts.append(self._fact(p.host, "boot", str(p.boot), at, n))
                rows.events.append(self._event(p, at, n, kind, sub, count, detail))
            elif isinstance(event, Shed):
                at, kind, detail = shed_row(event)
                rows.events.append(self._event(p, at, take(at), kind, "", event.count, detail))
            elif isinstance(event, Duplicate):
                rows.events.append(self._event(p, event.at, take(event.at), "duplicate", "",
                                               1, str(event.seq)))
            elif isinstance(event, Rejected):
                rows.events.append(self._event(p, event.at, take(event.at), "rejected",
                                               event.reason.value, 1, event.detail))
            else:  # pragma: no cover - the union is closed
                raise TypeError(f"not a stream event: {event!r}")
        return rows

    def _record(self, r: Record, p: _Pending, n: int, stored: int) -> tuple[int, bytes]:
        hid = p.host.id
        text = r.text
        rid = row_id(hid, r.received, n, str(r.seq).encode() + b"\0" + text)
        return rid, _dumps({
            "host_id": hid, "received": r.received, "n": n, "id": rid, "boot": p.boot,
            "stored": stored, "mode": r.mode._value_, "release": r.release,
            "facility": _int(r.facility, "facility"), "level": _int(r.level, "level"),
            "seq": _int(r.seq, "seq"), "ts_usec": _int(r.ts_usec, "ts_usec"),
            "flag": r.flag._value_, "caller": r.caller, "text": _s(text),
            "fields.key": [_s(k) for k, _ in r.fields],
            "fields.value": [_s(v) for _, v in r.fields],
            "header_extra": json.dumps(r.header_extra) if r.header_extra else None,
            "msgid": r.msgid, "cpu": r.cpu, "taskname": r.taskname,
            "complete": int(r.complete),
            "missing": json.dumps(r.missing) if r.missing else None,
        })

    @staticmethod
    def _prebuilt(row: PrebuiltRow, n: int, stored: int) -> bytes:
        """A row of the C express lane (`PrebuiltRow`: '' and -1 stand for None)
        as a records row."""
        pairs = json.loads(row.fields) if row.fields else []
        rid = row_id(row.host_id, row.received, n,
                     str(row.seq).encode() + b"\0" + row.text.encode())
        return _dumps({
            "host_id": row.host_id, "received": row.received, "n": n, "id": rid,
            "boot": row.boot, "stored": stored, "mode": row.mode,
            "release": row.release or None, "facility": row.facility, "level": row.level,
            "seq": row.seq, "ts_usec": row.ts_usec, "flag": row.flag,
            "caller": row.caller or None, "text": row.text,
            "fields.key": [k for k, _ in pairs], "fields.value": [v for _, v in pairs],
            "header_extra": None, "msgid": None if row.msgid == -1 else row.msgid,
            "cpu": None if row.cpu == -1 else row.cpu, "taskname": row.taskname or None,
            "complete": 1, "missing": None,
        })

    def _event(self, p: _Pending, at: float, n: int, kind: str, sub: str, count: int,
               detail: str) -> bytes:
        hid = p.host.id
        content = f"{kind}\0{sub}\0{count}\0{detail}".encode("utf-8", "surrogateescape")
        return _dumps({"host_id": hid, "at": at, "n": n, "id": row_id(hid, at, n, content),
                       "kind": kind, "sub": sub, "count": count, "detail": detail})

    # -- incidents ----------------------------------------------------------------------

    def _previous(self, hid: int, key: str, rows: _Rows) -> dict[str, Any] | None:
        """The incident as last stored (this batch's own updates first)."""
        merged = rows.merged.get((hid, key))
        if merged is not None:
            return merged
        cached = self._incidents.get((hid, key))
        if cached is not None:
            return cached
        found = self.client.select(
            f"SELECT {', '.join(_KEPT)} FROM {self._table('incidents')}"
            f" WHERE host_id = {hid} AND key = {quote(key)} ORDER BY at DESC, n DESC LIMIT 1")
        return dict(zip(_KEPT, found[0], strict=True)) if found else None

    def _incident(self, event: Incident, p: _Pending, n: int,
                  ids: dict[tuple[int, Any, Any], int], rows: _Rows) -> None:
        """One incident update, merged as the SQLite upsert does (`_UPSERT_INCIDENT`):
        what the first version set stays, some values are kept when the new ones
        are unknown."""
        hid = p.host.id
        params = incident_columns(event)
        row = {k: v for k, v in params.items() if k != "updated_at"}
        row.update({
            "host_id": hid, "id": incident_id(hid, event.key), "at": params["updated_at"],
            "n": n, "opened_at": params["updated_at"], "opened_n": n,
            "boot": max(0, p.boot - params["previous_boot"]),
            "first_record_id": ids.get((hid, params["first_seq"], params["first_received"])),
            "last_record_id": ids.get((hid, params["last_seq"], params["last_received"])),
        })
        old = self._previous(hid, event.key, rows)
        if old is not None:
            for kept in ("opened_at", "opened_n", "boot", "first_seq", "first_received",
                         "first_ts_usec", "first_record_id", "previous_boot"):
                row[kept] = old[kept]
            for coalesced in ("release", "last_record_id", "task"):
                if row[coalesced] is None:
                    row[coalesced] = old[coalesced]
            if old["closed_at"] is not None:
                row["closed_at"] = old["closed_at"]
        rows.merged[(hid, event.key)] = {k: row[k] for k in _KEPT}
        rows.incidents.append(_dumps(row))

    # -- stream states ------------------------------------------------------------------

    def _state_rows(self, states: Mapping[Sender, Mapping[str, Any]],
                    pending: dict[Sender, _Pending], rows: _Rows) -> None:
        saved = time.time()
        for sender, state in states.items():
            p = self._pending(sender, pending, rows)
            if p.last is None:
                p.last = self._newest(p.host.id, p.boot)
            clean = {k: v for k, v in state.items() if k not in (STATE_THROUGH, STATE_BOOT)}
            through = p.last or (0.0, 0)
            rows.states.append(_dumps({
                "host_id": p.host.id, "saved": saved, "version": int(saved * 1e6),
                "state": json.dumps(clean, separators=(",", ":")),
                "through_received": through[0], "through_n": through[1], "boot": p.boot}))

    def _newest(self, hid: int, boot: int) -> tuple[float, int] | None:
        """(received, n) of the host's newest record of this boot in the store."""
        found = self.client.select(
            f"SELECT received, n FROM {self._table('records')} WHERE host_id = {hid}"
            f" AND boot = {boot} ORDER BY received DESC, n DESC LIMIT 1")
        return (float(found[0][0]), int(found[0][1])) if found else None

    def save_stream_states(self, states: Mapping[Sender, Mapping[str, Any]]) -> None:
        """Save each sender's opaque stream state (its `snapshot()`)."""
        self.apply((), states)

    def load_stream_states(self) -> dict[Sender, dict[str, Any]]:
        """The newest saved state of every sender."""
        senders = {host_id(s): s for s in self.stored_senders()}
        out: dict[Sender, dict[str, Any]] = {}
        for hid, state in self.client.select(
                f"SELECT host_id, argMax(state, version) FROM {self._table('states')}"
                " GROUP BY host_id", settings=SETTINGS_PER_HOST):
            if hid in senders:
                out[senders[hid]] = json.loads(state)
        return out

    def resume_stream(self, sender: Sender) -> tuple[dict[str, Any], list[Record]]:
        """The starting point for `sender` on this receiver (after a restart, or
        when it moved here from another): its newest saved state and the
        records stored after it, to replay onto it (`StreamTable.restore`).

        A state saved in an earlier boot than the host's current one is
        dropped and the whole current boot replayed; so is a host without one.
        When the store cannot answer now, the stream starts afresh (it is
        called on a sender's first datagram: the receiver must go on).
        """
        try:
            return self._resume(sender)
        except StoreError:
            return {}, []

    def _resume(self, sender: Sender) -> tuple[dict[str, Any], list[Record]]:
        self._load([sender])
        host = self._hosts[sender]
        found = self.client.select(
            f"SELECT argMax(state, version), argMax(through_received, version),"
            f" argMax(through_n, version), argMax(boot, version), count()"
            f" FROM {self._table('states')} WHERE host_id = {host.id}")
        state: dict[str, Any] = {}
        through: tuple[float, int] = (0.0, 0)
        if found and found[0][4]:
            text, received, n, boot, _ = found[0]
            if int(boot) == host.boot:
                state, through = json.loads(text), (float(received), int(n))
        rows = self.client.select(
            f"SELECT {SELECT_RECORDS} FROM {self._table('records')} WHERE host_id = {host.id}"
            f" AND boot = {host.boot} AND received >= {number(through[0])}"
            f" AND (received, n) > ({number(through[0])}, {through[1]})"
            " ORDER BY received, n, id LIMIT 1 BY id")
        newest = self._newest(host.id, host.boot)
        host.last = newest if newest is not None else (through if state else None)
        return state, [row_to_stored(r, sender, None).record for r in rows]

    # -- retention ----------------------------------------------------------------------

    def _parts(self) -> list[tuple[Any, str, str, int, int]]:
        """(node, table, partition, rows, bytes) of every data partition on every server."""
        suffix = LOCAL_SUFFIX if self.url.cluster else ""
        names = ", ".join(quote(t + suffix) for t in DATA_TABLES)
        out = []
        for node in self.url.nodes:
            for name, partition, rows, size in self.client.select(
                    "SELECT table, partition, sum(rows), sum(bytes_on_disk) FROM system.parts"
                    f" WHERE database = {quote(self._db)} AND active AND table IN ({names})"
                    " GROUP BY table, partition", node=node):
                out.append((node, name, partition, int(rows), int(size)))
        return out

    def used_bytes(self) -> int:
        """Bytes of the data tables on disk, all servers together."""
        return sum(p[4] for p in self._parts())

    def enforce_retention(self, now: float) -> RetentionResult:
        """Drop the day partitions the policy no longer keeps, on every server.

        By age: the days that end before `now - max_age` (whole days: up to a
        day more than the policy is kept). By size: the oldest days until the
        data tables fit `max_bytes` (today's is never dropped).
        """
        policy = self.retention
        if policy.max_age is None and policy.max_bytes is None:
            return RetentionResult(records=0, events=0)
        parts = self._parts()
        days = sorted({int(p[2]) for p in parts})
        drop: set[int] = set()
        if policy.max_age is not None:
            cutoff = int(datetime.fromtimestamp(now - policy.max_age, UTC).strftime("%Y%m%d"))
            drop |= {d for d in days if d < cutoff}
        if policy.max_bytes is not None:
            today = int(datetime.fromtimestamp(now, UTC).strftime("%Y%m%d"))
            size = {d: sum(p[4] for p in parts if int(p[2]) == d) for d in days}
            used = sum(size.values()) - sum(size[d] for d in drop)
            for d in days:
                if used <= policy.max_bytes or d >= today:
                    break
                if d not in drop:
                    drop.add(d)
                    used -= size[d]
        records = events = 0
        for node, name, partition, count, _ in parts:
            if int(partition) not in drop:
                continue
            self.client.execute(f"ALTER TABLE {self._table(name)} DROP PARTITION {partition}",
                                node=node)
            if name.startswith("records"):
                records += count
            elif name.startswith("events"):
                events += count
        return RetentionResult(records=records, events=events)

    # -- lifetime -----------------------------------------------------------------------

    @property
    def reader(self) -> ClickHouseReader:
        if self._reader is None:
            self._reader = ClickHouseReader(self.client, self.url, silent_after=self.silent_after)
        return self._reader

    def close(self) -> None:
        """Nothing to flush: every `apply` that returned is stored."""
        self.client.close()

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_KEPT = ("opened_at", "opened_n", "boot", "first_seq", "first_received", "first_ts_usec",
         "first_record_id", "previous_boot", "release", "last_record_id", "task", "closed_at")
"""The incident columns a later update keeps or falls back to (`_incident`)."""


def open_clickhouse_store(
    url: ClickHouseURL, *, retention: Retention | None = None,
    silent_after: float = DEFAULT_SILENT_AFTER,
) -> ClickHouseStore:
    """Connect, create or migrate the schema on every listed server, and return the sink.

    Raises:
        StoreError: the schema is newer, or the cluster is not what the URL
            says; StoreUnavailable: a server cannot be reached.
    """
    client = Client(url)
    try:
        migrate(client, url)
        if url.modern:
            modernize(client, url, retain=(retention or Retention()).max_age)
    except BaseException:
        client.close()
        raise
    return ClickHouseStore(client, url, retention=retention, silent_after=silent_after)
