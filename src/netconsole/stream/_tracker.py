"""Counting a sequence of numbers that arrive over UDP: gaps, late arrivals, duplicates.

Used twice per extended stream: for printk `seq` and for netconsole's `msgid`
(kernel-netconsole.md §3.5, §9 fact 10). Theory of operation:

* `top` is the highest number seen; `seen` is a bitmap of the `WINDOW`
  numbers at and below it (bit k set = `top - k` arrived).
* A jump above `top` opens a *hole* that waits `REORDER_WAIT` seconds for
  late arrivals before it is reported as a gap; a late arrival inside a hole
  splits it and is counted as reordered, not lost.
* Anything at or below `top` that the bitmap already has is a duplicate; a
  number below the window cannot be judged here (the caller decides whether
  that is a reboot).

No clocks: every call takes `now`.
"""

from __future__ import annotations

import enum
from typing import Any

# netconsd's libncrx keeps a 512-slot window; 1024 covers a burst of two targets.
WINDOW = 1024
_MASK = (1 << WINDOW) - 1
# How long a hole waits for reordered datagrams before it counts as loss
# (netconsd waits 200 ms). It must exceed the fragment timeout (1 s), so that a
# record given up as incomplete fills its hole before the hole counts as a gap.
REORDER_WAIT = 1.5
# Holes kept open at once; past this the oldest is reported at once (bounded memory).
MAX_HOLES = 64

_NO_HOLES: list[list[float]] = []
"""Every tracker's `holes` while it has none: one shared list, never appended to
(`observe` makes a tracker its own), so that an idle sender's two trackers do
not hold two empty lists (issue 14: an idle sender costs at most 2 KiB)."""


class Seen(enum.Enum):
    FIRST = "first"  # the tracker was empty
    NEW = "new"  # above the top
    LATE = "late"  # inside the window, not seen before
    DUPLICATE = "duplicate"  # inside the window, seen before
    BELOW = "below"  # below the window: unknown


class SeqTracker:
    """Gap, reorder and duplicate accounting for one increasing counter."""

    __slots__ = ("holes", "reordered", "seen", "top")

    def __init__(self) -> None:
        self.top: int | None = None
        self.seen = 0
        self.holes = _NO_HOLES  # [start, end (exclusive), deadline] each
        self.reordered = 0

    def classify(self, n: int) -> Seen:
        """What `observe(n)` would say, without recording anything."""
        top = self.top
        if top is None:
            return Seen.FIRST
        if n > top:
            return Seen.NEW
        k = top - n
        if k >= WINDOW:
            return Seen.BELOW
        return Seen.DUPLICATE if (self.seen >> k) & 1 else Seen.LATE

    def observe(self, n: int, now: float) -> list[tuple[int, int]]:
        """Record `n`. Returns the holes that had to be reported at once, as (first, count)."""
        top = self.top
        if top is None:
            self.top, self.seen = n, 1
            return []
        if n == top + 1:  # the common case: the next number
            self.seen = ((self.seen << 1) | 1) & _MASK
            self.top = n
            return self._overflow() if self.holes else []
        if n > top:
            shift = n - top
            self.seen = ((self.seen << shift) | 1) & _MASK if shift < WINDOW else 1
            self.top = n
            if shift > 1:
                hole = [top + 1, n, now + REORDER_WAIT]
                if self.holes:
                    self.holes.append(hole)
                else:
                    self.holes = [hole]
            return self._overflow()
        k = top - n
        if k >= WINDOW:
            return []
        self.seen |= 1 << k
        for i, (start, end, deadline) in enumerate(self.holes):
            if start <= n < end:
                self.reordered += 1
                pieces = [[s, e, deadline] for s, e in ((start, n), (n + 1, end)) if e > s]
                self.holes[i : i + 1] = pieces
                break
        return []

    def horizon(self) -> int | None:
        """The highest number `advance_to` may reach: past it the lowest open hole
        falls out of the window (or too many holes are open) and must be reported,
        which `observe` does. None: no hole, no limit."""
        if not self.holes:
            return None
        assert self.top is not None
        if len(self.holes) > MAX_HOLES:  # a split left one too many: the next observe reports
            return self.top
        return int(self.holes[0][0]) + WINDOW - 1

    def advance_to(self, n: int) -> None:
        """`observe` of every number from `top + 1` to `n`, each the next one, in
        one step (what the receiver's express lane took); open holes stay open and
        wait for late arrivals as before, so `n` may not pass `horizon()`."""
        assert self.top is not None
        horizon = self.horizon()
        assert horizon is None or n <= horizon
        k = n - self.top
        if k <= 0:
            return
        self.seen = _MASK if k >= WINDOW else ((self.seen << k) | ((1 << k) - 1)) & _MASK
        self.top = n

    def _overflow(self) -> list[tuple[int, int]]:
        out = []
        assert self.top is not None
        floor = self.top - WINDOW
        while self.holes and (len(self.holes) > MAX_HOLES or self.holes[0][0] <= floor):
            start, end, _ = self.holes.pop(0)
            out.append((int(start), int(end - start)))
        if not self.holes:
            self.holes = _NO_HOLES
        return out

    def expire(self, now: float) -> list[tuple[int, int]]:
        """Holes whose wait is over, as (first, count): these numbers are lost."""
        if not self.holes or (self.holes[0][2] > now and all(h[2] > now for h in self.holes)):
            return []
        out = [(int(s), int(e - s)) for s, e, d in self.holes if d <= now]
        self.holes = [h for h in self.holes if h[2] > now] or _NO_HOLES
        return out

    def flush(self) -> list[tuple[int, int]]:
        """Every open hole, reported now (end of input, or a reboot)."""
        out = [(int(s), int(e - s)) for s, e, _ in self.holes]
        self.holes = _NO_HOLES
        return out

    def next_deadline(self) -> float | None:
        return min((h[2] for h in self.holes), default=None)

    def reset(self) -> None:
        self.top, self.seen, self.holes = None, 0, _NO_HOLES

    def snapshot(self) -> dict[str, Any]:
        return {"top": self.top, "seen": format(self.seen, "x"), "reordered": self.reordered}

    @classmethod
    def restore(cls, state: dict[str, Any]) -> SeqTracker:
        t = cls()
        t.top = state.get("top")
        t.seen = int(state.get("seen", "0"), 16) & _MASK
        t.reordered = int(state.get("reordered", 0))
        return t
