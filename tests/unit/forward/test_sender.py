"""Receivers, per-target msgid and backlog, and what each record carries."""

from __future__ import annotations

import errno
import socket

import pytest

from netconsole.forward.kmsg import KmsgRecord, parse_kmsg
from netconsole.forward.sender import (
    RETRY_SECONDS,
    WARMUP_BURST,
    WARMUP_SECONDS,
    AddressError,
    Backlog,
    EncodeConfig,
    Queued,
    Receiver,
    Target,
    UdpTransport,
    encode,
    outgoing,
    parse_receiver,
)
from netconsole.wire import Flag, decode_datagram
from netconsole.wire._model import ExtendedMessage

R = Receiver(host="127.0.0.1", port=6666)


@pytest.mark.parametrize(("text", "host", "port"), [
    ("10.0.0.5", "10.0.0.5", 6666),
    ("10.0.0.5:514", "10.0.0.5", 514),
    ("logs.example.net:7000", "logs.example.net", 7000),
    ("[2001:db8::1]:6666", "2001:db8::1", 6666),
    ("[::1]", "::1", 6666),
    ("::1", "::1", 6666),
])
def test_parse_receiver_forms(text: str, host: str, port: int) -> None:
    assert parse_receiver(text) == Receiver(host=host, port=port)


@pytest.mark.parametrize("text", ["", ":6666", "10.0.0.5:0", "10.0.0.5:70000", "h:port",
                                  "[::1", "[::1]6666", "[not-v6]:1"])
def test_parse_receiver_rejects(text: str) -> None:
    with pytest.raises(AddressError):
        parse_receiver(text)


def test_receiver_str_brackets_ipv6() -> None:
    assert str(Receiver(host="::1", port=1)) == "[::1]:1"
    assert str(R) == "127.0.0.1:6666"


def test_backlog_is_bounded_and_drops_the_oldest() -> None:
    b = Backlog(limit=3)
    dropped = [b.push(Queued(seq=i, datagrams=[b"%d" % i])) for i in range(5)]
    assert [d.seq if d else None for d in dropped] == [None, None, None, 0, 1]
    assert len(b) == 3 and b.first_seq() == 2


def test_backlog_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Backlog(limit=0)


def test_target_msgid_starts_at_one_per_target() -> None:
    a, b = Target(receiver=R), Target(receiver=R)
    assert [a.next_msgid(), a.next_msgid(), b.next_msgid()] == [1, 2, 1]


def test_target_msgid_wraps_like_a_u32() -> None:
    t = Target(receiver=R, msgid=(1 << 32) - 1)
    assert t.next_msgid() == 0


class FlakySend:
    """A send double: fails while `down`, records what went out."""

    def __init__(self) -> None:
        self.down = False
        self.out: list[bytes] = []

    def __call__(self, receiver: Receiver, datagram: bytes) -> None:
        if self.down:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        self.out.append(datagram)


def test_target_keeps_records_while_the_network_is_down_and_sends_them_later() -> None:
    t = Target(receiver=R, backlog=Backlog(limit=100))
    send = FlakySend()
    send.down = True
    for i in range(5):
        t.queue(i, [b"r%d" % i])
    assert not t.flush(send, now=0.0)
    assert t.counters.send_errors == 1
    assert "unreachable" in (t.counters.last_error or "")
    send.down = False
    assert not t.flush(send, now=RETRY_SECONDS / 2)  # still waiting before the retry
    assert send.out == []
    assert t.flush(send, now=RETRY_SECONDS)
    assert send.out == [b"r0", b"r1", b"r2", b"r3", b"r4"]
    assert t.counters.records == 5 and len(t.backlog) == 0


def test_target_first_large_burst_sends_one_datagram_then_waits() -> None:
    t = Target(receiver=R)
    n = WARMUP_BURST + 5
    for i in range(n):
        t.queue(i, [b"r%d" % i])
    send = FlakySend()
    assert not t.flush(send, 0.0)
    assert send.out == [b"r0"]  # the neighbour resolves on this one
    assert not t.flush(send, WARMUP_SECONDS / 2)
    assert send.out == [b"r0"]
    assert t.flush(send, WARMUP_SECONDS)
    assert send.out == [b"r%d" % i for i in range(n)]
    for i in range(n, 2 * n):  # warm now: the next burst goes at once
        t.queue(i, [b"r%d" % i])
    assert t.flush(send, WARMUP_SECONDS)
    assert len(send.out) == 2 * n


def test_target_small_burst_is_not_delayed() -> None:
    t = Target(receiver=R)
    for i in range(WARMUP_BURST):
        t.queue(i, [b"r%d" % i])
    send = FlakySend()
    assert t.flush(send, 0.0)
    assert len(send.out) == WARMUP_BURST


def test_target_warms_up_again_after_a_failed_send() -> None:
    t = Target(receiver=R)
    send = FlakySend()
    t.queue(0, [b"a"])
    assert t.flush(send, 0.0) and t.warm
    send.down = True
    for i in range(1, WARMUP_BURST + 3):
        t.queue(i, [b"r%d" % i])
    assert not t.flush(send, 1.0)
    assert not t.warm
    send.down = False
    assert not t.flush(send, 1.0 + RETRY_SECONDS)
    assert send.out == [b"a", b"r1"]


