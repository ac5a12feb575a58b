"""SenderStream: the state machine of one netconsole sender.

Driven by three calls, never by a clock of its own:

* `feed(payload, now)`: one UDP payload from this sender;
* `expire(now)`: give up what has waited too long (fragments, basic chunks,
  seq holes); call it when `next_deadline()` has passed;
* `flush(now)`: end of input (a capture file ends, the receiver stops).

Each call appends to an event list drained by `events()`: `Record`s, and
beside them `Gap`, `Duplicate`, `Reboot`, `Incomplete` and `Rejected`.

Extended records are accounted by printk `seq` (holes wait `REORDER_WAIT`
for late datagrams before they count as a gap) and by `msgid` when the
sender has that sysdata (6.17+), because the two mean different things:
a seq gap may be the console log level or a ring overrun on the sender; a
msgid gap is a message netconsole sent that never arrived (§3.5).

A reboot is recognised when the release changes, when a seq at or below
the newest one comes back after `REBOOT_SILENCE` seconds of silence, from
more than `DUPLICATE_REACH` below it (a duplicate comes right after the
original), or from below the duplicate window, or when a newer seq carries
a timestamp well before the newest one's. A module reload that replays the log from seq 0
looks the same and is reported the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from netconsole.stream._basic import (
    MAX_BASIC_RECORD,
    looks_like_console_text,
    parse_console_text,
)
from netconsole.stream._fragments import FRAGMENT_TIMEOUT, Partial, Reassembler
from netconsole.stream._tracker import Seen, SeqTracker
from netconsole.stream.events import (
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
    field_number,
)
from netconsole.wire import (
    MAX_PRINT_CHUNK,
    BasicChunk,
    Body,
    ExtendedMessage,
    Fragment,
    Header,
    Mode,
    RejectReason,
    WireError,
    decode_datagram,
    parse_body,
)

# A duplicate comes milliseconds after the original (two targets, one
# receiver); a seq that comes back after this much silence is a new boot.
REBOOT_SILENCE = 1.0
# What starts a basic record's console text: `<N>`, `[ sss.uuuuuu]` or `[ T123]`.
_PRINTK_PREFIX = re.compile(rb"<\d{1,3}>|\[\s*\d{1,10}\.\d{6}\]|\[\s*[TC]\d{1,10}\]")
# A seen seq at most this far below the newest is a duplicate; further, a reboot.
DUPLICATE_REACH = 32
# printk timestamps of consecutive records may disagree across CPUs: the kernel
# lab saw a second CPU's first records 1.2 s behind at boot. A newer seq whose
# time is this much earlier belongs to another boot.
TS_BACK_TOLERANCE_USEC = 30_000_000
# The userdata key `netconsole forward` puts on records replayed from pstore.
PSTORE_FIELD = b"pstore"
# msgid is a u32 that wraps (§3.5).
_MSGID_MOD = 1 << 32
# A msgid of 19 digits or more is no netconsole's (it is a u32): kept in the
# record's fields, not accounted. Below this, msgid + wrap base stays far from
# the int64 the express lane holds it in, and the lane (18 digits at most, its
# MAX_DIGITS) and this path account the same msgids.
_MSGID_ACCOUNTED = 10**18


class ExpressState(NamedTuple):
    """Where a stream stands when its next in-order record is all it can take
    without an event: what the express lane (collector/_express.py) starts from."""

    seq: int
    """The highest seq seen."""
    ts_usec: int
    """That record's timestamp."""
    release: str | None
    msgid: int
    """The highest msgid seen plus `msgid_base`, or -1: no msgid."""
    msgid_base: int
    last_seen: float
    seq_horizon: int | None
    """The highest seq the lane may take while a seq hole waits for late
    arrivals (`SeqTracker.horizon`); None: no limit."""
    msgid_horizon: int | None
    """The same for msgid (plus `msgid_base`)."""


_NO_EVENTS: list[Event] = []
"""Every stream's pending events while it has none: one shared list, never
appended to (`_emit` gives a stream its own), so an idle sender holds no list."""


class ExpressGap(NamedTuple):
    """A forward jump the express lane took (collector/_lane.c): the record after
    `seq_top` was `seq`, received at `at`; its msgid likewise (`msgid_top` to
    `msgid`, both plus msgid_base; -1: the record had none)."""

    seq_top: int
    seq: int
    msgid_top: int
    msgid: int
    at: float


