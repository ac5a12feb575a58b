"""Deterministic identities: the same host, record or event always gets the same key.

ClickHouse has no transactions nor autoincrement, and 18.16 no insert
deduplication token for plain MergeTree tables. So every row's key is computed
by the receiver from what the row stores, the same on every try:

* a host's id from its address, source port and local port (`host_id`): every
  receiver computes the same one without asking anyone;
* an event's ordinal `n` among the events of the same receive time, in arrival
  order (`Ordinals`): the order within one `recvmmsg` wake-up, which all share
  one time, and what makes two identical lines of one wake-up two records;
* a record's or event's `id`: a hash of host, time, ordinal and content.

An insert retried after an error (the server may have stored it before the
error reached us) then adds rows with keys already there, which the
ReplacingMergeTree folds and reads skip.
"""

from __future__ import annotations

import struct
from hashlib import blake2b

from netconsole.stream.events import Sender

ID_MASK = (1 << 63) - 1
"""Record, event and host ids stay below 2^63: a signed 64-bit integer holds
them (SQLite, JSON tools that read int64)."""
INCIDENT_MASK = (1 << 53) - 1
"""Incident ids are typed by people (`incidents show ID`) and read by browsers:
53 bits, exact in a JavaScript number; a fleet has far fewer incidents than
would make two collide."""

_PACK = struct.Struct("<QdI").pack


def _hash(data: bytes) -> int:
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little")


def host_id(sender: Sender) -> int:
    """The sender's id: a hash of (address, port, local port)."""
    key = f"{sender.host}\0{sender.port}\0{sender.local_port}".encode()
    return _hash(b"host\0" + key) & ID_MASK


def row_id(host: int, at: float, n: int, content: bytes) -> int:
    """A record's or event's id: host, time, ordinal and what it says."""
    return _hash(_PACK(host, at, n) + content) & ID_MASK


def incident_id(host: int, key: str) -> int:
    """An incident's id: its host and the detector's key (stable across updates)."""
    return _hash(b"incident\0" + host.to_bytes(8, "little") + key.encode("utf-8",
                                                                       "surrogateescape")
                 ) & INCIDENT_MASK


class Ordinals:
    """The next ordinal for each recent event time, with undo for a failed batch.

    `begin` before a batch, `take` for each event in order, then `commit` (the
    batch is stored) or `rollback` (it is not: its retry must get the same
    ordinals, so everything taken since `begin` is handed back). At most
    `keep` times are remembered, trimmed only at `commit`, so that a retry sees
    exactly the state of the first try.
    """

    def __init__(self, keep: int = 1 << 16) -> None:
        self.keep = keep
        self._next: dict[float, int] = {}
        self._undo: list[tuple[float, int | None]] = []

    def begin(self) -> None:
        self._undo = []

    def take(self, at: float) -> int:
        n = self._next.get(at)
        self._undo.append((at, n))
        self._next[at] = (n or 0) + 1
        return n or 0

    def rollback(self) -> None:
        for at, n in reversed(self._undo):
            if n is None:
                self._next.pop(at, None)
            else:
                self._next[at] = n
        self._undo = []

    def commit(self) -> None:
        self._undo = []
        extra = len(self._next) - self.keep
        if extra > 0:
            for at in list(self._next)[:extra]:  # the oldest first (insertion order)
                del self._next[at]
