"""IncidentTable: a detector per sender, and the merge of their output into a batch.

The collector hands `process()` each batch of stream events as it comes out
of the StreamTable and gets back the same events with the incident events
placed among them: after the records that produced them, and before a
`Reboot` for the reports that reboot closed. That order is what lets the
store give every incident the boot number of its records.

Deadlines are kept in a heap with at most one live entry per sender (an entry
is pushed only when a sender's deadline comes earlier than the one queued),
so `next_deadline()` and `expire()` cost O(log n) per due sender, not a scan
of every host.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable

from netconsole.incidents._detector import DEFAULT_CONFIG, DetectorConfig, IncidentDetector
from netconsole.incidents._model import IncidentEvent
from netconsole.stream.events import Event, Reboot, Record, Sender

Output = Event | IncidentEvent


class IncidentTable:
    """Every sender's `IncidentDetector`, created on a sender's first record."""

    def __init__(self, config: DetectorConfig = DEFAULT_CONFIG) -> None:
        self.config = config
        self.detectors: dict[Sender, IncidentDetector] = {}
        self._heap: list[tuple[float, int, Sender]] = []
        self._queued: dict[Sender, float] = {}
        self._tiebreak = itertools.count()
        # Detectors whose open reports may have changed since `open_reports()`.
        self._changed: dict[Sender, IncidentDetector] = {}

    def _schedule(self, sender: Sender) -> None:
        detector = self.detectors.get(sender)
        if detector is None:
            return
        deadline = detector.next_deadline()
        if deadline is None:
            return
        queued = self._queued.get(sender)
        if queued is None or deadline < queued:
            self._queued[sender] = deadline
            heapq.heappush(self._heap, (deadline, next(self._tiebreak), sender))

    def process(self, events: Iterable[Event], now: float, *,
                open_reports: bool = True) -> list[Output]:
        """The batch with its incident events in place (see the module docstring).

        `open_reports=False`: the snapshots of open reports that changed wait for
        `open_reports()`, which a receiver calls once per store batch; what was
        decided (a report closed, a silence) is in place as always."""
        out: list[Output] = []
        touched: dict[Sender, IncidentDetector] = {}
        last_sender: Sender | None = None
        last: IncidentDetector | None = None
        for event in events:
            if isinstance(event, Reboot):
                detector = self.detectors.get(event.sender)
                if detector is not None:
                    detector.take(event, now)
                    out.extend(detector.events())
                    touched[event.sender] = detector
                out.append(event)
                last_sender = None
            elif isinstance(event, Record):
                out.append(event)
                sender = event.sender
                if sender is not last_sender:  # a stream's records share its Sender
                    last_sender = sender
                    last = self.detectors.get(sender)
                    if last is None:
                        last = self.detectors[sender] = IncidentDetector(sender, self.config)
                    touched[sender] = last
                assert last is not None
                last.take(event, now)
            else:
                out.append(event)
        for sender, detector in touched.items():
            out.extend(detector.events(open_reports=open_reports))
            if not open_reports:
                self._changed[sender] = detector
            self._schedule(sender)
        return out

    def open_reports(self) -> list[IncidentEvent]:
        """OPENED/UPDATED snapshots of the open reports changed since the
        `process(..., open_reports=False)` calls before."""
        out: list[IncidentEvent] = []
        for detector in self._changed.values():
            out.extend(detector.open_reports())
        self._changed = {}
        return out

    def took(self, sender: Sender, count: int, now: float, name: bytes | None) -> None:
        """`count` records of `sender` that start nothing, received at `now`
        (the receiver's express lane): counted as `process` would count them."""
        detector = self.detectors.get(sender)
        if detector is None:
            detector = self.detectors[sender] = IncidentDetector(sender, self.config)
        detector.took(count, now, name)
        if sender not in self._queued:
            # Activity only moves a detector's deadlines later: a queued entry
            # fires no later than needed, and `expire` queues the next one.
            self._schedule(sender)

    def busy(self, sender: Sender) -> bool:
        """Whether `sender`'s records must all pass through `process`."""
        detector = self.detectors.get(sender)
        return detector is not None and detector.busy

    def next_deadline(self) -> float | None:
        """The earliest time `expire` has work, or None."""
        heap = self._heap
        while heap and self._queued.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)  # superseded by an earlier entry that already ran
        return heap[0][0] if heap else None

    def expire(self, now: float) -> list[IncidentEvent]:
        """Run every detector whose deadline has come; return what they decided."""
        out: list[IncidentEvent] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, sender = heapq.heappop(heap)
            if self._queued.get(sender) != deadline:
                continue
            del self._queued[sender]
            detector = self.detectors[sender]
            detector.expire(now)
            out.extend(detector.events())
            if detector.idle(now):
                del self.detectors[sender]  # it forgets nothing worth keeping
            else:
                self._schedule(sender)
        return out

    def flush(self, now: float) -> list[IncidentEvent]:
        """Reports still open, as they are (OPENED/UPDATED), for a clean shutdown."""
        out: list[IncidentEvent] = []
        for detector in self.detectors.values():
            out.extend(detector.events())
        return out
