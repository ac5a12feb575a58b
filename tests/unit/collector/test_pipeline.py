"""Pipeline: the receiver's sans-IO core, driven with datagrams and explicit times.

No socket, no clock, no store: extended datagrams go in with a `now`, batches
and deadlines come out.
"""

from __future__ import annotations

import ipaddress

import pytest

from netconsole.collector._express import _lane
from netconsole.collector._metrics import Counters
from netconsole.collector._pipeline import (
    LOADED_BATCH,
    LOADED_WAIT,
    MAX_BATCH,
    STATE_EVERY,
    Batch,
    LaneReport,
    Pipeline,
)
from netconsole.incidents import (
    DEFAULT_CONFIG,
    Incident,
    Kind,
    Output,
    Phase,
    Silence,
    SilencePhase,
)
from netconsole.store import PrebuiltRecords, PrebuiltRow, Shed, open_store
from netconsole.stream import Gap, GapKind, Record, Sender
from netconsole.stream._tracker import REORDER_WAIT
from netconsole.wire import OutgoingRecord, encode_extended

HOST, PORT, LOCAL_PORT = "192.0.2.1", 6665, 6666
SENDER = Sender(host=HOST, port=PORT, local_port=LOCAL_PORT)
T0 = 1_700_000_000.0

OOPS = """\
BUG: kernel NULL pointer dereference, address: 0000000000000008
#PF: supervisor read access in kernel mode
#PF: error_code(0x0000) - not-present page
PGD 0 P4D 0
Oops: 0000 [#1] PREEMPT SMP NOPTI
CPU: 1 PID: 4242 Comm: insmod Tainted: G           O       6.1.0-18-amd64 #1 Debian 6.1.76-1
RIP: 0010:labtrig_init+0x15/0x1000 [labtrig]
Call Trace:
 <TASK>
 do_one_initcall+0x5b/0x330
 do_init_module+0x4f/0x210
 do_syscall_64+0x5b/0xc0
 entry_SYSCALL_64_after_hwframe+0x64/0xce
 </TASK>
---[ end trace 0000000000000000 ]---"""


def _datagram(seq: int, text: bytes, level: int = 6) -> bytes:
    [datagram] = encode_extended(OutgoingRecord(facility=0, level=level, seq=seq,
                                                ts_usec=seq * 1000, text=text))
    return datagram


def _pipeline(counters: Counters | None = None, sender_budget: float = 2000.0) -> Pipeline:
    return Pipeline(counters=counters or Counters(), sender_budget=sender_budget,
                    silent_after=600.0)


def _feed(pipeline: Pipeline, seq: int, text: bytes, now: float, *, level: int = 6,
          host: str = HOST, behind: bool = False) -> Sender | None:
    return pipeline.feed_datagram(_datagram(seq, text, level), host, PORT, False, LOCAL_PORT,
                                  now, behind)


def _taken(pipeline: Pipeline, now: float, **kwargs: bool) -> Batch:
    batch = pipeline.take_batch(now, **kwargs)
    assert batch is not None
    return batch


def _crash_after_a_gap(pipeline: Pipeline) -> float:
    """Records 1-2, then (3-5 lost) the oops as 6-20; returns the time of its last line."""
    assert _feed(pipeline, 1, b"eth0: link up", T0) == SENDER
    _feed(pipeline, 2, b"systemd[1]: Started cron.service", T0 + 0.01)
    now = T0 + 0.02
    for seq, line in enumerate(OOPS.split("\n"), start=6):
        _feed(pipeline, seq, line.encode(), now, level=1)
        now += 0.001
    return now - 0.001


