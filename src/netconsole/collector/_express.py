"""The receiver's express lane: the common record in C, everything else in Python.

Theory of operation
-------------------
Nearly every datagram a receiver gets is the next extended record of a sender
it already knows: whole, nothing escaped, starting no incident. For such a
record the ordinary path (wire decode, SenderStream, IncidentTable, store
codec) does a lot of work to conclude "seq went up by one" and build one
INSERT row. The C module `_lane` receives with recvmmsg(2), recognises exactly
that record, and builds the row itself at a fraction of the cost (see the README
benchmarks). Anything else comes out of `Receiver.step` as a datagram for the
ordinary path, in arrival order.

A `Lane` holds what C needs of a sender: its stream's seq, ts, release and
msgid (`SenderStream.express_state`), its host id and the boot number of its
records. `settle` gives a sender a lane after the ordinary path has handled
one of its datagrams, when the stream is then in that plain state (open holes
allowed: the lane stops at their horizon) and its
incident detector is not busy -- from a new sender's second record on, and
right after a restart or a reboot, not only after the next commit:
`RecordSink.reserve_host` writes a new host's row at once, and the boot is the
committed one plus the reboots still in the pending batch (`note_reboots`).
Only when the store cannot write that row now (another writer holds the lock,
the disk is full) does the sender wait for the next commit (`after_commit`).

While a lane is active its SenderStream and IncidentDetector fall behind:

* `took` hands the detector the count of records C took (none matching the
  incident trigger; as received at the lane's last), at most `TOOK_EVERY`
  apart (collector/_pipeline.py), before a detector's timer runs, and before
  any later record of that sender reaches it;
* `sync` catches the stream up (`SenderStream.express_advance`): when a
  datagram breaks the lane's rules (C makes the lane inactive and hands it
  out with the datagram), when the lanes are booked for one that took forward gaps
  (their holes then wait in the stream for late arrivals, with their deadlines
  armed, and are reported as the ordinary path reports them), before a state
  snapshot, before eviction, at close.

Order: a sender's records taken by C reach the store before any of its later
records taken by the ordinary path, because its lane is inactive from that
datagram until `settle` runs after it. So `PrebuiltRecords` go into the
pending batch where they arrived.

Without the C module (no compiler at install) or with NETCONSOLE_EXPRESS=0,
`available()` is False and the receiver takes the ordinary path for everything.
"""

from __future__ import annotations

import json
import os
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple

from netconsole.collector._budget import BEHIND_FILL, HOLD, NOISY_HOLD, Budgets
from netconsole.incidents import IncidentTable
from netconsole.incidents._patterns import TRIGGER_BYTES, TRIGGER_LITERALS
from netconsole.store import LaneHostCount, PrebuiltRecords, PrebuiltRow, RecordSink
from netconsole.stream import Event, Reboot, Record, Sender, StreamTable
from netconsole.stream._sender import TS_BACK_TOLERANCE_USEC, ExpressGap, ExpressState
from netconsole.stream._tracker import WINDOW
from netconsole.wire import Flag, Mode

_lane: ModuleType | None
try:
    from netconsole.collector import _lane
except ImportError:  # built without a C compiler
    _lane = None

if TYPE_CHECKING:
    from netconsole.collector._lane import Lane, Receiver

_FLAGS = {flag.value: flag for flag in Flag}


class HandedOut(NamedTuple):
    """A datagram the C receiver leaves to the Python path (`Receiver.step`)."""

    payload: bytes
    host: str
    port: int
    truncated: bool
    key: bytes
    """The sender's raw sockaddr: the key C keeps its lane under."""
    lane: Lane | None
    """The sender's lane, made inactive, or None."""

_NO_LIMIT = 2**63 - 1  # a Lane's seq_limit/msgid_limit when no hole is open


def available() -> bool:
    """The C module is built and not switched off (NETCONSOLE_EXPRESS=0)."""
    return _lane is not None and os.environ.get("NETCONSOLE_EXPRESS", "1") != "0"


