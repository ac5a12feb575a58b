"""The real kernel captures (tests/data/captures, copied from shared/captures).

Two checks on every capture:
* decoding gives exactly the records the guest's serial console printed;
* re-encoding every decoded record gives back the kernel's datagrams, byte for byte.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from netconsole.stream import Gap, GapKind, Incomplete, Reboot, Record
from netconsole.wire import (
    SYSDATA_ORDER,
    KernelVersion,
    Mode,
    OutgoingRecord,
    encode_basic,
    encode_extended,
    format_console_text,
)
from tests.helpers import (
    SCENARIOS,
    capture,
    console_lines,
    decode_capture,
    record_lines,
    records,
    udp_payloads,
)

# Lines the guest printed after `poweroff` took the network down: the kernel
# could not send them (virtio-net reports "Unexpected TXQ queue failure").
_AFTER_NETWORK_DOWN = (b"ACPI: PM: Preparing to enter system sleep state S5",
                       b"net eth0: Unexpected TXQ (0) queue failure: -5",
                       b"reboot: Power down")


def _streams(recs: list[Record]) -> dict[int, list[Record]]:
    by_port: dict[int, list[Record]] = defaultdict(list)
    for r in recs:
        by_port[r.sender.local_port].append(r)
    return by_port


@pytest.mark.parametrize(("kernel", "scenario"), SCENARIOS)
def test_capture_decodes_to_the_console_records(kernel: str, scenario: str) -> None:
    events = decode_capture(capture(kernel, scenario))
    recs = records(events)
    assert recs, "no records decoded"
    console = Counter(console_lines(kernel, scenario))
    for port, stream in _streams(recs).items():
        decoded = Counter(record_lines(stream))
        # Every decoded line is a line the kernel printed ...
        extra = decoded - console
        assert not extra, f"port {port}: not on the console: {list(extra)[:3]}"
        # ... and every kernel line between the stream's first and last record
        # arrived, except what the guest printed once its network was down.
        first = min(ts for ts, _ in decoded)
        last = max(ts for ts, _ in decoded)
        expected = Counter({k: n for k, n in console.items() if first <= k[0] <= last})
        missing = [k for k in expected - decoded if k[1] not in _AFTER_NETWORK_DOWN]
        # What the stream reported lost is exactly what did not arrive
        # (configfs: seven records logged while the target was disabled).
        lost = sum(e.count for e in events if isinstance(e, Gap) and e.kind is GapKind.SEQ
                   and e.sender.local_port == port)
        assert len(missing) == lost, f"port {port}: never decoded: {missing[:3]}"
    assert not [e for e in events if isinstance(e, Reboot)]


def _split_fields(r: Record) -> dict[str, tuple[tuple[bytes, bytes], ...]]:
    fields = list(r.fields)
    dictionary = []
    while fields and fields[0][0] in (b"SUBSYSTEM", b"DEVICE"):
        dictionary.append(fields.pop(0))
    sysdata: list[tuple[bytes, bytes]] = []
    order = list(SYSDATA_ORDER)
    while fields and order and fields[-1][0] in order:
        key = fields[-1][0]
        if order.index(key) != len(order) - 1 and sysdata and \
                order.index(key) >= SYSDATA_ORDER.index(sysdata[0][0]):
            break
        sysdata.insert(0, fields.pop())
        order = order[: order.index(key)]
    return {"dictionary": tuple(dictionary), "userdata": tuple(fields),
            "sysdata": tuple(sysdata)}


@pytest.mark.parametrize(("kernel", "scenario"), SCENARIOS)
def test_reencoding_gives_the_kernel_datagrams_byte_for_byte(kernel: str, scenario: str) -> None:
    version = KernelVersion.parse(kernel)
    sent: dict[tuple[int, int | None], list[bytes]] = defaultdict(list)
    basic_stream: dict[int, bytes] = defaultdict(bytes)
    for _, _, _, dport, payload in udp_payloads(capture(kernel, scenario)):
        if payload[:1].isdigit():
            # Key by seq: the header is the same in every fragment.
            head = payload.split(b";", 1)[0].split(b",")
            seq = int(head[2] if not head[0].isdigit() else head[1])
            sent[(dport, seq)].append(payload)
        else:
            basic_stream[dport] += payload
    recs = records(decode_capture(capture(kernel, scenario)))
    checked = 0
    rebuilt_basic: dict[int, bytes] = defaultdict(bytes)
    for r in recs:
        if r.mode is Mode.BASIC:
            rebuilt_basic[r.sender.local_port] += format_console_text(r.text, ts_usec=r.ts_usec)
            checked += 1
            continue
        if not r.complete:
            continue
        assert r.facility is not None and r.level is not None and r.seq is not None
        assert r.ts_usec is not None
        out = encode_extended(OutgoingRecord(
            facility=r.facility, level=r.level, seq=r.seq, ts_usec=r.ts_usec, text=r.text,
            flag=r.flag, caller=r.caller, release=r.release, **_split_fields(r)), version)
        assert out == sent[(r.sender.local_port, r.seq)], f"seq {r.seq}"
        checked += 1
    for port, data in rebuilt_basic.items():
        assert b"".join(encode_basic(data)) == basic_stream[port]
    assert checked > 50


def test_configfs_capture_has_one_real_incomplete_record() -> None:
    events = decode_capture(capture("6.12.117+deb12-amd64", "configfs"))
    [inc] = [e for e in events if isinstance(e, Incomplete)]
    assert inc.seq == 412 and inc.total == 3917
    assert inc.missing == ((2902 + 966, 3917),)
    [rec] = [r for r in records(events) if r.seq == 412]
    assert not rec.complete and rec.missing == inc.missing
    assert rec.text.startswith(b"lab[cfs]: LONG |0000:abcd")
    # seq 413-419 were logged while t1 was disabled: a seq gap, not a reboot
    gaps = [e for e in events if isinstance(e, Gap)]
    assert [(g.kind, g.first, g.count) for g in gaps] == [(GapKind.SEQ, 413, 7)]


def test_sysdata_capture_fields_msgid_cpu_taskname() -> None:
    events = decode_capture(capture("7.2.13+deb14-amd64", "sysdata"))
    s1 = [r for r in records(events) if r.sender.local_port == 6666]
    s2 = [r for r in records(events) if r.sender.local_port == 6667]
    assert [r.msgid for r in s1[:3]] == [1, 2, 3]
    assert s1[0].taskname == "init" and s1[0].cpu == 0
    assert s1[0].release is None
    assert s1[0].kernel_release == "7.2.13+deb14-amd64"  # from the release= sysdata line
    assert all(r.release == "7.2.13+deb14-amd64" for r in s2)
    msgids = [r.msgid for r in s1 if r.msgid is not None]
    assert msgids == list(range(1, len(msgids) + 1))
    assert not [e for e in events if isinstance(e, Gap)]


def test_two_targets_on_one_host_stay_two_streams() -> None:
    recs = records(decode_capture(capture("6.12.117+deb12-amd64", "two")))
    modes: dict[int, set[Mode]] = defaultdict(set)
    for r in recs:
        modes[r.sender.local_port].add(r.mode)
    assert modes == {6666: {Mode.BASIC}, 6667: {Mode.EXTENDED}}