def test_target_backlog_overflow_is_counted() -> None:
    t = Target(receiver=R, backlog=Backlog(limit=2))
    for i in range(5):
        t.queue(i, [b"r%d" % i])
    assert t.counters.backlog_dropped == 3
    send = FlakySend()
    t.flush(send, 0.0)
    assert send.out == [b"r3", b"r4"]


def test_target_resumes_a_fragmented_record_where_it_failed() -> None:
    t = Target(receiver=R)
    t.queue(0, [b"f0", b"f1", b"f2"])
    sent: list[bytes] = []

    def send(receiver: Receiver, d: bytes) -> None:
        if d == b"f1" and len(sent) == 1:
            sent.append(b"fail")
            raise OSError(errno.ENOBUFS, "No buffer space available")
        sent.append(d)

    assert not t.flush(send, 0.0)
    assert t.flush(send, 10.0)
    assert [d for d in sent if d != b"fail"] == [b"f0", b"f1", b"f2"]


KREC = parse_kmsg(b"6,42,1000,-,caller=C3;hello\n SUBSYSTEM=net\n DEVICE=n2\n")


def test_outgoing_sysdata_in_kernel_order_and_labels_first() -> None:
    cfg = EncodeConfig(labels=((b"hostname", b"web1"),),
                       sysdata=frozenset({"msgid", "release", "taskname", "cpu"}),
                       kernel_release="6.1.0-9-amd64")
    out = outgoing(KREC, cfg, msgid=7, taskname=b"kworker/3:1")
    assert out.userdata == ((b"hostname", b"web1"),)
    assert out.sysdata == ((b"cpu", b"3"), (b"taskname", b"kworker/3:1"),
                           (b"release", b"6.1.0-9-amd64"), (b"msgid", b"7"))
    [dg] = encode(out)
    assert dg == (b"6,42,1000,-,caller=C3;hello\n SUBSYSTEM=net\n DEVICE=n2\n"
                  b" hostname=web1\n cpu=3\n taskname=kworker/3:1\n release=6.1.0-9-amd64\n"
                  b" msgid=7\n")


def test_outgoing_leaves_out_unknown_sysdata() -> None:
    rec = parse_kmsg(b"6,1,1,-;no caller\n")
    out = outgoing(rec, EncodeConfig(sysdata=frozenset({"cpu", "taskname"})), msgid=None)
    assert out.sysdata == ()


def test_outgoing_release_prefix() -> None:
    [dg] = encode(outgoing(KREC, EncodeConfig(release="6.1.0-9-amd64"), msgid=None))
    assert dg.startswith(b"6.1.0-9-amd64,6,42,1000,-,caller=C3;hello\n")


def test_outgoing_normalises_old_kernel_records() -> None:
    rec = KmsgRecord(facility=0, level=6, seq=1, ts_usec=1, text=b"x", flag=Flag.CONT_FRAGMENT,
                     dictionary=((b"SUBSYSTEM", b"usb"), (b"CODE_FILE", b"drivers/usb.c")))
    out = outgoing(rec, EncodeConfig(labels=((b"k", b"v"),)), msgid=None)
    assert out.flag is Flag.CONT
    assert out.dictionary == ((b"SUBSYSTEM", b"usb"),)
    encode(out)  # a current kernel could send it


def test_outgoing_pstore_marking_no_release_no_sysdata() -> None:
    cfg = EncodeConfig(release="6.1.0", labels=((b"hostname", b"web1"),),
                       sysdata=frozenset({"msgid", "release"}), kernel_release="6.1.0")
    out = outgoing(KREC, cfg, msgid=None, pstore="dmesg-ramoops-0")
    assert out.release is None and out.sysdata == ()
    assert out.userdata == ((b"hostname", b"web1"), (b"pstore", b"dmesg-ramoops-0"),
                            (b"boot", b"previous"))
    [dg] = encode(out)
    msg = decode_datagram(dg)
    assert isinstance(msg, ExtendedMessage)
    assert msg.body.fields[-2:] == ((b"pstore", b"dmesg-ramoops-0"), (b"boot", b"previous"))


def test_encode_config_rejects_unknown_sysdata() -> None:
    with pytest.raises(ValueError):
        EncodeConfig(sysdata=frozenset({"pid"}))


def test_udp_transport_sends_from_the_source_port_over_loopback() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(10)
        target = Receiver(host="127.0.0.1", port=rx.getsockname()[1])
        tx = UdpTransport(local_port=0)
        try:
            tx.prepare([target, Receiver(host="not-an-ip.invalid", port=1)])
            tx.send(target, b"6,0,0,-;hi\n")
            data, (_, sport) = rx.recvfrom(2000)
        finally:
            tx.close()
    assert data == b"6,0,0,-;hi\n"
    assert sport != 0


def test_udp_transport_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as rx:
        try:
            rx.bind(("::1", 0))
        except OSError:
            pytest.skip("no ::1")
        rx.settimeout(10)
        tx = UdpTransport(local_port=0)
        try:
            tx.send(Receiver(host="::1", port=rx.getsockname()[1]), b"x")
            assert rx.recvfrom(10)[0] == b"x"
        finally:
            tx.close()


def test_udp_transport_unresolvable_name_is_a_send_error() -> None:
    tx = UdpTransport(local_port=0)
    with pytest.raises(OSError):
        tx.send(Receiver(host="does-not-exist.invalid", port=6666), b"x")
    tx.close()
