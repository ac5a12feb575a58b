"""The sans-IO Forwarder: policy, per-target queues, the resume point, pstore."""

from __future__ import annotations

import errno

from netconsole.forward.core import Forwarder
from netconsole.forward.kmsg import KmsgRecord
from netconsole.forward.policy import Policy, PolicyConfig, Verdict
from netconsole.forward.pstore import parse_dump
from netconsole.forward.sender import Backlog, EncodeConfig, Receiver, Target
from netconsole.wire import decode_datagram
from netconsole.wire._model import ExtendedMessage

A = Receiver(host="127.0.0.1", port=1)
B = Receiver(host="127.0.0.1", port=2)


def rec(seq: int, level: int = 6, text: bytes = b"r") -> KmsgRecord:
    return KmsgRecord(facility=0, level=level, seq=seq, ts_usec=seq, text=text)


def make(**policy: int) -> Forwarder:
    return Forwarder([Target(receiver=A), Target(receiver=B, backlog=Backlog(limit=3))],
                     EncodeConfig(sysdata=frozenset({"msgid"})),
                     Policy(PolicyConfig(**policy)))


def test_forwarder_msgid_per_target_and_filtered_records_use_none() -> None:
    f = make(max_level=4)
    verdicts = [f.offer(rec(0, 3)), f.offer(rec(1, 6)), f.offer(rec(2, 4))]
    assert verdicts == [Verdict.SEND, Verdict.LEVEL, Verdict.SEND]
    out: dict[int, list[int | None]] = {1: [], 2: []}

    def send(r: Receiver, d: bytes) -> None:
        msg = decode_datagram(d)
        assert isinstance(msg, ExtendedMessage)
        out[r.port].append(msg.header.seq)
        assert dict(msg.body.fields)[b"msgid"] == (b"1" if msg.header.seq == 0 else b"2")

    assert f.flush(send, 0.0)
    assert out == {1: [0, 2], 2: [0, 2]}
    assert f.done_seq() == 2


def test_forwarder_done_seq_waits_for_the_slowest_target() -> None:
    f = make()
    for i in range(10, 13):
        f.offer(rec(i))
    down = {2}

    def send(r: Receiver, d: bytes) -> None:
        if r.port in down:
            raise OSError(errno.EHOSTUNREACH, "No route to host")

    assert not f.flush(send, 0.0)
    assert f.done_seq() == 9  # target B still holds 10..12
    assert f.next_retry() is not None
    down.clear()
    assert f.flush(send, 5.0)
    assert f.done_seq() == 12


def test_forwarder_done_seq_none_before_anything_and_when_first_is_queued() -> None:
    f = make()
    assert f.done_seq() is None
    f.offer(rec(0))
    assert f.done_seq() is None  # seq 0 still queued: nothing is done yet


def test_forwarder_full_backlog_drops_and_counts_per_target() -> None:
    f = make()
    for i in range(6):
        f.offer(rec(i))
    # B keeps the last 3 (limit 3); A keeps all six; nothing sent yet.
    assert [len(t.backlog) for t in f.targets] == [6, 3]
    assert f.targets[1].counters.backlog_dropped == 3


def test_forwarder_pstore_records_are_tagged_and_unaccounted() -> None:
    f = make()
    dump = parse_dump("dmesg-ramoops-0", b"Panic#1 Part1\n<0>[    1.000000] Kernel panic\n"
                      b"<4>[    1.000001] Call Trace:\n")
    assert f.offer_pstore(dump) == 2
    assert f.pending_tags() == {dump.digest}
    assert f.done_seq() is None
    sent: list[bytes] = []
    assert f.flush(lambda r, d: sent.append(d), 0.0)
    assert f.pending_tags() == set()
    msg = decode_datagram(sent[0])
    assert isinstance(msg, ExtendedMessage)
    assert msg.header.seq == 0 and b"msgid" not in dict(msg.body.fields)
    assert dict(msg.body.fields)[b"pstore"] == b"dmesg-ramoops-0"
