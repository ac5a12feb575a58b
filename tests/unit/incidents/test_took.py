"""The express lane's hooks in incidents: `IncidentDetector.took`,
`IncidentTable.took` and `IncidentTable.busy`.

The receiver's express lane takes records that start nothing without handing
them to the detector, and tells it afterwards how many it took at one `now`.
The detector must then count activity (and so detect silence) exactly as if
it had seen each record through `IncidentTable.process`.
"""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from netconsole.incidents import (
    DetectorConfig,
    Incident,
    IncidentDetector,
    IncidentEvent,
    IncidentTable,
    Output,
    Silence,
    SilencePhase,
    SilenceReason,
)
from netconsole.incidents._patterns import TRIGGER_BYTES
from netconsole.stream.events import Record, Sender
from netconsole.wire import Mode
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import HOST, OTHER, T0, expire_until, lines_to_records

# Small enough that a few rounds make a host chatty and then silent.
CONFIG = DetectorConfig(quiet_after=10.0, chatty_records=5, after_crash=3.0, crash_recent=20.0)

OOPS_LINE = b"BUG: kernel NULL pointer dereference, address: 0000000000000008"


def _plain(n: int, now: float, seq: int, names: list[bytes | None],
           sender: Sender = HOST) -> list[Record]:
    """`n` ordinary records received at `now`, the i-th with hostname `names[i]` if any."""
    out = []
    for i in range(n):
        name = names[i % len(names)] if names else None
        fields: tuple[tuple[bytes, bytes], ...] = ((b"cpu", b"1"), (b"taskname", b"kworker/1:0"))
        if name is not None:
            fields = ((b"hostname", name), *fields)
        text = b"eth0: link up %d" % (seq + i)
        assert TRIGGER_BYTES.search(text) is None
        out.append(Record(sender=sender, mode=Mode.EXTENDED, received=now, text=text,
                          facility=0, level=6, seq=seq + i, ts_usec=(seq + i) * 1000,
                          fields=fields))
    return out


def _observable(d: IncidentDetector) -> tuple[object, ...]:
    return (d.last_record, d.name, d._window_start, d._window_count, d._previous_count,
            d.next_deadline(), d.busy)


def _decided(out: list[Output]) -> list[IncidentEvent]:
    """The incident events among a table's output (the records are passed through)."""
    return [e for e in out if isinstance(e, Incident | Silence)]


def _same(a: IncidentTable, b: IncidentTable, sender: Sender = HOST) -> None:
    da, db = a.detectors.get(sender), b.detectors.get(sender)
    assert (da is None) == (db is None)
    if da is not None and db is not None:
        assert _observable(db) == _observable(da)
    assert b.busy(sender) == a.busy(sender)
    assert b.next_deadline() == a.next_deadline()


_rounds = st.lists(
    st.tuples(
        st.integers(1, 12),  # records received at this `now`
        st.sampled_from([0.0, 0.001, 0.5, 2.0, 4.0, 9.99, 10.0, 12.0, 25.0]),  # time step
        st.integers(0, 12),  # of which the lane takes the first ... (the rest: `process`)
        st.lists(st.sampled_from([None, None, b"web-1", b"web-2"]), max_size=3),  # hostnames
    ),
    min_size=1, max_size=10,
)


@settings(max_examples=300, deadline=None)
@given(rounds=_rounds, crash=st.booleans(), other=st.booleans())
def test_took_counts_like_processing_each_record(
    rounds: list[tuple[int, float, int, list[bytes | None]]], crash: bool, other: bool,
) -> None:
    a, b = IncidentTable(CONFIG), IncidentTable(CONFIG)
    out_a: list[Output] = []
    out_b: list[Output] = []
    now, seq = T0, 1000
    if crash:  # a closed crash report: `after_crash` silence applies, not busy once closed
        lines = lines_to_records(reports.KERNEL_BUG, t=now, seq=seq)
        for r in lines:
            out_a += a.process([r], r.received)
            out_b += b.process([r], r.received)
        now, seq = lines[-1].received, seq + len(lines)
    for count, step, lane, names in rounds:
        now += step
        out_a += expire_until(a, now)
        out_b += expire_until(b, now)
        assert _decided(out_b) == _decided(out_a)
        _same(a, b)
        batch = _plain(count, now, seq, names)
        seq += count
        if other:  # another sender's records in the same batch change nothing here
            batch += _plain(2, now, seq, [], sender=OTHER)
        out_a += a.process(batch, now)
        # The lane takes only from a sender that is not busy, and a count of at least one.
        took = min(lane, count) if not b.busy(HOST) else 0
        if took:
            taken = [r.field(b"hostname") for r in batch[:took]]
            newest = next((n for n in reversed(taken) if n is not None), None)
            b.took(HOST, took, now, newest)
        out_b += b.process(batch[took:], now)
        assert _decided(out_b) == _decided(out_a)
        _same(a, b)
        _same(a, b, OTHER)
    # Later expiry at several times: silences (QUIET or AFTER_CRASH) start alike.
    for later in (0.5, 2.9, 3.0, 9.9, 10.0, 10.1, 20.0, 40.0):
        out_a += a.expire(now + later)
        out_b += b.expire(now + later)
        assert _decided(out_b) == _decided(out_a)
        _same(a, b)
    out_a += expire_until(a, now + 100)
    out_b += expire_until(b, now + 100)
    assert _decided(out_b) == _decided(out_a)
    _same(a, b)
    for e in _decided(out_a):
        if isinstance(e, Silence):
            event(f"silence {e.phase.value} {e.reason.value}")


