"""StreamTable: every sender's stream, with the bounds that hold over all of them.

The per-sender bounds live in `SenderStream`; this table adds the ones a
hostile or broken crowd of senders would otherwise break (DESIGN.md, "The
receiver, in numbers"):

* `MAX_BUFFERED_BYTES` over all senders' reassembly buffers: past it, the
  senders holding the most are made to give up their partial records (as
  incomplete records, so nothing disappears silently);
* `MAX_SENDERS`: past it, the longest-idle sender's stream is dropped (its
  state is only accounting; a later datagram starts a fresh stream);
* deadlines in a heap, so `expire(now)` touches only the streams that are due.

Sans-IO like the streams: the caller passes `now` and drains `events()`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from netconsole.stream._sender import SenderStream
from netconsole.stream.events import Event, Record, Sender

# Reassembly memory over all senders: 64 MiB is ~65,000 records in flight.
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
Resume = Callable[[Sender], "tuple[dict[str, Any], Iterable[Record]] | None"]
"""See `StreamTable.resume`."""

# Streams kept at once; an idle stream costs about 500 bytes.
MAX_SENDERS = 1_000_000


class StreamTable:
    """Routes datagrams to per-sender streams and runs their timers."""

    def __init__(self, *, max_buffered: int = MAX_BUFFERED_BYTES,
                 max_senders: int = MAX_SENDERS, resume: Resume | None = None) -> None:
        self.streams: dict[Sender, SenderStream] = {}
        # Asked once per sender it does not hold: a saved state and the records
        # stored after it (a restarted receiver), or None for a new stream.
        self.resume = resume
        # Told before the table picks a stream to evict (to bring every
        # stream's last_seen up to date) and which one it evicted.
        self.before_evict: Callable[[], None] | None = None
        self.evicted: Callable[[Sender], None] | None = None
        self.max_buffered = max_buffered
        self.max_senders = max_senders
        self._heap: list[tuple[float, int, Sender]] = []
        self._armed: dict[Sender, float] = {}  # the earliest deadline each sender has queued
        self._counter = 0
        self._buffered: dict[Sender, int] = {}
        self._events: list[Event] = []
        self.evicted_senders = 0
        self.forced_incomplete = 0

    def feed(self, sender: Sender, payload: bytes, now: float) -> None:
        stream = self.streams.get(sender)
        if stream is None:
            if len(self.streams) >= self.max_senders:
                self._evict_idle()
            saved = self.resume(sender) if self.resume is not None else None
            if saved is None:
                stream = self.streams[sender] = SenderStream(sender)
            else:
                stream = self.restore(sender, *saved)
        stream.feed(payload, now)
        self._after(stream, now)

    def restore(self, sender: Sender, state: dict[str, Any],
                stored_since: Iterable[Record] = ()) -> SenderStream:
        """Bring back a stream saved with `SenderStream.snapshot` (a restarted
        receiver), caught up with the records stored after that snapshot."""
        stream = self.streams[sender] = SenderStream.restore(sender, state)
        stream.replay(stored_since)
        return stream

    def expire(self, now: float) -> None:
        """Run every timer that is due at `now`."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, sender = heapq.heappop(heap)
            if self._armed.get(sender) == deadline:
                del self._armed[sender]
            stream = self.streams.get(sender)
            if stream is not None:
                stream.expire(now)
                self._after(stream, now)

    def flush(self, now: float) -> None:
        """End of input: every stream gives up what it holds."""
        for stream in self.streams.values():
            stream.flush(now)
            self._events.extend(stream.events())
        self._heap.clear()
        self._armed.clear()
        self._buffered.clear()

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def advanced(self, stream: SenderStream, now: float) -> None:
        """`stream` was moved on outside `feed` (the express lane's gaps,
        `SenderStream.express_advance`): collect its events, arm its deadlines."""
        self._after(stream, now)

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def snapshots(self) -> Iterator[tuple[Sender, dict[str, Any]]]:
        for sender, stream in self.streams.items():
            yield sender, stream.snapshot()

    @property
    def buffered_bytes(self) -> int:
        return sum(self._buffered.values())

    def _after(self, stream: SenderStream, now: float) -> None:
        self._events.extend(stream.events())
        deadline = stream.next_deadline()
        sender = stream.sender
        if deadline is not None:
            # Queue a deadline only when it is earlier than the one queued;
            # a later one is found when the earlier entry fires. Entries left
            # for streams that moved on are harmless: expire() then does nothing.
            armed = self._armed.get(sender)
            if armed is None or deadline < armed:
                self._armed[sender] = deadline
                self._counter += 1
                heapq.heappush(self._heap, (deadline, self._counter, sender))
            self._buffered[sender] = stream.buffered_bytes
            if len(self._buffered) > 1 and self.buffered_bytes > self.max_buffered:
                self._shed(now)
        else:
            self._buffered.pop(sender, None)

    def _shed(self, now: float) -> None:
        """Make the biggest holders give up their partial records until under the bound."""
        total = self.buffered_bytes
        for sender, held in sorted(self._buffered.items(), key=lambda kv: -kv[1]):
            if total <= self.max_buffered // 2:
                break
            stream = self.streams[sender]
            stream.flush(now)
            self.forced_incomplete += 1
            self._events.extend(stream.events())
            self._buffered.pop(sender, None)
            total -= held

    def _evict_idle(self) -> None:
        if self.before_evict is not None:
            self.before_evict()
        oldest = min(self.streams.values(), key=lambda s: s.last_seen or 0.0)
        del self.streams[oldest.sender]
        self._buffered.pop(oldest.sender, None)
        self.evicted_senders += 1
        if self.evicted is not None:
            self.evicted(oldest.sender)