class Express:
    """One worker's lanes, between its StreamTable, IncidentTable and store."""

    def __init__(self, table: StreamTable, incidents: IncidentTable, sink: RecordSink) -> None:
        assert _lane is not None
        self.table = table
        self.incidents = incidents
        self.sink = sink
        # Per local port (a Sender includes it), shared with that port's C receivers.
        self.lanes: dict[int, dict[bytes, Lane]] = {}
        self.of: dict[Sender, Lane] = {}
        self._receivers: list[Receiver] = []
        self._waiting: dict[Sender, bytes] = {}  # for the next commit
        # Reboots pending in the batch not yet committed, per sender: the boot
        # number of a lane's rows is the committed one plus these.
        self._reboots: dict[Sender, int] = {}
        self._senders: dict[int, Sender] = {}  # host id -> sender, for `records`

    def receiver(self, fd: int, local_port: int, budgets: Budgets) -> Receiver:
        assert _lane is not None
        lanes = self.lanes.setdefault(local_port, {})
        receiver: Receiver = _lane.Receiver(fd, lanes, TRIGGER_BYTES.search, TRIGGER_LITERALS,
                                            row_type=PrebuiltRow, gap_type=ExpressGap,
                                            handed_type=HandedOut)
        receiver.ts_back = TS_BACK_TOLERANCE_USEC  # the stream's rules, not copies in C
        receiver.window = WINDOW
        self._receivers.append(receiver)
        self.budget(budgets)
        return receiver

    def budget(self, budgets: Budgets) -> None:
        """The C side sheds with the same per-sender bucket as `budgets`."""
        for receiver in self._receivers:
            receiver.rate, receiver.burst, receiver.hold = budgets.rate, budgets.burst, HOLD
            receiver.behind_fill, receiver.noisy_hold = BEHIND_FILL, NOISY_HOLD

    # -- the C side's records -----------------------------------------------------

    def took(self, lanes: list[Lane]) -> None:
        """Hand the detectors what `lanes` took since last time (as received when
        each lane last took one, `lane.last`), and the streams the forward gaps
        they took."""
        took = self.incidents.took
        for lane in lanes:
            count = lane.fresh
            if count:
                lane.fresh = 0
                took(lane.sender, count, lane.last, lane.name)
            if lane.gaps is not None and lane.active:
                self.sync(lane)

    def counted(self) -> PrebuiltRecords | None:
        """What the lanes add to their hosts since last time, for the store's
        batch (`PrebuiltRecords.hosts`), or None."""
        return self._counted([lane for r in self._receivers for lane in r.batched()])

    @staticmethod
    def _counted(lanes: list[Lane]) -> PrebuiltRecords | None:
        hosts = []
        for lane in lanes:
            if lane.batch:
                hosts.append(LaneHostCount(sender=lane.sender, records=lane.batch,
                                           first_received=lane.first, last_received=lane.last,
                                           name=lane.name, release=lane.release))
                lane.batch = 0
        return PrebuiltRecords([], hosts) if hosts else None

    def records(self, batch: PrebuiltRecords) -> list[Record]:
        """The Records the rows stand for (for the live view and `--jsonl`)."""
        senders = self._senders
        # '' stands for None in a `PrebuiltRow`.
        return [
            Record(sender=senders[row.host_id], mode=Mode.EXTENDED, received=row.received,
                   text=row.text.encode(), release=row.release or None,
                   facility=row.facility, level=row.level, seq=row.seq, ts_usec=row.ts_usec,
                   flag=_FLAGS[row.flag], caller=row.caller or None,
                   fields=tuple((k.encode(), v.encode()) for k, v in json.loads(row.fields))
                   if row.fields else ())
            for row in batch.rows
        ]

    # -- lanes ------------------------------------------------------------------------

    def retire(self, lane: Lane, now: float) -> PrebuiltRecords | None:
        """A datagram of `lane` broke its rules: catch its stream and detector up
        before the ordinary path takes it (the lane stays, inactive, for `settle`).
        Returns what the lane adds to its host so far, to go into the batch here,
        before the records that may change the host's name or release."""
        self.took([lane])
        self.sync(lane)
        return self._counted([lane])

    def sync(self, lane: Lane) -> None:
        """Bring the lane's stream up to what the lane took. Only while the lane
        is active, or right after C made it inactive (`retire`): once the
        ordinary path has moved the stream on, the lane's state is stale."""
        gaps, lane.gaps = lane.gaps, None
        stream = self.table.streams.get(lane.sender)
        if stream is None:
            return
        stream.express_advance(lane.seq, lane.ts, lane.msgid, lane.last, gaps or ())
        if gaps:
            # The holes' deadlines are armed; C stopped the lane at the newest hole's
            # horizon, the stream knows the lowest one's.
            self.table.advanced(stream, lane.last)
            state = stream.express_state()
            if state is not None and lane.active:
                _limit(lane, state)

    def sync_all(self) -> None:
        for lane in self.of.values():
            if lane.active:
                self.sync(lane)

    def settle(self, sender: Sender, key: bytes, lane: Lane | None) -> None:
        """After the ordinary path took a datagram of `sender` (that arrived with
        `lane`, inactive, or none): (re)open its lane if it may have one now.

        Reboots it made (`note_reboots`) are not committed yet; the lane's rows
        carry their boot number all the same (they follow the reboot in the
        batch), so the lane goes on at once.
        """
        self._waiting.pop(sender, None)
        stream = self.table.streams.get(sender)
        state = stream.express_state() if stream is not None else None
        if state is None or self.incidents.busy(sender):
            if lane is not None:
                self.drop(sender)
            return
        # A new host gets its row now (or, the store busy, at the next commit).
        host = self.sink.reserve_host(sender)
        if host is None:
            self._waiting[sender] = key
            if lane is not None:
                self.drop(sender)
            return
        if lane is None:
            lane = self.of.get(sender)
        if lane is None:
            assert _lane is not None
            lane = _lane.Lane()
            lane.sender = sender
            lane.key = key
            self.lanes[sender.local_port][key] = self.of[sender] = lane
        lane.host_id, boot = host
        lane.boot = boot + self._reboots.get(sender, 0)
        self._senders[lane.host_id] = sender
        lane.seq, lane.ts, lane.release = state.seq, state.ts_usec, state.release
        lane.msgid, lane.msgid_base, lane.last = state.msgid, state.msgid_base, state.last_seen
        _limit(lane, state)
        lane.active = 1

    def note_reboots(self, events: list[Event]) -> int:
        """Count the reboots among stream events headed for the pending batch
        (their boot numbers are not committed until it is). Returns how many."""
        n = 0
        for event in events:
            if type(event) is Reboot:
                self._reboots[event.sender] = self._reboots.get(event.sender, 0) + 1
                n += 1
        return n

    def drop(self, sender: Sender) -> None:
        """Close `sender`'s lane, its stream caught up first if the lane is active."""
        lane = self.of.pop(sender, None)
        if lane is not None:
            if lane.active:
                lane.active = 0
                self.sync(lane)
            self.lanes[sender.local_port].pop(lane.key, None)

    def drop_all(self) -> None:
        for sender in list(self.of):
            self.drop(sender)

    def after_commit(self) -> None:
        """The batch is committed, host rows and boots with it: the store's
        committed boot now counts the reboots, and waiting senders may have lanes."""
        self._reboots.clear()
        waiting, self._waiting = self._waiting, {}
        for sender, key in waiting.items():
            lane = self.of.get(sender)
            if lane is not None and lane.active:
                continue  # it has taken records its stream has not seen: leave it be
            self.settle(sender, key, None)


def _limit(lane: Lane, state: ExpressState) -> None:
    """An open hole keeps waiting for late arrivals in Python (they are not the
    next record, so they come the ordinary way); the lane stops at its horizon."""
    lane.seq_limit = _NO_LIMIT if state.seq_horizon is None else state.seq_horizon
    lane.msgid_limit = _NO_LIMIT if state.msgid_horizon is None else state.msgid_horizon
