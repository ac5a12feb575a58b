"""A fleet's traffic for the scale-out tests: real kernel captures, many hosts.

`fleet_batches` decodes the shipped captures (tests/data/captures), gives each
scenario to several hosts, runs every host's events through the incident
detector as the receiver does, and merges all hosts' outputs in time order into
batches: the same batches go to a SQLite store and to a ClickHouse store, whose
readers must then answer the same. `fleet_senders` is the same traffic as UDP
datagrams, for real receivers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from netconsole.incidents import DetectorConfig, IncidentTable, Output
from netconsole.store import Shed
from netconsole.stream.events import (
    Duplicate,
    Gap,
    GapKind,
    Reboot,
    RebootReason,
    Record,
    Rejected,
    Sender,
)
from netconsole.wire import Mode, RejectReason
from tests.helpers import capture, decode_capture, udp_payloads

K6, K7 = "6.12.117+deb12-amd64", "7.2.13+deb14-amd64"
SCENARIOS = [(K6, "basic"), (K6, "extended"), (K6, "crash"), (K6, "panic"), (K6, "release"),
             (K6, "configfs"), (K6, "two"), (K7, "extended"), (K7, "sysdata")]
"""Basic and extended mode, fragments, an incomplete record, userdata and
sysdata, releases, oopses, WARNs and panics."""


def _time(event: Any) -> float:
    return float(event.received if isinstance(event, Record) else event.at)


def fleet_batches(copies: int = 2, size: int = 300) -> list[list[Output | Shed]]:
    """Every scenario on `copies` hosts (10.<copy>.<scenario>.15), in batches."""
    timed: list[tuple[float, int, int, Output | Shed]] = []
    for i, (kernel, scenario) in enumerate(SCENARIOS):
        events = decode_capture(capture(kernel, scenario))
        for c in range(copies):
            host = f"10.{c}.{i}.15"
            mine = [dataclasses.replace(e, sender=Sender(  # type: ignore[type-var]
                host=host, port=e.sender.port, local_port=e.sender.local_port)) for e in events]
            table = IncidentTable(DetectorConfig())
            out: list[Output | Shed] = []
            for start in range(0, len(mine), 100):
                chunk = mine[start:start + 100]
                now = max(_time(e) for e in chunk)
                out += table.process(chunk, now)
                out += table.expire(now)
            last = max(_time(e) for e in mine)
            out += table.expire(last + 30)  # reports time out, quiet hosts go silent
            out += table.expire(last + 7200)
            key = len(timed)
            timed += [(_time(e), key, n, e) for n, e in enumerate(out)]
    timed.sort(key=lambda t: t[:3])
    events = [t[3] for t in timed]
    return [events[i:i + size] for i in range(0, len(events), size)]


def odd_events(at: float) -> list[Output | Shed]:
    """What the captures lack, on one host: each kind of gap, a reboot,
    duplicates, a rejected datagram, shed datagrams."""
    s = Sender(host="10.9.9.9", port=6665, local_port=6666)

    def rec(seq: int, t: float, text: bytes) -> Record:
        return Record(sender=s, mode=Mode.EXTENDED, received=t, text=text, facility=0,
                      level=6, seq=seq, ts_usec=seq * 1000,
                      fields=((b"hostname", b"odd-host"),))

    return [
        rec(1, at, b"odd one"), rec(2, at, b"odd one"),  # twice the same text, one wake-up
        Gap(sender=s, at=at + 1, kind=GapKind.SEQ, first=3, count=5),
        Gap(sender=s, at=at + 1, kind=GapKind.MSGID, first=10, count=2),
        Gap(sender=s, at=at + 1, kind=GapKind.DROPPED, first=None, count=7),
        Gap(sender=s, at=at + 1.5, kind=GapKind.SEQ, first=100, count=(1 << 63) - 2),
        Gap(sender=s, at=at + 1.5, kind=GapKind.SEQ, first=200, count=(1 << 63) - 2),
        rec(8, at + 1, b"after the gap \xff\xfe not utf-8"),
        Duplicate(sender=s, at=at + 2, seq=8), Duplicate(sender=s, at=at + 2, seq=8),
        Rejected(sender=s, at=at + 2, reason=RejectReason.BAD_HEADER, detail="x", size=3),
        Shed(sender=s, at=at + 2, count=4),
        Reboot(sender=s, at=at + 3, reason=RebootReason.SEQ_BACK, previous_seq=8, seq=0,
               previous_release=None, release=None),
        rec(0, at + 3, b"new boot"),
    ]


def fleet_senders(copies: int, net: int) -> Iterator[tuple[str, list[bytes]]]:
    """(source address, datagrams) of each host: every scenario's datagrams to port
    6666 (a stream of its own), on `copies` hosts each, 127.<net>.<copy>.<scenario>."""
    for i, (kernel, scenario) in enumerate(SCENARIOS):
        payloads = [p for _, _, _, dport, p in udp_payloads(capture(kernel, scenario))
                    if dport == 6666]
        for c in range(copies):
            yield f"127.{net}.{10 + c}.{10 + i}", payloads
