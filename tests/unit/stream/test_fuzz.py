"""A million random and mutated datagrams through decode + stream.

No exception may escape, every datagram must come out as part of a record or as a
counted event, and the memory held per sender must stay within its bounds.
"""

from __future__ import annotations

import random
import resource

import pytest

from netconsole.stream import Rejected, Sender, SenderStream
from netconsole.stream._fragments import MAX_PENDING_RECORDS
from netconsole.wire import MAX_FRAGMENTED_TOTAL
from tests.helpers import SCENARIOS, capture, udp_payloads

FUZZ_DATAGRAMS = 1_000_000


def _seeds() -> list[bytes]:
    out: list[bytes] = []
    for kernel, scenario in SCENARIOS:
        if scenario != "burst":
            out += [p for *_, p in udp_payloads(capture(kernel, scenario))]
    return out


def _mutate(rnd: random.Random, seeds: list[bytes]) -> bytes:
    pick = rnd.random()
    if pick < 0.15:
        return rnd.randbytes(rnd.randrange(0, 1200))
    d = bytearray(rnd.choice(seeds))
    if pick < 0.35:
        for _ in range(rnd.randrange(1, 8)):
            if d:
                d[rnd.randrange(len(d))] = rnd.randrange(256)
    elif pick < 0.5:
        d = d[: rnd.randrange(len(d) + 1)]
    elif pick < 0.65:
        # a forged fragment header with random numbers
        off, total = rnd.randrange(0, 5000), rnd.randrange(0, 200_000)
        seq = rnd.randrange(0, 50)
        return b"6,%d,%d,-,ncfrag=%d/%d;" % (seq, seq, off, total) + rnd.randbytes(
            rnd.randrange(0, 900))
    elif pick < 0.75:
        pos = rnd.randrange(len(d) + 1)
        d[pos:pos] = rnd.choice([b";", b",", b"\\x", b"\n", b"ncfrag=", b"\x00", b" k=v\n"])
    return bytes(d)


@pytest.mark.fuzz
def test_fuzz_a_million_datagrams() -> None:
    rnd = random.Random(20261126)
    seeds = _seeds()
    streams = [SenderStream(Sender(host=f"198.51.100.{i}", port=6665, local_port=6666))
               for i in range(8)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    now = 0.0
    events = rejected = 0
    for i in range(FUZZ_DATAGRAMS):
        st = streams[i & 7]
        st.feed(_mutate(rnd, seeds), now)
        now += 0.0001
        if i % 997 == 0:
            st.expire(now)
        for e in st.events():
            events += 1
            rejected += isinstance(e, Rejected)
        if i % 50_000 == 0:
            for s in streams:
                assert s._frags is None or len(s._frags.pending) <= MAX_PENDING_RECORDS
                assert s.buffered_bytes <= MAX_PENDING_RECORDS * MAX_FRAGMENTED_TOTAL
    for st in streams:
        st.flush(now)
        events += len(st.events())
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert events > FUZZ_DATAGRAMS // 2
    assert rejected > FUZZ_DATAGRAMS // 10
    assert rss_growth_kib < 200 * 1024  # bounded: far below what a leak would take
