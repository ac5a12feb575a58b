"""RFC 5424 messages from records (no I/O), and the forwarder against real local sockets."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from netconsole.outputs import (
    SD_ID,
    CommittedBatch,
    Delivered,
    SyslogOutput,
    TargetError,
    committed_batch,
    format_message,
    octet_frame,
    parse_target,
)
from netconsole.outputs.syslog import param_name, sd_escape
from netconsole.store import Shed
from netconsole.stream import Gap, GapKind, Reboot, Record, Sender
from netconsole.stream.events import RebootReason
from netconsole.wire import Mode

WEB = Sender(host="192.0.2.10", port=6665, local_port=6666)


def _record(seq: int = 7, **kw: object) -> Record:
    base: dict[str, object] = dict(sender=WEB, mode=Mode.EXTENDED, received=1_700_000_000.25,
                                   text=b"eth0: link down", facility=0, level=3, seq=seq,
                                   ts_usec=5_000_001)
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def _parts(message: bytes) -> tuple[str, str, str, str, str, str, str, bytes]:
    head, sep, rest = message.partition(b" [")
    assert sep
    sd, _, msg = (b"[" + rest).partition(b"] ")
    pri_ver, ts, host, app, procid, msgid = head.decode().split(" ")
    return pri_ver, ts, host, app, procid, msgid, sd.decode() + "]", msg


def test_header_pri_timestamp_host_app() -> None:
    pri_ver, ts, host, app, procid, msgid, sd, msg = _parts(
        format_message(Delivered(record=_record(), boot=2)))
    assert pri_ver == "<3>1"  # kern.err
    assert ts == "2023-11-14T22:13:20.250000Z"
    assert (host, app, procid, msgid) == ("192.0.2.10", "kernel", "-", "-")
    assert sd == f'[{SD_ID} seq="7" boot="2"]'
    assert msg == b"eth0: link down"


@pytest.mark.parametrize(("facility", "level", "pri"), [
    (0, 0, "<0>1"), (1, 6, "<14>1"), (3, 4, "<28>1"), (None, None, "<6>1"),
    (999, 9, "<6>1"),  # what no kernel sends: kern, info
])
def test_pri_from_facility_and_level(facility: int | None, level: int | None, pri: str) -> None:
    message = format_message(Delivered(record=_record(facility=facility, level=level), boot=None))
    assert message.startswith(pri.encode() + b" ")


def test_hostname_from_userdata_else_the_address() -> None:
    named = _record(fields=((b"hostname", b"web-1"),))
    assert _parts(format_message(Delivered(record=named, boot=0)))[2] == "web-1"
    for bad in (b"has space", b"", b"caf\xc3\xa9", b"x" * 256, b"tab\there"):
        r = _record(fields=((b"hostname", bad),))
        assert _parts(format_message(Delivered(record=r, boot=0)))[2] == "192.0.2.10"


def test_structured_data_facts_and_fields_escaped() -> None:
    r = _record(release="6.12.0", complete=False, fields=(
        (b"rack", b'a"b\\c]d'), (b"bad key=\"]", b"v"), (b"k" * 40, b"long"),
        (b"cpu", b"3"), (b"taskname", b"kworker/3:1"), (b"msgid", b"99"),
        (b"raw", b"\xff")))
    sd = _parts(format_message(Delivered(record=r, boot=4)))[6]
    assert sd == (f'[{SD_ID} seq="7" boot="4" release="6.12.0" cpu="3" taskname="kworker/3:1"'
                  f' msgid="99" incomplete="1" rack="a\\"b\\\\c\\]d" bad_key___="v"'
                  f' {"k" * 32}="long" raw="\\\\xff"]')


def test_sd_escape_and_names() -> None:
    assert sd_escape('"\\]') == '\\"\\\\\\]'
    assert param_name(b"a=b c") == "a_b_c"
    assert param_name(b"") is None


def test_msg_is_the_kernel_bytes_without_a_bom() -> None:
    for text in (b"plain", "caf\u00e9".encode(), b"\xff\xfe not utf-8", b"two\nlines"):
        message = format_message(Delivered(record=_record(text=text), boot=0))
        assert message.endswith(b"] " + text)
        assert b"\xef\xbb\xbf" not in message


def test_octet_counting_frame() -> None:
    assert octet_frame(b"<3>1 x") == b"6 <3>1 x"
    assert octet_frame("é".encode()) == b"2 \xc3\xa9"


@pytest.mark.parametrize("url", [
    "syslog://h:514", "syslog+udp://h", "syslog+tcp://:514", "syslog+tcp://h:0",
    "syslog+tcp://h:70000", "syslog+tcp://bad_host!:514", "syslog+tcp://[::zz]:514",
    "http://h:514", "syslog+tcp://h:514/path",
])
def test_bad_targets(url: str) -> None:
    with pytest.raises(TargetError):
        parse_target(url)


def test_good_targets() -> None:
    assert parse_target("syslog+tcp://[::1]:6514").url == "syslog+tcp://[::1]:6514"
    assert parse_target("syslog+udp://logs.example.net:514").host == "logs.example.net"


def test_committed_batch_numbers_boots_across_a_reboot() -> None:
    before, after = _record(seq=100), _record(seq=1)
    reboot = Reboot(sender=WEB, at=1.0, reason=RebootReason.SEQ_BACK, previous_seq=100, seq=1,
                    previous_release=None, release=None)
    gap = Gap(sender=WEB, at=1.0, kind=GapKind.SEQ, first=2, count=3)
    shed = Shed(sender=WEB, at=1.0, count=5)
    batch = committed_batch([before, reboot, after, gap, shed, object()],
                            lambda s: (1, 7) if s == WEB else None)
    assert batch.entries == (Delivered(record=before, boot=6), reboot,
                             Delivered(record=after, boot=7), gap, shed)


def _batch(n: int, start: int = 1) -> CommittedBatch:
    return CommittedBatch(tuple(Delivered(record=_record(seq=i), boot=0)
                                for i in range(start, start + n)))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_server_that_never_reads_never_blocks_deliver() -> None:
    """The server accepts and reads nothing: deliver still returns at once, what does
    not fit the bounded queue is counted as dropped."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    out = SyslogOutput(parse_target(f"syslog+tcp://127.0.0.1:{server.getsockname()[1]}"),
                       limit=100)
    try:
        for i in range(200):  # far more than the socket buffers and the queue hold
            out.deliver(_batch(500, start=i * 500))
        stats = out.stats()
        assert stats.dropped > 0 and stats.queued <= 100
    finally:
        closer = threading.Thread(target=out.close)
        closer.start()
        server.close()  # the blocked send fails: close finishes
        closer.join(30)
        assert not closer.is_alive()


