"""What the receiver got, through the project's own decoder, compared with the console.

Datagrams go through `netconsole.stream.SenderStream` (one per sender, i.e.
source address, source port and local port), exactly as the real receiver
feeds it. The result is compared line by line with the guest's console: a
record of several lines is split on `\\n`, each line keyed by (ts_usec, text).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lab._console import ConsoleLine
from lab._receiver import Datagram
from netconsole.stream import (
    Duplicate,
    Event,
    Gap,
    GapKind,
    Incomplete,
    Reboot,
    RebootReason,
    Record,
    Rejected,
    Sender,
    SenderStream,
)

# flush() time after the last datagram: everything pending is emitted.
_END = 3600.0


@dataclass(slots=True)
class Decoded:
    """The events of one sender's stream, sorted by kind."""

    sender: Sender
    events: list[Event] = field(default_factory=list)

    def of(self, kind: type[Event]) -> list[Event]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def records(self) -> list[Record]:
        return [e for e in self.events if isinstance(e, Record)]

    @property
    def gaps(self) -> list[Gap]:
        return [e for e in self.events if isinstance(e, Gap)]

    def gap_count(self, kind: GapKind) -> int:
        return sum(g.count for g in self.gaps if g.kind is kind)

    @property
    def problems(self) -> list[Event]:
        """Events a clean stream never has: duplicates, reboots, incompletes, rejects."""
        return [e for e in self.events
                if isinstance(e, Duplicate | Reboot | Incomplete | Rejected)]

    @property
    def unexpected(self) -> list[Event]:
        """`problems` less the false `Reboot(TIME_BACK)` a boot's SMP bring-up can cause:
        that one is asserted by its own test (test_qemu_modparam.py), so one decoder
        issue fails one test, not every test of a boot."""
        return [e for e in self.problems
                if not (isinstance(e, Reboot) and e.reason is RebootReason.TIME_BACK)]


def decode(datagrams: Iterable[Datagram]) -> dict[Sender, Decoded]:
    """Feed every datagram to its sender's stream, then flush; events per sender."""
    streams: dict[Sender, SenderStream] = {}
    last = 0.0
    for d in datagrams:
        sender = Sender(host=d.src_host, port=d.src_port, local_port=d.local_port)
        stream = streams.get(sender)
        if stream is None:
            stream = streams[sender] = SenderStream(sender)
        stream.feed(d.payload, d.at)
        last = max(last, d.at)
    out = {}
    for sender, stream in streams.items():
        stream.flush(last + _END)
        out[sender] = Decoded(sender, stream.events())
    return out


def decode_port(datagrams: Iterable[Datagram], port: int) -> Decoded:
    """The one stream that arrived on `port` (fails if there were several senders)."""
    found = decode(d for d in datagrams if d.local_port == port)
    assert len(found) == 1, f"port {port}: expected one sender, got {sorted(map(str, found))}"
    return next(iter(found.values()))


class HasLines(Protocol):
    """What a comparison reads of a record: the project's `Record`, a stored record's
    `.record`, or a record of `netconsole decode`'s JSON (lab._pcap.DecodedRecord)."""

    @property
    def ts_usec(self) -> int | None: ...

    @property
    def text(self) -> bytes: ...


def record_lines(records: Iterable[HasLines]) -> list[tuple[int, bytes]]:
    """(ts_usec, line) for every line of every record, as the console shows them."""
    out = []
    for r in records:
        assert r.ts_usec is not None, f"record without a timestamp: {r}"
        out += [(r.ts_usec, line) for line in r.text.split(b"\n")]
    return out


@dataclass(frozen=True, slots=True)
class Comparison:
    """Console lines against decoded record lines, as multisets."""

    matched: int
    missing: list[tuple[int, bytes]]  # on the console, never decoded
    extra: list[tuple[int, bytes]]  # decoded, never on the console

    def report(self, limit: int = 8) -> str:
        def show(items: Sequence[tuple[int, bytes]]) -> str:
            return "\n".join(f"    [{ts / 1e6:12.6f}] {text[:160]!r}" for ts, text in items[:limit])

        return (f"matched {self.matched}, missing {len(self.missing)}, "
                f"extra {len(self.extra)}\n  missing:\n{show(self.missing)}\n"
                f"  extra:\n{show(self.extra)}")


def compare(console: Iterable[ConsoleLine], records: Iterable[HasLines]) -> Comparison:
    want = Counter(line.key for line in console)
    got = Counter(record_lines(records))
    missing = sorted((want - got).elements())
    extra = sorted((got - want).elements())
    return Comparison(sum((want & got).values()), missing, extra)