def test_take_batch_gives_the_records_and_the_incident_after_them() -> None:
    pipeline = _pipeline()
    last = _crash_after_a_gap(pipeline)
    assert pipeline.pending == 0  # fed, not yet through the incident pass
    pipeline.expire(last)
    events = _taken(pipeline, last).events
    records = [e for e in events if isinstance(e, Record)]
    assert [r.seq for r in records] == [1, 2, *range(6, 6 + len(OOPS.split("\n")))]
    assert records[2].text.startswith(b"BUG: kernel NULL pointer dereference")
    [incident] = [e for e in events if isinstance(e, Incident)]
    assert incident.kind is Kind.OOPS and incident.phase is Phase.CLOSED
    assert incident.title.startswith("BUG: kernel NULL pointer dereference")
    assert incident.sender == SENDER
    assert events.index(incident) > events.index(records[-1])  # after the records it is made of
    assert not [e for e in events if isinstance(e, Gap)]  # late datagrams may still come


def test_a_batch_is_due_after_the_interval_later_under_load_and_at_once_when_full() -> None:
    p = _pipeline()
    assert p.flush_at(T0, 0.1) == T0 + 0.1  # nothing pending: the interval
    for seq in range(1, 11):
        p.feed_datagram(_datagram(seq, b"eth0: link up"), HOST, PORT, False, LOCAL_PORT,
                        T0, False)
    p.expire(T0)
    assert p.pending == 10 and p.flush_at(T0, 0.1) == T0 + 0.1  # quiet: the interval
    row = PrebuiltRow(host_id=1, received=T0, mode="extended", release="", facility=0,
                      level=6, seq=1, ts_usec=1, flag="-", caller="", text="eth0: link up",
                      fields="", msgid=-1, cpu=-1, taskname="", boot=0)
    p.feed_rows([row] * (LOADED_BATCH - 10))  # a run of the lane's rows counts as its rows
    assert p.pending == LOADED_BATCH
    assert p.flush_at(T0, 0.1) == T0 + LOADED_WAIT  # loaded: the batch fills longer
    assert p.flush_at(T0, 2.0) == T0 + 2.0  # never sooner than configured
    p.feed_rows([row] * (MAX_BATCH - LOADED_BATCH))
    assert p.flush_at(T0, 0.1) == T0  # full
    p.feed_rows([])  # all shed: nothing to store
    assert p.pending == MAX_BATCH
    batch = p.take_batch(T0)
    assert batch is not None and p.pending == 0 and p.flush_at(T0, 0.1) == T0 + 0.1


def test_set_budget_starts_over_only_at_another_rate() -> None:
    p = _pipeline(sender_budget=5.0)
    budgets = p.budgets
    for _ in range(20):
        budgets.admit(SENDER, T0)
    assert budgets.noisy(SENDER, T0)
    p.set_budget(5.0)  # a SIGHUP that changed something else, or failed
    assert p.budgets is budgets and p.budgets.noisy(SENDER, T0)
    p.set_budget(50.0)
    assert p.budgets.rate == 50.0 and not p.budgets.noisy(SENDER, T0)


def test_expire_gives_the_gap_at_its_deadline_not_before() -> None:
    pipeline = _pipeline()
    last = _crash_after_a_gap(pipeline)
    pipeline.expire(last)
    _taken(pipeline, last)
    gap_due = T0 + 0.02 + REORDER_WAIT  # the hole waits from the record past it
    pipeline.expire(gap_due - 0.001)  # the report's tail window ends before, with nothing
    assert pipeline.take_batch(gap_due - 0.001) is None
    assert pipeline.next_deadline() == pytest.approx(gap_due)
    pipeline.expire(gap_due)
    [gap] = _taken(pipeline, gap_due).events
    assert isinstance(gap, Gap)
    assert (gap.kind, gap.first, gap.count, gap.sender) == (GapKind.SEQ, 3, 3, SENDER)


