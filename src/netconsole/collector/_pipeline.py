"""A receiver's sans-IO core: datagrams in, store batches and deadlines out.

Theory of operation
-------------------
`Pipeline` owns everything a receiver decides about what it received: the
StreamTable, the IncidentTable, the per-sender budgets (collector/_budget.py),
the allow list, the express lane's bookkeeping (collector/_express.py), the
events waiting for the next store batch and which senders' stream states are
due to be saved. It opens no socket, reads no clock and writes nothing to the
store: `Worker` (collector/_worker.py) receives, passes `now` in and writes the
batches, as aioquic's asyncio adapter does around its QUIC connection.

What drives it:

* datagrams: `feed_datagram` (the Python path), or with the express lane the
  items of `Receiver.step` -- `feed_rows` for the store rows C built,
  `feed_handed_out` for a datagram C left to Python -- then `after_receive`
  once per socket and wake-up (with the lane's `LaneReport`);
* timers: `expire(now)` whenever the receiver wakes, at the latest at
  `next_deadline()`; it also moves the stream events the Python path fed since
  the last call into the batch (one incident pass per wake-up, not per datagram);
* batches: `take_batch` gives the events (and the due stream states) to
  commit, `after_write` says what the commit did; `close` ends the input
  before the last `take_batch(final=True)`.

Order: events go into the batch in the order they were made, so a record, the
incident it starts and a later reboot keep their order in the store, and a
sender's rows built by C come before its later records taken by Python.

One exception to "no store I/O": the express lane's `settle` reserves a new
host's row through the sink it was made with (`Express`, `RecordSink.reserve_host`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netconsole.collector._budget import Budgets
from netconsole.collector._express import Express
from netconsole.collector._metrics import Counters
from netconsole.incidents import DetectorConfig, IncidentTable
from netconsole.incidents._patterns import TRIGGER_BYTES
from netconsole.store import PrebuiltRecords, PrebuiltRow, RecordSink, Shed
from netconsole.stream import Sender, StreamTable
from netconsole.stream._table import Resume

if TYPE_CHECKING:
    from netconsole.collector._lane import Lane
    from netconsole.collector._spool import Item

STATE_EVERY = 30.0
"""A sender's stream state is saved at most this long after it changed (and at
shutdown), not with every batch: saving 100,000 states a second cost a fifth of
the receiver's time. A restart after `kill -9` replays the records stored since
(SQLiteStore.resume_stream), so no gap or reboot is invented."""

BURST_SECONDS = 1.0
"""A sender's budget (`sender_budget` records/s) saves up to this many seconds' worth."""

MAX_BATCH = 20_000
"""Events in one transaction at most (a run of the lane's rows counts as its
rows): a burst is written in several."""

LOADED_BATCH = 2000
"""Records pending when the batch interval is up that say the receiver is loaded
(20,000 a second at the default interval): the batch then fills for up to
`LOADED_WAIT`. A commit's fixed cost -- a hosts row update and a records index
page per sender -- is spread over more records: at 1,000 senders and 60,000
records/s, fixed 0.25 s batches cost 15 % less a record than 0.1 s ones
(bench/mix.py). Quiet traffic keeps the configured latency."""

LOADED_WAIT = 0.25
"""How long a loaded batch may fill, from its start."""

TOOK_EVERY = 0.2
"""Seconds between two bookings of what the express lanes took (their detectors'
counts, their streams' forward gaps, their states marked for saving), at most.
A wake-up's records come from as many lanes as records at 1,000 senders, and
booking each lane at every 2 ms wake-up cost about a microsecond a record; at
every 50 ms, a booking per 3.5 records at 35,000 records/s. A lane stays on
C's `touched` list until booked, so it is booked once per round; anything that
needs a detector or stream current books first, and what waits here is
measured in seconds (a hole's REORDER_WAIT, a host's silence)."""

MAX_ALLOWED_CACHED = 100_000
"""Hosts whose allow-list answer is remembered; past that the cache starts over."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneReport:
    """What one C receiver (`_lane.Receiver`) says after a wake-up's receive."""

    shedding: list[Lane]
    """Lanes that shed records since the last report (`Receiver.shedding`):
    each one's `shed` is the count, reset here."""
    touched: list[Lane]
    """Lanes that took records since the last report (`Receiver.touched`):
    each one's `fresh` is the count for its incident detector."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """One store transaction's worth, for `BatchWriter.write`."""

    events: list[Item]
    """In order: stream events with their incident events, the C lane's rows and
    host counts, open reports' snapshots, then one Shed per sender that lost some."""
    states: dict[Sender, dict[str, Any]]
    """Stream snapshots due to be saved (empty while the store holds records:
    saved ahead of their records, they would hide those from the replay)."""


class Pipeline:
    """A receiver's streams, incidents and pending batch (see the module docstring).

    Args:
        counters: the worker's counters; the pipeline counts what it rejects
            (`rejected`) and sheds (`shed`).
        sender_budget: records a second a sender may average while the
            receiver is behind (0: no budgets).
        silent_after: seconds of quiet after which a chatty host is silent.
        resume: asked once per sender the table does not hold: a restarted
            receiver's saved state and the records stored since, or None
            (`StreamTable.resume`).
    """

    def __init__(self, *, counters: Counters, sender_budget: float, silent_after: float,
                 resume: Resume | None = None) -> None:
        self.counters = counters
        self.table = StreamTable(resume=resume)
        self.incidents = IncidentTable(DetectorConfig(quiet_after=silent_after))
        self.budgets = Budgets(sender_budget, sender_budget * BURST_SECONDS)
        # The C express lane's side of the bookkeeping, when the worker has one.
        self.express: Express | None = None
        self._allow: list[Network] = []
        self._allowed: dict[str, bool] = {}  # host -> allowed, as found
        self._pending: list[Item] = []
        self._rows = 0  # the lane's rows among them
        # Lanes that took records since the last booking (`TOOK_EVERY`), and when that was.
        self._touched: list[Lane] = []
        self._booked = 0.0
        # Datagrams shed per sender since the last batch (collector/_budget.py).
        self._shed: dict[Sender, int] = {}
        # Senders whose state changed since it was saved, with when it first did
        # (insertion order is that order, so the due ones are at the front).
        self._dirty: dict[Sender, float] = {}

    # -- configuration -----------------------------------------------------------------

    def open_express(self, sink: RecordSink) -> Express:
        """Keep the express lane's books: its C receivers (`Express.receiver`)
        share this pipeline's streams, detectors and budgets; `sink` gives new
        hosts their rows."""
        express = self.express = Express(self.table, self.incidents, sink)
        self.table.before_evict = express.sync_all
        self.table.evicted = express.drop
        return express

    def set_allow(self, networks: list[Network]) -> None:
        """Take datagrams only from `networks` (empty: from anyone)."""
        if self.express is not None:
            self.express.drop_all()  # a lane must not go on for a host no longer allowed
        self._allow = networks
        self._allowed = {}

    def set_budget(self, sender_budget: float) -> None:
        """Budgets start over at `sender_budget` records a second, in C too; the
        same rate as now (a SIGHUP that changed something else) changes nothing:
        a noisy sender keeps its empty bucket."""
        if sender_budget == self.budgets.rate:
            return
        self.budgets = Budgets(sender_budget, sender_budget * BURST_SECONDS)
        if self.express is not None:
            self.express.budget(self.budgets)

    # -- datagrams ---------------------------------------------------------------------

    def feed_datagram(self, payload: bytes, host: str, port: int, truncated: bool,
                      local_port: int, now: float, behind: bool) -> Sender | None:
        """One datagram through the Python path.

        Its stream events wait in the table for `expire` (or, with the express
        lane, `feed_handed_out`) to take them.

        Args:
            truncated: it was longer than the receive buffer (rejected).
            local_port: the port it arrived on (part of the Sender).
            behind: the receiver is behind, so budgets apply to every sender.

        Returns:
            The sender it was fed to, or None when it was rejected (not
            allowed, too large) or shed (over budget while `behind`, or a
            sender shed lately; never the first line or rest of a crash report).
        """
        if self._allow and not self._is_allowed(host):
            self.counters.rejected["not_allowed"] += 1
            return None
        if truncated:
            self.counters.rejected["too_large"] += 1
            return None
        sender = Sender(host=host, port=port, local_port=local_port)
        budgets = self.budgets
        if ((behind or budgets.noisy(sender, now)) and not budgets.admit(sender, now)
                and not self._crash(sender, payload)):
            self._shed[sender] = self._shed.get(sender, 0) + 1
            self.counters.shed += 1
            return None
        self.table.feed(sender, payload, now)
        if sender not in self._dirty:
            self._dirty[sender] = now
        return sender

    def feed_rows(self, rows: list[PrebuiltRow]) -> None:
        """Store rows the express lane built (`Receiver.step`), where they arrived."""
        if rows:  # empty: all it read was shed
            self._pending.append(PrebuiltRecords(rows))
            self._rows += len(rows) - 1

    def feed_handed_out(self, payload: bytes, host: str, port: int, truncated: bool,
                        local_port: int, now: float, behind: bool, *,
                        key: bytes, lane: Lane | None) -> None:
        """A datagram the express lane handed to Python (`Receiver.step`), with
        the sender's `key` (its address as C keys lanes) and its `lane`, made
        inactive, if it had one. Its events go into the batch at once, and the
        sender (re)gets a lane when its stream allows."""
        express = self.express
        assert express is not None
        if lane is not None:
            counted = express.retire(lane, now)
            if counted is not None:  # what C took goes in before what follows
                self._pending.append(counted)
        sender = self.feed_datagram(payload, host, port, truncated, local_port, now, behind)
        if sender is None:
            return  # rejected; a lane it had reopens with its next datagram
        events = self.table.events()
        if events:
            self._pending.extend(self.incidents.process(events, now, open_reports=False))
        express.note_reboots(events)
        express.settle(sender, key, lane)

    def after_receive(self, now: float, *, behind: bool,
                      lanes: LaneReport | None = None) -> None:
        """A socket drained for this wake-up: what its C lanes did (`lanes`), and
        budgets forgotten for the senders not shed lately once not `behind`."""
        if lanes is not None:
            assert self.express is not None
            for lane in lanes.shedding:  # what C shed: in-order records, the stream moved on
                self._shed[lane.sender] = self._shed.get(lane.sender, 0) + lane.shed
                self.counters.shed += lane.shed
                lane.shed = 0
        if not behind:
            self.budgets.forget(now)
        if lanes is not None:
            # A lane that only shed moved its stream on too (and may have taken
            # forward gaps): booked like one that took records.
            self._touched += lanes.touched
            self._touched += lanes.shedding
        if self._touched and now >= self._booked + TOOK_EVERY:
            self._book_lanes(now)

    def _book_lanes(self, now: float) -> None:
        """What the lanes took since the last booking: counted by their detectors,
        gaps opened in their streams, states marked for saving."""
        touched, self._touched = self._touched, []
        self._booked = now
        if not touched:
            return
        assert self.express is not None
        self.express.took(touched)
        dirty = self._dirty
        for lane in touched:
            if lane.sender not in dirty:
                dirty[lane.sender] = now

    def _is_allowed(self, host: str) -> bool:
        ok = self._allowed.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                ok = False
            else:
                ok = any(ip in net for net in self._allow)
            if len(self._allowed) > MAX_ALLOWED_CACHED:
                self._allowed.clear()
            self._allowed[host] = ok
        return ok

    def _crash(self, sender: Sender, payload: bytes) -> bool:
        """Never shed: a report's first line, and the rest of an open report."""
        return TRIGGER_BYTES.search(payload) is not None or self.incidents.busy(sender)

    # -- timers ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """The earliest time `expire` has a timer to run (a gap's wait for late
        datagrams, a report that stopped arriving, a host gone quiet), or None."""
        streams, incidents = self.table.next_deadline(), self.incidents.next_deadline()
        if streams is None or incidents is None:
            return incidents if streams is None else streams
        return min(streams, incidents)

    def expire(self, now: float) -> None:
        """Run the stream and incident timers due at `now`.

        The stream events the Python path fed since the last call go into the
        batch with those the timers decide, through the incident detectors.
        Call it every wake-up, after receiving.
        """
        deadline = self.table.next_deadline()
        if deadline is not None and deadline <= now:
            self.table.expire(now)
        events = self.table.events()
        if events and self.express is not None:
            self.express.note_reboots(events)  # a reboot decided by a timer
        self._pending.extend(self.incidents.process(events, now, open_reports=False))
        deadline = self.incidents.next_deadline()
        if deadline is not None and deadline <= now:
            self._book_lanes(now)  # a detector's timer must know every record it had
            decided = self.incidents.expire(now)
            self._pending.extend(decided)
            if self.express is not None:
                for event in decided:  # a silence: its end must be seen record by record
                    self.express.drop(event.sender)

    # -- batches -----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events waiting for the next batch (a run of the lane's rows counts as its rows)."""
        return len(self._pending) + self._rows

    def flush_at(self, started: float, interval: float) -> float:
        """When the batch begun at `started` is due: `interval` later, or up to
        `LOADED_WAIT` later under load (`LOADED_BATCH`), or at once when full."""
        pending = self.pending
        if pending >= MAX_BATCH:
            return started
        if pending >= LOADED_BATCH:
            return started + max(interval, LOADED_WAIT)
        return started + interval

    def take_batch(self, now: float, *, final: bool = False,
                   holding: bool = False) -> Batch | None:
        """The next batch: what is pending, the lanes' host counts, the open
        reports' snapshots and the shed counts, with the states due at `now`.

        Args:
            final: at shutdown (after `close`): every state is due.
            holding: the writer holds records the store did not take; the states
                then wait, and a batch comes back even when empty (to retry).

        Returns:
            The batch, or None when there is nothing to write.
        """
        self._book_lanes(now)
        pending = self._pending
        if self.express is not None:
            counted = self.express.counted()
            if counted is not None:
                pending.append(counted)
        pending.extend(self.incidents.open_reports())  # once per batch, not per record
        if self._shed:  # one count per noisy sender and batch, not one event per datagram
            pending.extend(Shed(sender=s, at=now, count=n) for s, n in self._shed.items())
            self._shed = {}
        self._pending, self._rows = [], 0
        if not pending and not holding and not (final and self._dirty):
            return None  # (at shutdown every state is due, events or not)
        # While records are held the states wait too: saved ahead of their
        # records, they would hide those from the replay after a restart.
        states = self._due_states(now) if final or not holding else {}
        return Batch(events=pending, states=states)

    def after_write(self, batch: Batch, *, states_saved: bool, holding: bool) -> None:
        """`batch` was written: states not saved are due again (first), and once
        nothing is held every lane's host and boot rows are committed."""
        if batch.states and not states_saved:
            self._dirty = {**dict.fromkeys(batch.states, 0.0), **self._dirty}
        if self.express is not None and not holding:
            self.express.after_commit()

    def _due_states(self, now: float) -> dict[Sender, dict[str, Any]]:
        """Snapshots of the senders whose state changed more than STATE_EVERY ago."""
        due: dict[Sender, dict[str, Any]] = {}
        taken: list[Sender] = []
        streams = self.table.streams
        lanes = self.express.of if self.express is not None else {}
        for sender, since in self._dirty.items():
            if since > now - STATE_EVERY:
                break
            taken.append(sender)
            lane = lanes.get(sender)
            if lane is not None and lane.active:
                assert self.express is not None
                self.express.sync(lane)
            stream = streams.get(sender)
            if stream is not None:
                due[sender] = stream.snapshot()
        for sender in taken:
            del self._dirty[sender]
        return due

    def close(self, now: float) -> None:
        """End of input: every stream gives up what it holds and every state is
        due, for the last `take_batch(final=True)`."""
        self._book_lanes(now)
        if self.express is not None:
            self.express.sync_all()
        self.table.flush(now)
        self._pending.extend(self.incidents.process(self.table.events(), now,
                                                    open_reports=False))
        self._dirty = dict.fromkeys([*self._dirty, *self.table.streams], 0.0)