def test_records_wait_for_a_server_that_is_not_there_yet() -> None:
    """No server yet: the records wait in the queue (nothing dropped within the
    bound) and all arrive, in order, once the server listens."""
    port = _free_port()
    out = SyslogOutput(parse_target(f"syslog+tcp://127.0.0.1:{port}"), limit=1000)
    got = bytearray()
    try:
        out.deliver(_batch(300))
        time.sleep(0.3)  # the first connects fail: it backs off and retries
        assert out.stats().dropped == 0
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        server.settimeout(30)
        conn, _ = server.accept()
        conn.settimeout(30)
        while got.count(b"<3>1 ") < 300:
            chunk = conn.recv(65536)
            assert chunk
            got += chunk
        stats = out.stats()
    finally:
        out.close()
    seqs = []
    rest = bytes(got)
    while rest:  # octet counting: LEN SP MSG
        length, _, rest = rest.partition(b" ")
        message, rest = rest[:int(length)], rest[int(length):]
        seqs.append(int(message.split(b'seq="')[1].split(b'"')[0]))
    assert seqs == list(range(1, 301))
    assert stats.reconnects >= 1 and stats.dropped == 0
    conn.close()
    server.close()


def test_udp_sends_one_datagram_per_record() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(10)
        out = SyslogOutput(parse_target(f"syslog+udp://127.0.0.1:{server.getsockname()[1]}"))
        try:
            out.deliver(_batch(3))
            got = [server.recv(65536) for _ in range(3)]
        finally:
            out.close()
    assert [g.split(b'seq="')[1][:1] for g in got] == [b"1", b"2", b"3"]
    assert all(g.startswith(b"<3>1 ") for g in got)