def test_expire_starts_a_silence_after_the_crash() -> None:
    pipeline = _pipeline()
    last = _crash_after_a_gap(pipeline)
    pipeline.expire(last)
    _taken(pipeline, last)
    decided: list[tuple[float, Output | Shed | PrebuiltRecords]] = []
    now = last
    while (deadline := pipeline.next_deadline()) is not None:  # tail, gap, silence
        assert deadline > now  # expire ran everything due by then
        now = deadline
        pipeline.expire(now)
        batch = pipeline.take_batch(now)
        decided += [(now, e) for e in batch.events] if batch is not None else []
    [(at, silence)] = [(t, e) for t, e in decided if isinstance(e, Silence)]
    assert silence.phase is SilencePhase.STARTED and silence.sender == SENDER
    assert at == pytest.approx(last + DEFAULT_CONFIG.after_crash)


def test_next_deadline_is_none_with_nothing_waiting() -> None:
    pipeline = _pipeline()
    assert pipeline.next_deadline() is None
    assert pipeline.take_batch(T0) is None
    pipeline.expire(T0)
    assert pipeline.pending == 0


def test_feed_datagram_counts_what_it_rejects() -> None:
    counters = Counters()
    pipeline = _pipeline(counters)
    pipeline.set_allow([ipaddress.ip_network("198.51.100.0/24")])
    assert _feed(pipeline, 1, b"hello", T0) is None
    assert pipeline.feed_datagram(b"x" * 10, "198.51.100.7", PORT, True, LOCAL_PORT, T0,
                                  False) is None
    assert _feed(pipeline, 1, b"hello", T0, host="198.51.100.7") is not None
    assert counters.rejected == {"not_allowed": 1, "too_large": 1}


def test_feed_datagram_sheds_over_budget_while_behind_but_never_a_crash() -> None:
    counters = Counters()
    pipeline = _pipeline(counters, sender_budget=1.0)  # a burst of one record
    assert _feed(pipeline, 1, b"flood 1", T0, behind=True) == SENDER
    assert _feed(pipeline, 2, b"flood 2", T0, behind=True) is None
    assert _feed(pipeline, 3, b"flood 3", T0, behind=True) is None
    assert _feed(pipeline, 4, OOPS.split("\n")[0].encode(), T0, level=1, behind=True) == SENDER
    pipeline.expire(T0)
    events = _taken(pipeline, T0 + 0.05).events
    assert [e.seq for e in events if isinstance(e, Record)] == [1, 4]
    assert events[-1] == Shed(sender=SENDER, at=T0 + 0.05, count=2)  # one per sender and batch
    assert counters.shed == 2


def test_take_batch_saves_states_once_due() -> None:
    pipeline = _pipeline()
    _feed(pipeline, 1, b"one", T0)
    pipeline.expire(T0)
    assert _taken(pipeline, T0).states == {}  # changed just now: not due
    _feed(pipeline, 2, b"two", T0 + STATE_EVERY)
    pipeline.expire(T0 + STATE_EVERY)
    batch = _taken(pipeline, T0 + STATE_EVERY)
    assert list(batch.states) == [SENDER]
    # The store did not save them: due again, at the next batch.
    pipeline.after_write(batch, states_saved=False, holding=False)
    _feed(pipeline, 3, b"three", T0 + STATE_EVERY + 1)
    pipeline.expire(T0 + STATE_EVERY + 1)
    assert list(_taken(pipeline, T0 + STATE_EVERY + 1).states) == [SENDER]


def test_take_batch_while_holding_retries_without_states() -> None:
    pipeline = _pipeline()
    _feed(pipeline, 1, b"one", T0)
    pipeline.expire(T0)
    later = T0 + STATE_EVERY + 1
    held = _taken(pipeline, later, holding=True)
    assert [e.seq for e in held.events if isinstance(e, Record)] == [1]
    assert held.states == {}  # saved ahead of the held records, they would hide them
    assert _taken(pipeline, later, holding=True) == Batch(events=[], states={})  # a retry
    assert list(_taken(pipeline, later, final=True, holding=True).states) == [SENDER]


