"""Counting a stream's events by kind: what every receiver summary starts from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from netconsole.stream.events import Duplicate, Event, Gap, Incomplete, Reboot, Record, Rejected


@dataclass(slots=True)
class Tally:
    """Records, duplicates, incomplete records and reboots; numbers lost by gap
    kind (`seq`, `msgid`, `dropped`); rejected datagrams by reason."""

    records: int = 0
    duplicates: int = 0
    incomplete: int = 0
    reboots: int = 0
    gaps: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)

    def count(self, events: Iterable[Event]) -> None:
        for e in events:
            kind = type(e)
            if kind is Record:
                self.records += 1
            elif kind is Gap:
                assert isinstance(e, Gap)
                self.gaps[e.kind.value] += e.count
            elif kind is Rejected:
                assert isinstance(e, Rejected)
                self.rejected[e.reason.value] += 1
            elif kind is Duplicate:
                self.duplicates += 1
            elif kind is Incomplete:
                self.incomplete += 1
            elif kind is Reboot:
                self.reboots += 1