def test_took_makes_a_host_chatty_and_then_silent() -> None:
    """`took` alone (no record through `process` after the first) counts toward
    `chatty_records`, and the silence starts `quiet_after` after its `now`."""
    table = IncidentTable(CONFIG)
    table.process(_plain(1, T0, 1, [b"web-1"]), T0)
    assert not table.busy(HOST)
    table.took(HOST, 4, T0 + 1, None)  # 5 records in the window: chatty
    detector = table.detectors[HOST]
    assert (detector.last_record, detector._window_count, detector.name) == (T0 + 1, 5, "web-1")
    assert detector.next_deadline() == T0 + 1 + CONFIG.quiet_after
    # The table's entry queued by `process` (when to forget the host) stays: earlier is safe.
    assert table.next_deadline() == T0 + CONFIG.quiet_after
    assert table.expire(T0 + CONFIG.quiet_after) == []
    assert table.next_deadline() == T0 + 1 + CONFIG.quiet_after
    assert table.expire(T0 + 1 + CONFIG.quiet_after - 0.01) == []
    [silence] = table.expire(T0 + 1 + CONFIG.quiet_after)
    assert isinstance(silence, Silence)
    assert (silence.phase, silence.reason, silence.last_record, silence.name) == (
        SilencePhase.STARTED, SilenceReason.QUIET, T0 + 1, "web-1")
    assert table.busy(HOST)  # while silent, every record must go through `process`


def test_took_of_one_record_is_process_of_one() -> None:
    a, b = IncidentTable(CONFIG), IncidentTable(CONFIG)
    for t in (T0, T0 + 0.5, T0 + 11, T0 + 11, T0 + 35):
        a.process(_plain(1, t, 1, [b"h1"]), t)
        b.took(HOST, 1, t, b"h1")
        _same(a, b)


def test_took_creates_the_detector_of_a_new_sender() -> None:
    table = IncidentTable(CONFIG)
    table.took(HOST, 3, T0, b"h\xffx")
    d = table.detectors[HOST]
    assert (d.last_record, d._window_start, d._window_count, d.name) == (T0, T0, 3, "h\ufffdx")
    assert table.next_deadline() == T0 + CONFIG.quiet_after  # when to forget it


def test_took_rolls_the_window_as_process_does() -> None:
    a, b = IncidentTable(CONFIG), IncidentTable(CONFIG)
    for t, n in ((T0, 7), (T0 + 10, 2), (T0 + 15, 1), (T0 + 40, 6)):
        a.process(_plain(n, t, 1, []), t)
        b.took(HOST, n, t, None)
        _same(a, b)
    d = b.detectors[HOST]
    assert (d._window_start, d._window_count, d._previous_count) == (T0 + 40, 6, 0)


def test_busy_is_false_for_a_fresh_sender() -> None:
    table = IncidentTable(CONFIG)
    assert not table.busy(HOST)
    table.process(_plain(3, T0, 1, []), T0)
    assert not table.busy(HOST)
    assert not table.detectors[HOST].busy


def test_busy_while_a_report_is_open() -> None:
    config = DetectorConfig(quiet_after=10.0, chatty_records=5, after_crash=10.0)
    table = IncidentTable(config)
    table.process(_plain(2, T0, 1, []), T0)
    assert TRIGGER_BYTES.search(OOPS_LINE) is not None
    opener = Record(sender=HOST, mode=Mode.EXTENDED, received=T0 + 1, text=OOPS_LINE,
                    facility=0, level=1, seq=3, ts_usec=3000)
    table.process([opener], T0 + 1)
    assert table.busy(HOST)
    assert not table.busy(OTHER)
    # The report times out (truncated): busy again only for a silence after the crash.
    expire_until(table, T0 + 1 + config.report_timeout)
    assert not table.detectors[HOST]._lanes
    assert not table.busy(HOST)
    expire_until(table, T0 + 1 + config.after_crash)
    assert table.detectors[HOST]._silence is not None
    assert table.busy(HOST)
    table.process(_plain(1, T0 + 30, 4, []), T0 + 30)  # the next record ends the silence
    assert not table.busy(HOST)
