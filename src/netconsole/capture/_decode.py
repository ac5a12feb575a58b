"""A capture file's frames -> netconsole events, one SenderStream per sender.

Packet times drive the streams' clocks, so a capture decodes exactly as a live
receiver would have decoded the same traffic.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from netconsole.capture._files import FileProblem, Frame
from netconsole.capture._packets import PacketError, udp_from_frame
from netconsole.stream import Event, GapKind, Record, Sender, StreamTable, Tally


@dataclass(slots=True)
class DecodeSummary(Tally):
    """What a decode saw, for the stderr summary and `--json` scripts."""

    packets: int = 0
    datagrams: int = 0
    other_port: int = 0
    hosts: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @property
    def lost_seq(self) -> int:
        return self.gaps[GapKind.SEQ.value]

    @property
    def lost_msgid(self) -> int:
        return self.gaps[GapKind.MSGID.value]

    @property
    def dropped(self) -> int:
        return self.gaps[GapKind.DROPPED.value]

    def as_dict(self) -> dict[str, object]:
        return {
            "packets": self.packets, "datagrams": self.datagrams, "other_port": self.other_port,
            "records": self.records, "hosts": len(self.hosts), "incomplete": self.incomplete,
            "duplicates": self.duplicates, "reboots": self.reboots,
            "gaps": {"seq": self.lost_seq, "msgid": self.lost_msgid, "dropped": self.dropped},
            "rejected": dict(sorted(self.rejected.items())), "problems": self.problems,
        }


class CaptureDecoder:
    """Feeds frames to a StreamTable and yields the events in order."""

    def __init__(self, ports: Iterable[int] = ()) -> None:
        self.ports = frozenset(ports)
        self.table = StreamTable()
        self.summary = DecodeSummary()
        self._now = 0.0

    def frames(self, items: Iterable[Frame | FileProblem], name: str = "") -> Iterator[Event]:
        """Decode one file's frames; problems go to the summary."""
        for item in items:
            if isinstance(item, FileProblem):
                self.summary.problems.append(f"{name}: {item.reason}: {item.detail}")
                self.summary.rejected[item.reason] += 1
                continue
            yield from self.frame(item)

    def frame(self, fr: Frame) -> Iterator[Event]:
        s = self.summary
        s.packets += 1
        table = self.table
        if fr.time > self._now:
            self._now = fr.time
            deadline = table.next_deadline()
            if deadline is not None and deadline <= fr.time:
                table.expire(fr.time)
        try:
            dg = udp_from_frame(fr.linktype, fr.data, fr.time)
        except PacketError as exc:
            s.rejected[exc.reason.value] += 1
            yield from self._drain()
            return
        if self.ports and dg.dport not in self.ports:
            s.other_port += 1
        else:
            s.datagrams += 1
            table.feed(Sender(host=dg.src, port=dg.sport, local_port=dg.dport), dg.payload,
                       fr.time)
        yield from self._drain()

    def finish(self) -> Iterator[Event]:
        """End of input: everything pending comes out."""
        self.table.flush(self._now)
        yield from self._drain()

    def _drain(self) -> Iterator[Event]:
        events = self.table.events()
        self.summary.count(events)
        for e in events:
            if type(e) is Record:
                self.summary.hosts.add(e.sender.host)
            yield e
