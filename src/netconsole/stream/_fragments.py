"""`ncfrag` reassembly for one sender (kernel-netconsole.md §4.7, §4.8).

Fragments are keyed by (seq, ts_usec): the header repeats in every fragment,
and the timestamp keeps two boots' records of the same seq apart. Pieces may
come in any order, twice, or overlapping; the record is complete when the
pieces cover `[0, total)`. A record still missing pieces `FRAGMENT_TIMEOUT`
seconds after its first piece is given up as incomplete, with its holes
reported: never padded.

The first copy of a byte wins. A fragment that says something else than
what arrived first for the same record (another `total`, another header,
other bytes for a range already held) is rejected whole as
`fragment_mismatch`, none of its bytes used: a second target or the network
repeats a fragment byte for byte, so a different copy is a broken or forged
sender, and counting it is the point. A repeat that agrees adds only the
bytes not yet held, so a record never holds more than `total` bytes
however its pieces overlap, and at most `MAX_PIECES` separate pieces.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from netconsole.wire import Fragment, Header, RejectReason, WireError

# The kernel sends a record's fragments back to back; a second covers any
# reordering a LAN does and keeps panic output flowing quickly.
FRAGMENT_TIMEOUT = 1.0
# Records being reassembled at once per sender; beyond it the oldest is given up.
MAX_PENDING_RECORDS = 16
# Separate pieces one record may hold. The kernel cuts at most 128 KiB into
# pieces of ~900 bytes (< 150); tiny disjoint pieces only make each new
# fragment's overlap check cost more.
MAX_PIECES = 256


@dataclass(slots=True, kw_only=True)
class Partial:
    """One record being reassembled: disjoint pieces, `starts` their sorted offsets."""

    header: Header
    total: int
    first_seen: float
    pieces: dict[int, bytes] = field(default_factory=dict)
    starts: list[int] = field(default_factory=list)
    received: int = 0

    @property
    def deadline(self) -> float:
        return self.first_seen + FRAGMENT_TIMEOUT

    def add(self, offset: int, data: bytes) -> None:
        """Keep the bytes of `data` (at `offset`) not held yet.

        Raises:
            WireError: `data` contradicts bytes already held (nothing is kept),
                or the record would hold more than `MAX_PIECES` pieces.
        """
        end = offset + len(data)
        starts, pieces = self.starts, self.pieces
        i = bisect_right(starts, offset) - 1
        if i < 0 or starts[i] + len(pieces[starts[i]]) <= offset:
            i += 1  # the piece before `offset` ends before it
        gaps: list[tuple[int, int]] = []
        pos = offset
        j = i
        view = memoryview(data)
        while j < len(starts) and starts[j] < end:
            s = starts[j]
            piece = pieces[s]
            a, b = max(s, offset), min(s + len(piece), end)
            if view[a - offset : b - offset] != memoryview(piece)[a - s : b - s]:
                raise WireError(RejectReason.FRAGMENT_MISMATCH,
                                f"ncfrag bytes {a}-{b} of seq {self.header.seq} differ from"
                                " the copy received first")
            if a > pos:
                gaps.append((pos, a))
            pos = b
            j += 1
        if pos < end:
            gaps.append((pos, end))
        if not gaps:
            return  # a repeat of bytes already held
        if len(starts) + len(gaps) > MAX_PIECES:
            raise WireError(RejectReason.TOO_MANY_PENDING,
                            f"seq {self.header.seq} already holds {len(starts)} pieces")
        for a, b in gaps:
            pieces[a] = data[a - offset : b - offset]
            self.received += b - a
        starts[i:j] = sorted([*starts[i:j], *(a for a, _ in gaps)])

    def assemble(self) -> tuple[bytes, tuple[tuple[int, int], ...]]:
        """The bytes that arrived (holes left out) and the holes as [start, end)."""
        chunks = []
        missing = []
        pos = 0
        for s in self.starts:
            if s > pos:
                missing.append((pos, s))
            piece = self.pieces[s]
            chunks.append(piece)
            pos = s + len(piece)
        if pos < self.total:
            missing.append((pos, self.total))
        return b"".join(chunks), tuple(missing)


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
            WireError: the fragment disagrees with earlier ones of its record
                (`total`, header or bytes; see the module docstring), or the
                record holds too many pieces. The fragment is not used.
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
            raise WireError(RejectReason.FRAGMENT_MISMATCH,
                            f"ncfrag total {frag.total} after {part.total} for seq {h.seq}")
        elif h != part.header:
            raise WireError(RejectReason.FRAGMENT_MISMATCH,
                            f"fragment of seq {h.seq} has another header than the first")
        part.add(frag.offset, frag.data)  # never raises for a new partial: nothing to undo
        if part.received == part.total:
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