class SenderStream:
    """Reassembly and accounting for one `Sender`; see the module docstring."""

    __slots__ = (
        "_basic_buf",
        "_basic_cut",
        "_basic_first",
        "_events",
        "_frags",
        "_msgid",
        "_msgid_base",
        "last_seen",
        "mode",
        "release",
        "sender",
        "seq",
        "top_ts",
    )

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.mode: Mode | None = None
        self.release: str | None = None
        self.last_seen: float | None = None
        self.seq = SeqTracker()
        self.top_ts = 0
        self._msgid: SeqTracker | None = None
        self._msgid_base = 0
        self._frags: Reassembler | None = None
        self._basic_buf: bytearray | None = None
        self._basic_cut = False
        self._basic_first = 0.0
        self._events = _NO_EVENTS

    # -- driving calls -------------------------------------------------------

    def feed(self, payload: bytes, now: float) -> None:
        """Take one UDP payload received at `now`."""
        try:
            dg = decode_datagram(payload)
        except WireError as exc:
            self._reject(exc.reason, exc.detail, len(payload), now)
        else:
            kind = type(dg)
            if kind is ExtendedMessage:
                assert isinstance(dg, ExtendedMessage)
                self._extended(dg.header, dg.body, now, now, None)
            elif kind is Fragment:
                assert isinstance(dg, Fragment)
                self._fragment(dg, now)
            else:
                assert isinstance(dg, BasicChunk)
                self._basic(dg.data, now)
        self.last_seen = now

    def expire(self, now: float) -> None:
        """Give up, as of `now`, whatever has waited past its deadline."""
        if self._frags is not None:
            for part in self._frags.expire(now):
                self._give_up(part, now)
        if self._basic_buf is not None and self._basic_first + FRAGMENT_TIMEOUT <= now:
            self._flush_basic(now, complete=False)
        self._gaps(GapKind.SEQ, self.seq.expire(now), now)
        if self._msgid is not None:
            self._gaps(GapKind.MSGID, self._msgid.expire(now), now, self._msgid_base)

    def flush(self, now: float) -> None:
        """End of input: emit everything still pending."""
        if self._frags is not None:
            for part in sorted(self._frags.flush(), key=lambda p: p.first_seen):
                self._give_up(part, now)
        if self._basic_buf is not None:
            self._flush_basic(now, complete=False)
        self._gaps(GapKind.SEQ, self.seq.flush(), now)
        if self._msgid is not None:
            self._gaps(GapKind.MSGID, self._msgid.flush(), now, self._msgid_base)

    def next_deadline(self) -> float | None:
        """The earliest time at which `expire` has something to do."""
        if (not self.seq.holes and self._basic_buf is None
                and (self._frags is None or not self._frags.pending)
                and (self._msgid is None or not self._msgid.holes)):
            return None  # the common case, checked once per datagram
        times = [self.seq.next_deadline()]
        if self._msgid is not None:
            times.append(self._msgid.next_deadline())
        if self._frags is not None:
            times.append(self._frags.next_deadline())
        if self._basic_buf is not None:
            times.append(self._basic_first + FRAGMENT_TIMEOUT)
        return min((t for t in times if t is not None), default=None)

    def events(self) -> list[Event]:
        """Drain the events produced so far."""
        out, self._events = self._events, _NO_EVENTS
        return out

    def _emit(self, event: Event) -> None:
        if self._events:
            self._events.append(event)
        else:
            self._events = [event]  # never into the shared empty list

    @property
    def buffered_bytes(self) -> int:
        """Bytes held for reassembly (for the collector's global memory bound)."""
        n = len(self._basic_buf) if self._basic_buf is not None else 0
        return n + (self._frags.buffered_bytes if self._frags is not None else 0)

    # -- the receiver's express lane ---------------------------------------------

    def express_state(self) -> ExpressState | None:
        """When the only record this stream can take without an event is the
        next one in order: where it stands (`ExpressState`). None while anything
        else is pending: a partial record, basic mode. An open hole is no
        obstacle: it waits for late arrivals (which are not the next record) and
        expires on its own; the lane only stops at the hole's horizon.

        The receiver's express lane (collector/_express.py) takes such records
        without this object, then catches it up with `express_advance`.
        """
        seq, msgid = self.seq, self._msgid
        if (self.mode is not Mode.EXTENDED or seq.top is None
                or self.last_seen is None or self._basic_buf is not None
                or (self._frags is not None and self._frags.pending)):
            return None
        if msgid is not None and msgid.top is None:
            return None
        return ExpressState(seq.top, self.top_ts, self.release,
                            msgid.top if msgid is not None and msgid.top is not None else -1,
                            self._msgid_base, self.last_seen, seq.horizon(),
                            msgid.horizon() if msgid is not None else None)

    def express_advance(self, seq: int, ts_usec: int, msgid: int, last_seen: float,
                        gaps: Sequence[ExpressGap] = ()) -> None:
        """What `feed` would have left after the express lane's records: every seq
        up to `seq` (and msgid up to `msgid`, -1: none) arrived, each the next but
        for the forward `gaps` the lane took, whose holes open here as `feed`
        opens them (with their deadlines; a hole pushed out at once is reported)."""
        top = self.seq.top or 0
        tracker = self._msgid
        for gap in gaps:
            self.seq.advance_to(gap.seq_top)
            self._gaps(GapKind.SEQ, self.seq.observe(gap.seq, gap.at), gap.at)
            if gap.msgid >= 0 and tracker is not None:
                tracker.advance_to(gap.msgid_top)
                self._gaps(GapKind.MSGID, tracker.observe(gap.msgid, gap.at), gap.at,
                           self._msgid_base)
        if seq > top:
            self.seq.advance_to(seq)
            self.top_ts = ts_usec
        if msgid >= 0 and tracker is not None:
            tracker.advance_to(msgid)
        if self.last_seen is None or last_seen > self.last_seen:
            self.last_seen = last_seen

    # -- persistence ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What a restarted receiver needs to go on without false gaps or reboots."""
        return {
            "mode": self.mode.value if self.mode else None,
            "release": self.release,
            "last_seen": self.last_seen,
            "top_ts": self.top_ts,
            "seq": self.seq.snapshot(),
            "msgid": self._msgid.snapshot() if self._msgid is not None else None,
            "msgid_base": self._msgid_base,
        }

    @classmethod
    def restore(cls, sender: Sender, state: dict[str, Any]) -> SenderStream:
        s = cls(sender)
        s.mode = Mode(state["mode"]) if state.get("mode") else None
        s.release = state.get("release")
        s.last_seen = state.get("last_seen")
        s.top_ts = int(state.get("top_ts", 0))
        s.seq = SeqTracker.restore(state.get("seq") or {})
        if state.get("msgid") is not None:
            s._msgid = SeqTracker.restore(state["msgid"])
        s._msgid_base = int(state.get("msgid_base", 0))
        return s

    def replay(self, records: Iterable[Record]) -> None:
        """Catch a restored stream up with the records stored after its snapshot.

        The collector saves snapshots now and then, not with every batch, so a
        restart after `kill -9` restores a snapshot that is behind the store.
        The records stored since are run through the same accounting, in
        the order they were stored, and whatever that finds is dropped: those
        gaps and reboots were stored with the records. Holes still open after
        the replay are forgotten, as a restore forgets them.
        """
        for r in records:
            if r.mode is Mode.EXTENDED and r.seq is not None:
                header = Header(release=r.release, facility=r.facility or 0, level=r.level or 0,
                                seq=r.seq, ts_usec=r.ts_usec or 0, flag=r.flag)
                self._extended(header, Body(text=b"", fields=r.fields), r.received,
                               r.received, None)
            else:
                if self.mode is not Mode.BASIC:
                    self._switch_mode(Mode.BASIC, r.received)
                if r.release is not None:
                    self.release = r.release
            self.last_seen = r.received if self.last_seen is None else max(
                self.last_seen, r.received)
        self._events = _NO_EVENTS
        self.seq.flush()  # holes still open are forgotten (their result is discarded)
        if self._msgid is not None:
            self._msgid.flush()

    # -- extended mode ------------------------------------------------------------

    def _fragment(self, frag: Fragment, now: float) -> None:
        h = frag.header
        verdict = self._judge(h, now)
        if verdict is Seen.DUPLICATE:
            if frag.offset == 0:
                self._emit(Duplicate(sender=self.sender, at=now, seq=h.seq))
            else:
                self._reject(RejectReason.DUPLICATE_FRAGMENT,
                             f"fragment of seq {h.seq} already delivered", len(frag.data), now)
            return
        if self._frags is None:
            self._frags = Reassembler()
        try:
            done, evicted = self._frags.add(frag, now)
        except WireError as exc:  # contradicts the pieces held, or too many of them
            self._reject(exc.reason, exc.detail, len(frag.data), now)
            return
        if evicted is not None:
            self._give_up(evicted, now)
        if done is not None:
            data, _ = done.assemble()
            self._extended(done.header, parse_body(data), done.first_seen, now, None)

    def _give_up(self, part: Partial, now: float) -> None:
        data, missing = part.assemble()
        self._emit(Incomplete(sender=self.sender, at=now, seq=part.header.seq,
                                       total=part.total, missing=missing))
        self._extended(part.header, parse_body(data), part.first_seen, now, missing)

    def _judge(self, h: Header, now: float) -> Seen:
        """Classify a header's seq against the tracker, taking reboots into account."""
        verdict = self.seq.classify(h.seq)
        if verdict is not Seen.DUPLICATE:
            return verdict
        if self.last_seen is not None and now - self.last_seen > REBOOT_SILENCE:
            return Seen.BELOW  # back after a silence: not a duplicate, a new boot
        # A duplicate is the same record again, and comes right after it (two
        # targets to one receiver, or the network). A seq seen long ago, or with a
        # timestamp after the newest one's, is another record: a new boot (a host
        # that rebooted within a second replays its log from a low seq).
        top = self.seq.top
        assert top is not None
        if top - h.seq > DUPLICATE_REACH or h.ts_usec > self.top_ts + TS_BACK_TOLERANCE_USEC:
            return Seen.BELOW
        return verdict

    def _extended(self, h: Header, body: Body, first: float, now: float,
                  missing: tuple[tuple[int, int], ...] | None) -> None:
        if self.mode is not Mode.EXTENDED:
            self._switch_mode(Mode.EXTENDED, now)
        fields = body.fields
        release = h.release
        msgid: bytes | None = None
        pstore = False
        if fields:
            # One pass for what accounting needs; the last of a key wins, as
            # sysdata follows userdata (§4.6).
            sys_release: bytes | None = None
            for key, value in fields:
                if key == b"msgid":
                    msgid = value
                elif key == b"release":
                    sys_release = value
                elif key == PSTORE_FIELD:
                    pstore = True
            if release is None and sys_release is not None:
                release = sys_release.decode("latin-1")
        # A crash dump of the previous boot, replayed by `netconsole forward`,
        # carries that boot's seq numbers: it is not accounted here.
        if not pstore and not self._account(h, release, now):
            return
        self._emit(Record(
            sender=self.sender,
            mode=Mode.EXTENDED,
            received=first,
            text=body.text,
            release=h.release,
            facility=h.facility,
            level=h.level,
            seq=h.seq,
            ts_usec=h.ts_usec,
            flag=h.flag,
            caller=h.caller,
            fields=fields,
            header_extra=h.extra,
            complete=missing is None,
            missing=missing or (),
        ))
        number = field_number(msgid) if not pstore else None
        if number is not None and number < _MSGID_ACCOUNTED:
            self._account_msgid(number, now)

    def _account(self, h: Header, release: str | None, now: float) -> bool:
        """Seq accounting for one record; False when it is a duplicate to drop."""
        seq = h.seq
        reason: RebootReason | None = None
        if release is not None and self.release is not None and release != self.release:
            reason = RebootReason.NEW_RELEASE
        else:
            verdict = self._judge(h, now)
            if verdict is Seen.DUPLICATE:
                self._emit(Duplicate(sender=self.sender, at=now, seq=seq))
                return False
            if verdict is Seen.BELOW:
                reason = RebootReason.SEQ_BACK
            elif self._time_went_back(verdict, h.ts_usec):
                reason = RebootReason.TIME_BACK
        if reason is not None:
            self._reboot(reason, seq, release, now)
        if release is not None:
            self.release = release
        lost = self.seq.observe(seq, now)
        if lost:
            self._gaps(GapKind.SEQ, lost, now)
        if self.seq.top == seq:
            self.top_ts = h.ts_usec
        return True

    def _time_went_back(self, verdict: Seen, ts_usec: int) -> bool:
        # Within one boot a higher seq never has a much earlier timestamp,
        # and a lower (late) seq never a much later one.
        if verdict is Seen.NEW:
            return ts_usec + TS_BACK_TOLERANCE_USEC < self.top_ts
        return verdict is Seen.LATE and ts_usec > self.top_ts + TS_BACK_TOLERANCE_USEC

    def _reboot(self, reason: RebootReason, seq: int, release: str | None, now: float) -> None:
        self._gaps(GapKind.SEQ, self.seq.flush(), now)
        if self._msgid is not None:
            self._gaps(GapKind.MSGID, self._msgid.flush(), now, self._msgid_base)
        self._emit(Reboot(sender=self.sender, at=now, reason=reason,
                                   previous_seq=self.seq.top, seq=seq,
                                   previous_release=self.release, release=release))
        self.seq.reset()
        self.top_ts = 0
        self._msgid = None

    def _account_msgid(self, msgid: int, now: float) -> None:
        tracker = self._msgid
        if tracker is None:
            tracker = self._msgid = SeqTracker()
            self._msgid_base = 0
        n = msgid + self._msgid_base
        if tracker.top is not None and n < tracker.top and tracker.top - n > _MSGID_MOD // 2:
            self._msgid_base += _MSGID_MOD  # the u32 wrapped
            n += _MSGID_MOD
        verdict = tracker.classify(n)
        if verdict is Seen.BELOW or verdict is Seen.DUPLICATE:
            # Seq duplicates never get here, so a msgid seen before means the
            # counting restarted (the target was re-enabled): not loss.
            self._gaps(GapKind.MSGID, tracker.flush(), now, self._msgid_base)
            tracker.reset()
            self._msgid_base = 0
            n = msgid
        self._gaps(GapKind.MSGID, tracker.observe(n, now), now, self._msgid_base)

    # -- basic mode ---------------------------------------------------------------

    def _basic(self, data: bytes, now: float) -> None:
        # A record's console text ends in a newline. Without one, more may come:
        # the rest of a 1000-byte cut, or (older kernels) the next KERN_CONT piece
        # of the line, sent as its own datagram with no prefix. So what has no
        # newline is held, and joined with what follows, until a newline, a
        # datagram that starts a new record (a printk prefix), or
        # FRAGMENT_TIMEOUT; then it is a record, incomplete if no newline came.
        buf = self._basic_buf
        if (buf is not None and not self._basic_cut and data[:1] in (b"[", b"<")
                and _PRINTK_PREFIX.match(data)):
            self._flush_basic(now, complete=False)  # a new record: the held one ended
            buf = None
        # After a whole 1000-byte datagram the next one continues it, whatever it holds.
        self._basic_cut = len(data) == MAX_PRINT_CHUNK
        if buf is not None:
            buf += data
        elif self.mode is Mode.BASIC or looks_like_console_text(data):
            # A basic sender's text is never rejected: a piece without a prefix is
            # still its console text.
            buf = self._basic_buf = bytearray(data)
            self._basic_first = now
        else:
            self._reject(RejectReason.NOT_NETCONSOLE,
                         "neither an extended header nor console text", len(data), now)
            return
        if data.endswith(b"\n") or len(buf) > MAX_BASIC_RECORD:
            self._flush_basic(now, complete=data.endswith(b"\n"))

    def _flush_basic(self, now: float, *, complete: bool) -> None:
        assert self._basic_buf is not None
        buf, first = bytes(self._basic_buf), self._basic_first
        self._basic_buf = None
        if self.mode is not Mode.BASIC:
            self._switch_mode(Mode.BASIC, now)
        lines, dropped = parse_console_text(buf)
        for n in dropped:
            self._emit(Gap(sender=self.sender, at=now, kind=GapKind.DROPPED,
                                    first=None, count=n))
        for line in lines:
            facility = level = None
            if line.syslog is not None:
                facility, level = line.syslog >> 3, line.syslog & 7
            self._emit(Record(
                sender=self.sender, mode=Mode.BASIC, received=first, text=line.text,
                facility=facility, level=level, ts_usec=line.ts_usec, caller=line.caller,
                complete=complete,
            ))

    # -- shared ---------------------------------------------------------------------

    def _switch_mode(self, mode: Mode, now: float) -> None:
        # A target is basic or extended and never mixes (§4.8); a change means
        # the sender was reconfigured, so the extended accounting starts over.
        if self.mode is not None:
            self._gaps(GapKind.SEQ, self.seq.flush(), now)
            self.seq.reset()
            self._msgid = None
        self.mode = mode

    def _gaps(self, kind: GapKind, holes: list[tuple[int, int]], now: float, base: int = 0
              ) -> None:
        for first, count in holes:
            self._emit(Gap(sender=self.sender, at=now, kind=kind,
                                    first=(first - base) % _MSGID_MOD if kind is GapKind.MSGID
                                    else first, count=count))

    def _reject(self, reason: RejectReason, detail: str, size: int, now: float) -> None:
        self._emit(Rejected(sender=self.sender, at=now, reason=reason,
                                     detail=detail, size=size))
