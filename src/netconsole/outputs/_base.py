"""What every output gets and gives: committed batches in, counters out.

The receiver hands each output the records of a batch only after the store
committed it (collector/_worker.py `_show_committed`), so what an output
shows was stored. An output must never block the receiver: the syslog
forwarder queues and sends from a thread of its own; the files writer
appends to local files and counts what fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from netconsole.store import Shed
from netconsole.stream import Gap, Reboot, Record, Sender


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivered:
    """A stored record and the store's boot number of its host (None: unknown)."""

    record: Record
    boot: int | None


Entry = Delivered | Gap | Reboot | Shed
"""What a batch holds for the outputs: records, and the loss and reboot marks."""


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """One committed batch, in the order the store took it."""

    entries: tuple[Entry, ...]


@dataclass(slots=True)
class OutputStats:
    """An output's counters since it started (`queued` is a gauge)."""

    sent: int = 0  # records handed on (a syslog message sent, a file line written)
    dropped: int = 0  # records it gave up on: queue full, no server at shutdown, disk error
    reconnects: int = 0  # TCP connections made again after one broke or failed
    replayed: int = 0  # records sent again after a connection broke (at-least-once)
    queued: int = 0  # records waiting in its queue now


class Output(Protocol):
    """A place committed records go besides the store."""

    name: str
    """The label of its metrics: the `--forward` URL, or `files`."""

    def deliver(self, batch: CommittedBatch) -> None:
        """Take a committed batch; never blocks for long, never raises."""
        ...

    def reopen(self) -> None:
        """SIGHUP: reopen what was opened (files moved away by logrotate)."""
        ...

    def close(self) -> None:
        """Flush what can be flushed within a bounded time, then release everything."""
        ...

    def stats(self) -> OutputStats:
        """The counters now."""
        ...


def committed_batch(events: Sequence[object],
                    host_of_sender: Callable[[Sender], tuple[int, int] | None],
                    ) -> CommittedBatch:
    """The entries of one committed batch of store events, each record with its boot.

    `host_of_sender` gives a sender's (host id, boot number) as now committed
    (`RecordSink.committed_host`), which counts the reboots in this batch: a
    record's boot is that minus the sender's reboots after it in the batch.
    (A batch the writer split into pieces is delivered piece by piece after
    all were committed, so a reboot in a later piece numbers the records of
    an earlier piece one boot high; pieces are 5,000 events, and this needs
    a reboot within a burst that long.)
    """
    entries: list[Entry] = []
    later: dict[Sender, int] = {}
    known: dict[Sender, int | None] = {}
    for e in reversed(events):
        kind = type(e)
        if kind is Record:
            assert isinstance(e, Record)
            sender = e.sender
            if sender not in known:
                host = host_of_sender(sender)
                known[sender] = host[1] if host is not None else None
            boot = known[sender]
            entries.append(Delivered(record=e, boot=None if boot is None
                                     else max(0, boot - later.get(sender, 0))))
        elif kind is Reboot:
            assert isinstance(e, Reboot)
            later[e.sender] = later.get(e.sender, 0) + 1
            entries.append(e)
        elif kind is Gap or kind is Shed:
            assert isinstance(e, (Gap, Shed))
            entries.append(e)
    entries.reverse()
    return CommittedBatch(tuple(entries))


def host_of(record: Record) -> str:
    """The name a record's host goes by: its `hostname=` userdata, else its address."""
    claimed = record.field(b"hostname")
    if claimed:
        return claimed.decode("utf-8", "replace")
    return record.sender.host
