"""Builders for the incident tests: records from report text, and a driver."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from netconsole.incidents import (
    Incident,
    IncidentEvent,
    IncidentTable,
    Output,
    Phase,
    Silence,
)
from netconsole.stream.events import Event, Record, Sender
from netconsole.wire import Mode

HOST = Sender(host="192.0.2.1", port=6665, local_port=6666)
OTHER = Sender(host="192.0.2.2", port=6665, local_port=6666)
T0 = 1_700_000_000.0


def lines_to_records(text: str, *, sender: Sender = HOST, seq: int = 100, t: float = T0,
                     step: float = 0.0005, caller: str | None = None, cpu: int | None = None,
                     release: str | None = "6.1.0-18-amd64") -> list[Record]:
    """One extended record per line, `step` seconds apart."""
    fields = ((b"cpu", str(cpu).encode()),) if cpu is not None else ()
    return [
        Record(sender=sender, mode=Mode.EXTENDED, received=t + i * step, text=line.encode(),
               facility=0, level=4, seq=seq + i, ts_usec=int((t - T0 + i * step) * 1e6),
               caller=caller, fields=fields, release=release)
        for i, line in enumerate(text.split("\n"))
    ]


@dataclass
class Run:
    """What a table made of some events: every output, in order."""

    out: list[Output] = field(default_factory=list)

    @property
    def incident_events(self) -> list[Incident]:
        return [e for e in self.out if isinstance(e, Incident)]

    @property
    def closed(self) -> list[Incident]:
        """The final state of each incident (its last CLOSED or AMENDED event)."""
        last: dict[tuple[Sender, str], Incident] = {}
        for e in self.incident_events:
            if e.phase in (Phase.CLOSED, Phase.AMENDED):
                last[(e.sender, e.key)] = e
        return list(last.values())

    @property
    def silences(self) -> list[Silence]:
        return [e for e in self.out if isinstance(e, Silence)]


def drive(events: Iterable[Event], *, table: IncidentTable | None = None,
          settle: float | None = 30.0) -> Run:
    """Feed events one by one at their own times, expiring deadlines on the way;
    then expire `settle` seconds after the last (None: leave open)."""
    table = table or IncidentTable()
    run = Run()
    now = T0
    for e in events:
        now = e.received if isinstance(e, Record) else e.at
        deadline = table.next_deadline()
        if deadline is not None and deadline <= now:
            run.out += table.expire(now)
        run.out += table.process([e], now)
    if settle is not None:
        run.out += expire_until(table, now + settle)
    return run


def expire_until(table: IncidentTable, until: float) -> list[IncidentEvent]:
    """Expire at each deadline up to `until`, as the collector's loop does."""
    out: list[IncidentEvent] = []
    while True:
        deadline = table.next_deadline()
        if deadline is None or deadline > until:
            return out
        out += table.expire(deadline)