def test_close_flushes_the_streams_and_makes_every_state_due() -> None:
    pipeline = _pipeline()
    _feed(pipeline, 1, b"one", T0)
    _feed(pipeline, 3, b"three", T0 + 0.01)  # 2 missing: the gap still waits
    pipeline.expire(T0 + 0.01)
    _taken(pipeline, T0 + 0.01)
    pipeline.close(T0 + 0.02)
    batch = _taken(pipeline, T0 + 0.02, final=True)
    assert [(e.kind, e.first, e.count) for e in batch.events if isinstance(e, Gap)] == [
        (GapKind.SEQ, 2, 1)]
    assert list(batch.states) == [SENDER]


def test_the_final_batch_saves_every_state_with_no_event_left() -> None:
    pipeline = _pipeline()
    _feed(pipeline, 1, b"one", T0)
    pipeline.expire(T0)
    _taken(pipeline, T0)
    pipeline.close(T0 + 0.02)
    batch = pipeline.take_batch(T0 + 0.02, final=True)
    assert batch is not None and batch.events == [] and list(batch.states) == [SENDER]
    assert pipeline.take_batch(T0 + 0.03, final=True) is None  # nothing left to save


@pytest.mark.skipif(_lane is None, reason="the C express lane is not built")
def test_feed_handed_out_opens_a_lane_and_a_crash_closes_it() -> None:
    counters = Counters()
    pipeline = _pipeline(counters)
    store = open_store(":memory:")
    express = pipeline.open_express(store)
    express.lanes[LOCAL_PORT] = {}  # what `Express.receiver` makes for a socket
    pipeline.feed_handed_out(_datagram(1, b"one"), HOST, PORT, False, LOCAL_PORT, T0, False,
                             key=b"addr", lane=None)
    lane = express.of[SENDER]
    assert lane.active and lane.seq == 1
    lane.shed, lane.fresh = 3, 2  # as C leaves them after a wake-up
    pipeline.after_receive(T0, behind=False, lanes=LaneReport(shedding=[lane], touched=[lane]))
    assert (lane.shed, lane.fresh, counters.shed) == (0, 0, 3)
    lane.active = 0  # C hands out a datagram it cannot take with its lane, inactive
    pipeline.feed_handed_out(_datagram(2, OOPS.split("\n")[0].encode(), level=1), HOST, PORT,
                             False, LOCAL_PORT, T0 + 0.01, False, key=b"addr", lane=lane)
    assert SENDER not in express.of  # a report is open: every line through Python
    events = _taken(pipeline, T0 + 0.02).events
    assert [e.seq for e in events if isinstance(e, Record)] == [1, 2]
    assert events[-1] == Shed(sender=SENDER, at=T0 + 0.02, count=3)
    store.close()


@pytest.mark.skipif(_lane is None, reason="the C express lane is not built")
def test_what_the_lanes_took_is_booked_once_per_round_and_before_a_batch() -> None:
    pipeline = _pipeline()
    store = open_store(":memory:")
    express = pipeline.open_express(store)
    express.lanes[LOCAL_PORT] = {}
    pipeline.feed_handed_out(_datagram(1, b"one"), HOST, PORT, False, LOCAL_PORT, T0, False,
                             key=b"addr", lane=None)
    lane = express.of[SENDER]
    detector = pipeline.incidents.detectors[SENDER]
    lane.fresh, lane.last = 2, T0
    pipeline.after_receive(T0, behind=False, lanes=LaneReport(shedding=[], touched=[lane]))
    assert lane.fresh == 0 and detector.last_record == T0  # the first round: at once
    lane.fresh, lane.last = 5, T0 + 0.01  # C lists a lane once, until it is booked
    pipeline.after_receive(T0 + 0.01, behind=False,
                           lanes=LaneReport(shedding=[], touched=[lane]))
    pipeline.after_receive(T0 + 0.02, behind=False, lanes=LaneReport(shedding=[], touched=[]))
    assert lane.fresh == 5 and detector.last_record == T0  # within TOOK_EVERY: waits
    _taken(pipeline, T0 + 0.03)
    assert lane.fresh == 0 and detector.last_record == T0 + 0.01  # as received
    store.close()
