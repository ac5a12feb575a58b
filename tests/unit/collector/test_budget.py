"""Per-sender budgets (collector/_budget.py): a token bucket per sender."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from netconsole.collector._budget import MAX_TRACKED, Budgets


def test_a_sender_gets_its_burst_then_its_rate() -> None:
    b = Budgets(rate=100.0, burst=10.0)
    assert [b.admit("a", 0.0) for _ in range(12)] == [True] * 10 + [False] * 2
    assert b.admit("a", 0.005) is False  # half a token
    assert b.admit("a", 0.011) is True  # one token back after 10 ms
    assert b.admit("b", 0.011) is True  # another sender has its own


def test_it_saves_up_no_more_than_the_burst() -> None:
    b = Budgets(rate=100.0, burst=5.0)
    for _ in range(5):
        b.admit("a", 0.0)
    assert sum(b.admit("a", 3600.0) for _ in range(10)) == 5


def test_rate_zero_is_no_budget_and_tracks_nothing() -> None:
    b = Budgets(rate=0.0, burst=0.0)
    assert all(b.admit(i, 0.0) for i in range(1000))
    assert len(b) == 0


def test_memory_is_bounded_by_senders_tracked() -> None:
    b = Budgets(rate=1.0, burst=1.0)
    for i in range(MAX_TRACKED + 10):
        b.admit(i, 0.0)
    assert len(b) <= MAX_TRACKED
    b.forget(1.0)
    assert len(b) == 0


@given(rate=st.floats(1.0, 10_000.0), burst=st.floats(1.0, 1000.0),
       gaps=st.lists(st.floats(0.0, 0.1), min_size=1, max_size=500))
def test_admitted_never_exceeds_burst_plus_rate_times_time(
        rate: float, burst: float, gaps: list[float]) -> None:
    b = Budgets(rate=rate, burst=burst)
    now, admitted = 0.0, 0
    for gap in gaps:
        now += gap
        admitted += b.admit("s", now)
    assert admitted <= burst + rate * now + 1e-6
    # and a sender sending slower than its rate is never refused
    slow = Budgets(rate=rate, burst=burst)
    assert all(slow.admit("s", i * 1.01 / rate) for i in range(len(gaps)))


def test_a_sender_shed_lately_stays_under_its_budget_after_the_receiver_caught_up() -> None:
    b = Budgets(rate=10.0, burst=2.0)
    assert [b.admit("flood", 0.0) for _ in range(3)] == [True, True, False]
    assert b.noisy("flood", 5.0) and not b.noisy("quiet", 5.0)
    b.forget(5.0)  # caught up: the flood's bucket stays, it was shed lately
    assert b.noisy("flood", 5.0)
    b.forget(11.0)
    assert len(b) == 0 and not b.noisy("flood", 11.0)
