"""Level filter, token bucket and the crash window."""

from __future__ import annotations

import pytest

from netconsole.forward.kmsg import KmsgRecord
from netconsole.forward.policy import (
    CRASH_WINDOW_USEC,
    Policy,
    PolicyConfig,
    TokenBucket,
    Verdict,
    is_crash_line,
    parse_level,
)

CRASH_LINES = [
    b"Kernel panic - not syncing: sysrq triggered crash",
    b"Oops: 0002 [#1] PREEMPT SMP NOPTI",
    b"BUG: kernel NULL pointer dereference, address: 0000000000000000",
    b"kernel BUG at mm/slub.c:4242!",
    b"WARNING: CPU: 1 PID: 42 at net/core/dev.c:3200 skb_warn_bad_offload+0x5f/0x70",
    b"------------[ cut here ]------------",
    b"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]",
    b"Watchdog detected hard LOCKUP on cpu 3",
    b"INFO: task kworker/0:1:42 blocked for more than 120 seconds.",
    b"Call Trace:",
    b"RIP: 0010:sysrq_handle_crash+0x16/0x20",
    b"---[ end trace 0000000000000000 ]---",
    b"---[ end Kernel panic - not syncing: Fatal exception ]---",
    b"rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:",
    b"stress invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0",
    b"general protection fault, probably for non-canonical address 0xdead000000000100",
]


def rec(seq: int, text: bytes = b"chatter", level: int = 6, ts_usec: int | None = None
        ) -> KmsgRecord:
    return KmsgRecord(facility=0, level=level, seq=seq,
                      ts_usec=seq if ts_usec is None else ts_usec, text=text)


@pytest.mark.parametrize("text", CRASH_LINES)
def test_is_crash_line_matches_crash_output(text: bytes) -> None:
    assert is_crash_line(text)


@pytest.mark.parametrize("text", [b"e1000e: eth0 NIC Link is Up 1000 Mbps",
                                  b"systemd[1]: Started Journal Service.",
                                  b"random: crng init done"])
def test_is_crash_line_ignores_ordinary_lines(text: bytes) -> None:
    assert not is_crash_line(text)


def test_token_bucket_burst_then_rate() -> None:
    b = TokenBucket(rate=2.0, burst=3)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5)  # one token back after half a second at 2/s
    assert not b.take(0.5)
    assert [b.take(100.0) for _ in range(4)] == [True, True, True, False]  # capped at burst


def test_token_bucket_time_going_back_adds_nothing() -> None:
    b = TokenBucket(rate=1.0, burst=1)
    assert b.take(10.0)
    assert not b.take(5.0)
    assert not b.take(10.5)
    assert b.take(11.0)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_token_bucket_rejects_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


def test_policy_rate_limit_never_drops_crash_lines() -> None:
    # One record allowed at once, almost no refill: a flood of chatter is cut,
    # every crash line of an oops report in the middle of it still passes.
    p = Policy(PolicyConfig(rate=0.001, burst=1))
    verdicts = []
    seq = 0
    for _ in range(50):
        verdicts.append((b"chatter", p.judge(rec(seq, ts_usec=0))))
        seq += 1
    for text in CRASH_LINES:
        verdicts.append((text, p.judge(rec(seq, text, ts_usec=0))))
        seq += 1
    crash = [v for t, v in verdicts if t != b"chatter"]
    chatter = [v for t, v in verdicts if t == b"chatter"]
    assert crash == [Verdict.CRASH] * len(CRASH_LINES)
    assert chatter.count(Verdict.SEND) == 1
    assert chatter.count(Verdict.RATE) == 49


def test_policy_crash_window_passes_the_lines_between_patterns() -> None:
    p = Policy(PolicyConfig(max_level=3, rate=0.001, burst=1))
    assert p.judge(rec(0, b"Oops: 0002 [#1] SMP", level=4, ts_usec=1_000_000)) is Verdict.CRASH
    # Register dump lines match no pattern, are info level, and the bucket is empty.
    for i in range(1, 20):
        assert p.judge(rec(i, b"RAX: 0000000000000000 RBX: ffff", level=6,
                           ts_usec=1_000_000 + i)) is Verdict.CRASH
    late = rec(20, b"much later", level=6, ts_usec=1_000_000 + CRASH_WINDOW_USEC + 1)
    assert p.judge(late) is Verdict.LEVEL


def test_policy_level_filter() -> None:
    p = Policy(PolicyConfig(max_level=4))
    assert [p.judge(rec(i, level=lvl)) for i, lvl in enumerate([0, 3, 4, 5, 7])] == [
        Verdict.SEND, Verdict.SEND, Verdict.SEND, Verdict.LEVEL, Verdict.LEVEL]


def test_policy_rate_follows_kernel_time_not_arrival() -> None:
    # A replayed buffer: records logged one second apart all pass at 1/s, burst 1.
    p = Policy(PolicyConfig(rate=1.0, burst=1))
    assert all(p.judge(rec(i, ts_usec=i * 1_000_000)) is Verdict.SEND for i in range(10))


@pytest.mark.parametrize("kw", [{"max_level": 8}, {"rate": 0.0}, {"burst": 0}])
def test_policy_config_validates(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PolicyConfig(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "level"), [("0", 0), ("7", 7), ("warning", 4), ("WARN", 4),
                                             ("err", 3), (" info ", 6)])
def test_parse_level_numbers_and_names(text: str, level: int) -> None:
    assert parse_level(text) == level


@pytest.mark.parametrize("text", ["8", "-1", "loud", ""])
def test_parse_level_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_level(text)


def _everyday_lines() -> list[str]:
    """Real hosts' dmesg (the doctor's snapshots), timestamps cut: no crash in them."""
    from pathlib import Path

    lines = []
    for f in sorted(Path(__file__).parents[2].glob("data/snapshots/*/dmesg.txt")):
        for line in f.read_text(errors="replace").splitlines():
            lines.append(line.split("] ", 1)[1] if line.startswith("[") else line)
    return lines


def test_forward_and_the_receiver_share_one_crash_vocabulary() -> None:
    """Every line the receiver starts an incident with is one forward never rate-limits
    (kernel-netconsole.md §6), and a line neither side calls a crash passes neither."""
    from netconsole.incidents._patterns import match_start
    from tests.unit.incidents.reports import corpus_lines

    found = [(line, m[0].kind) for line in corpus_lines() if (m := match_start(line))]
    assert len({kind for _, kind in found}) > 10
    assert [line for line, _ in found if not is_crash_line(line.encode())] == []
    assert is_crash_line(b"sd 0:0:0:0: [sda] tag#0 CDB: Read(10)\nBuffer I/O error on dev "
                         b"sda1, logical block 0, async page read")
    everyday = _everyday_lines()
    assert len(everyday) > 50
    assert [line for line in everyday if match_start(line) or is_crash_line(line.encode())] == []


def test_policy_one_line_kinds_pass_but_open_no_window() -> None:
    # An I/O error is a whole incident in one line: it passes, what follows is judged as usual.
    p = Policy(PolicyConfig(max_level=3, rate=0.001, burst=1))
    io = b"blk_update_request: I/O error, dev sda, sector 2048 op 0x0:(READ)"
    assert p.judge(rec(0, io, level=3, ts_usec=1_000_000)) is Verdict.CRASH
    assert p.judge(rec(1, b"chatter", level=6, ts_usec=1_000_001)) is Verdict.LEVEL
    assert p.judge(rec(2, io, level=3, ts_usec=1_000_002)) is Verdict.CRASH
