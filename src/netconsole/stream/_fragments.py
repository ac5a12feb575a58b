"""`ncfrag` reassembly for one sender (kernel-netconsole.md §4.7, §4.8).

Fragments are keyed by (seq, ts_usec): the header repeats in every fragment,
and the timestamp keeps two boots' records of the same seq apart. Pieces may
come in any order, twice, or overlapping; the record is complete when the
pieces cover `[0, total)`. A record still missing pieces `FRAGMENT_TIMEOUT`
seconds after its first piece is given up as incomplete, with its holes
reported: never padded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netconsole.wire import Fragment, Header

# The kernel sends a record's fragments back to back; a second covers any
# reordering a LAN does and keeps panic output flowing quickly.
FRAGMENT_TIMEOUT = 1.0
# Records being reassembled at once per sender; beyond it the oldest is given up.
MAX_PENDING_RECORDS = 16


@dataclass(slots=True, kw_only=True)
class Partial:
    header: Header
    total: int
    first_seen: float
    pieces: dict[int, bytes] = field(default_factory=dict)
    received: int = 0

    @property
    def deadline(self) -> float:
        return self.first_seen + FRAGMENT_TIMEOUT

    def covered(self) -> list[tuple[int, int]]:
        """Merged [start, end) intervals the pieces cover."""
        out: list[list[int]] = []
        for off in sorted(self.pieces):
            end = off + len(self.pieces[off])
            if out and off <= out[-1][1]:
                out[-1][1] = max(out[-1][1], end)
            else:
                out.append([off, end])
        return [(s, e) for s, e in out]

    def assemble(self) -> tuple[bytes, tuple[tuple[int, int], ...]]:
        """The bytes that arrived (holes left out) and the holes as [start, end)."""
        buf = bytearray(self.total)
        for off, data in self.pieces.items():
            buf[off : off + len(data)] = data
        covered = self.covered()
        missing = []
        pos = 0
        for s, e in covered:
            if s > pos:
                missing.append((pos, s))
            pos = e
        if pos < self.total:
            missing.append((pos, self.total))
        data = b"".join(bytes(buf[s:e]) for s, e in covered)
        return data, tuple(missing)


class Reassembler:
    """Holds the partial records of one sender."""

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending: dict[tuple[int, int], Partial] = {}

    def add(self, frag: Fragment, now: float) -> tuple[Partial | None, Partial | None]:
        """Add a fragment.

        Returns:
            (done, evicted): `done` is the partial this fragment completed;
            `evicted` is a partial given up early because too many were open.

        Raises:
            ValueError: the fragment disagrees with earlier ones about `total`.
        """
        h = frag.header
        key = (h.seq, h.ts_usec)
        part = self.pending.get(key)
        evicted = None
        if part is None:
            if len(self.pending) >= MAX_PENDING_RECORDS:
                oldest = min(self.pending, key=lambda k: self.pending[k].first_seen)
                evicted = self.pending.pop(oldest)
            part = Partial(header=h, total=frag.total, first_seen=now)
            self.pending[key] = part
        elif part.total != frag.total:
            raise ValueError(f"ncfrag total {frag.total} after {part.total} for seq {h.seq}")
        old = part.pieces.get(frag.offset)
        if old is None or len(frag.data) > len(old):
            part.received += len(frag.data) - (len(old) if old else 0)
            part.pieces[frag.offset] = frag.data
            if frag.offset == 0:
                part.header = h
        if part.received >= part.total and part.covered() == [(0, part.total)]:
            del self.pending[key]
            return part, evicted
        return None, evicted

    def expire(self, now: float) -> list[Partial]:
        done = [k for k, p in self.pending.items() if p.deadline <= now]
        return [self.pending.pop(k) for k in done]

    def flush(self) -> list[Partial]:
        out = list(self.pending.values())
        self.pending.clear()
        return out

    def next_deadline(self) -> float | None:
        return min((p.deadline for p in self.pending.values()), default=None)

    @property
    def buffered_bytes(self) -> int:
        return sum(p.received for p in self.pending.values())
