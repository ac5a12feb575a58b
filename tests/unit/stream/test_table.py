"""StreamTable: routing, timers, and the bounds over all senders."""

from __future__ import annotations

from netconsole.stream import Gap, Incomplete, Record, Sender, StreamTable
from netconsole.stream._fragments import FRAGMENT_TIMEOUT
from netconsole.stream._tracker import REORDER_WAIT
from netconsole.wire import OutgoingRecord, encode_extended


def sender(i: int) -> Sender:
    return Sender(host=f"10.0.0.{i}", port=6665, local_port=6666)


def frags(seq: int, size: int = 3000) -> list[bytes]:
    return encode_extended(OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=seq,
                                          text=b"x" * size))


def test_table_routes_each_sender_to_its_own_stream() -> None:
    t = StreamTable()
    a, b = frags(1), frags(1)
    t.feed(sender(1), a[0], 0.0)
    t.feed(sender(2), b[0], 0.0)
    for d in a[1:]:
        t.feed(sender(1), d, 0.0)
    recs = [e for e in t.events() if isinstance(e, Record)]
    assert [r.sender for r in recs] == [sender(1)]
    assert t.next_deadline() is not None


def test_table_expire_fires_only_due_timers() -> None:
    t = StreamTable()
    t.feed(sender(1), frags(1)[0], 0.0)
    t.feed(sender(2), frags(1)[0], 0.5)
    t.expire(1.2)
    assert [e.sender for e in t.events() if isinstance(e, Incomplete)] == [sender(1)]
    t.expire(2.0)
    assert [e.sender for e in t.events() if isinstance(e, Incomplete)] == [sender(2)]
    assert t.next_deadline() is None


def test_table_seq_hole_timer_rearms_after_fragment_timer() -> None:
    t = StreamTable()
    s = sender(1)
    for seq in (1, 5):
        t.feed(s, encode_extended(OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=seq,
                                                 text=b"a"))[0], 0.0)
    t.feed(s, frags(6)[0], 0.3)
    t.expire(0.3 + FRAGMENT_TIMEOUT)
    events = t.events()
    assert [e.seq for e in events if isinstance(e, Incomplete)] == [6]
    assert not [g for g in events if isinstance(g, Gap)]
    t.expire(REORDER_WAIT)
    assert [(g.first, g.count) for g in t.events() if isinstance(g, Gap)] == [(2, 3)]


def test_table_sheds_partial_records_past_the_global_bound() -> None:
    t = StreamTable(max_buffered=20_000)
    for i in range(40):
        t.feed(sender(i), frags(1)[0], 0.0)
    assert t.buffered_bytes <= 20_000
    incomplete = [e for e in t.events() if isinstance(e, Incomplete)]
    assert incomplete and t.forced_incomplete == len(incomplete)


def test_table_evicts_the_idlest_sender_past_max_senders() -> None:
    t = StreamTable(max_senders=3)
    d = encode_extended(OutgoingRecord(facility=0, level=6, seq=1, ts_usec=1, text=b"a"))[0]
    for i in range(5):
        t.feed(sender(i), d, float(i))
    assert set(t.streams) == {sender(2), sender(3), sender(4)}
    assert t.evicted_senders == 2


def test_table_restore_snapshots() -> None:
    t = StreamTable()
    d = encode_extended(OutgoingRecord(facility=0, level=6, seq=7, ts_usec=1, text=b"a"))[0]
    t.feed(sender(1), d, 0.0)
    saved = dict(t.snapshots())
    t2 = StreamTable()
    for s, state in saved.items():
        t2.restore(s, state)
    t2.feed(sender(1), encode_extended(OutgoingRecord(facility=0, level=6, seq=8, ts_usec=2,
                                                      text=b"b"))[0], 0.1)
    t2.flush(1.0)
    events = t2.events()
    assert [type(e).__name__ for e in events] == ["Record"]
