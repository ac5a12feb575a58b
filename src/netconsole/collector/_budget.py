"""Per-sender budgets: one noisy sender must not silence a panicking one.

When a sender floods (a printk storm, fragment noise, an attacker) faster than
the receiver can work, the socket buffer fills and the kernel drops datagrams
of every sender alike, a quiet host's `Kernel panic` among them. So while the
receiver is behind -- within the last HOLD seconds a `recvmmsg` came back full
with the socket in danger: its queue past BEHIND_FILL of its buffer, or the
kernel dropping on it (SO_MEMINFO; a burst that only fills a batch endangers
nobody, and the receiver asks for a 64 MiB buffer); sticky, because a receiver that
sheds soon drains its socket, and would otherwise let the flood in again at
full cost at once --
each sender may have `rate` records a second on average and `burst` at once;
its excess is shed right after it is read, before any parsing, accounting or
storing -- the cheap way to drain the socket. A sender within its budget, and
while the receiver keeps up anyone, loses nothing.

Never shed: a datagram with the incident trigger in it (a crash report's first
line: `Kernel panic`, `BUG:`, `Oops`, …), and any datagram of a sender whose
incident detector has a report open (the rest of the report). What was shed is
counted per sender (`hosts.shed`, `/metrics`).

The express lane (collector/_lane.c) applies the same bucket to the records it
takes, in C, with the same `rate` and `burst`. It knows their seq, so the
stream moves past a record it sheds (counted as shed, not as loss); a datagram
shed here, unparsed, also shows as seq loss when the next one arrives.

Sans-IO: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Hashable

HOLD = 2.0
"""Seconds the receiver counts as behind after its socket was last found filling up."""

BEHIND_FILL = 0.5
"""Share of the socket's receive buffer queued past which the receiver is behind."""

NOISY_HOLD = 10.0
"""Seconds a sender that was shed stays under its budget, the receiver behind or not:
else the flood comes back at full cost the moment the socket has drained."""

MAX_TRACKED = 100_000
"""Senders with a bucket at most; past that the buckets start over (full). A
bucket exists only for a sender seen while the receiver was behind."""


class Budgets:
    """Token buckets per sender, consulted while the receiver is behind and for a
    sender shed in the last NOISY_HOLD seconds (`noisy`)."""

    __slots__ = ("_buckets", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        """Records a second a sender may average; 0 turns budgets off."""
        self.burst = burst
        """The most a sender saves up while quiet."""
        self._buckets: dict[Hashable, list[float]] = {}  # sender -> [tokens, stamp, noisy until]

    def admit(self, sender: Hashable, now: float) -> bool:
        """Spend one record of `sender`'s budget at `now`: False when it has none
        left (shed it, unless it is a crash report: the caller checks that)."""
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(sender)
        if bucket is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._buckets.clear()
            self._buckets[sender] = [self.burst - 1, now, 0.0]
            return True
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1:
            bucket[0] = tokens - 1
            return True
        bucket[0] = tokens
        bucket[2] = now + NOISY_HOLD
        return False

    def noisy(self, sender: Hashable, now: float) -> bool:
        """`sender` was shed in the last NOISY_HOLD seconds: its budget applies."""
        bucket = self._buckets.get(sender)
        return bucket is not None and now < bucket[2]

    def forget(self, now: float) -> None:
        """The receiver caught up: drop the buckets of the senders not shed lately
        (they start full next time)."""
        if self._buckets:
            self._buckets = {s: b for s, b in self._buckets.items() if now < b[2]}

    def __len__(self) -> int:
        return len(self._buckets)
