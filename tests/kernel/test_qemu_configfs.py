"""configfs targets on a real kernel: userdata, sysdata (7.x), and wrong setups.

One boot per kernel (`configfs` in lab.scenarios). First the wrong setups, each
asserted by the exact line the kernel printed on its console; then t1
(extended, userdata; on 7.x the sysdata toggles cpu_nr, taskname, release,
msgid) and t2 (basic). A configfs target does not replay: what must arrive is
the console between a marker record written right after enabling and the end.
"""

from __future__ import annotations

import re

import pytest
from lab import ConsoleLine, Run, check_nic_count, compare, decode_port, tx_packets
from lab.scenarios import BIG_USERDATA_TEXT, END_MARK, LAB_RECORDS, WRONG_NODEV

from netconsole.stream import GapKind, Record
from netconsole.wire import Fragment, Mode, decode_datagram

pytestmark = pytest.mark.kernel

BAD, T1, T2 = 0, 1, 2
# 6.12 and 7.2 both print netpoll_setup's errors with netpoll's prefix (7.2 prints
# the banner lines with `netconsole: netconsole:` instead: reference §2.2 era table).
NETPOLL = b"netpoll: netconsole: "


def _window(run: Run, start: bytes, end: bytes) -> list[ConsoleLine]:
    """Console lines from the record `start` up to and including the record `end`."""
    lines = run.console.lines
    i = next(n for n, line in enumerate(lines) if line.text == start)
    j = next(n for n, line in enumerate(lines) if line.text == end)
    return lines[i:j + 1]


def _extras_are_kernel_lines(run: Run, extra: list[tuple[int, bytes]]) -> None:
    """Records beyond the compared window must still be lines the kernel printed:
    the target's own start line before it, or a line 7.x logs at any time (its
    clocksource watchdog) that the serial console printed elsewhere. Nothing invented."""
    console = {(line.ts_usec, line.text) for line in run.console.lines}
    assert all(key in console for key in extra), extra


def _record(run: Run, port: int, text: bytes) -> Record:
    decoded = decode_port(run.datagrams, run.ports[port])
    found = [r for r in decoded.records if r.text == text]
    assert len(found) == 1, f"{text!r}: {len(found)} records on port {port}"
    return found[0]


def _has_line(run: Run, text: bytes) -> None:
    assert any(line.text == text for line in run.console.lines), (
        f"{text!r} not on the console; near misses: "
        f"{[line.text for line in run.console.lines if b'aborting' in line.text]}")


def test_wrong_device_in_module_parameter(configfs_run: Run) -> None:
    """A `netconsole=` naming a missing device: the target is dropped, the module loads
    (CONFIG_NETCONSOLE_DYNAMIC=y); kernel-netconsole.md §2.3 expects a failed load
    only before ~6.6 or without DYNAMIC."""
    _has_line(configfs_run, NETPOLL + WRONG_NODEV.encode() + b" doesn't exist, aborting")
    _has_line(configfs_run, b"netconsole: Not enabling netconsole for cmdline0. "
                            b"Netpoll setup failed")
    assert configfs_run.rcs["insmod.nodev"] == 0


def test_interface_without_address(configfs_run: Run) -> None:
    _has_line(configfs_run, NETPOLL + b"no IP address for eth0, aborting")
    assert configfs_run.rcs["noaddr.enabled=1"] != 0
    assert "Destination address required" in configfs_run.boot.lab_text


def test_configfs_target_on_missing_device(configfs_run: Run) -> None:
    _has_line(configfs_run, NETPOLL + b"nosuch1 doesn't exist, aborting")
    assert configfs_run.rcs["nodev.enabled=1"] != 0
    assert "No such device" in configfs_run.boot.lab_text


def test_wrong_setups_send_nothing(configfs_run: Run) -> None:
    assert configfs_run.on_port(configfs_run.ports[BAD]) == []


def test_every_datagram_the_nic_sent_arrived(configfs_run: Run) -> None:
    sent = tx_packets(configfs_run.boot.lab_text)
    check_nic_count(sent, len(configfs_run.datagrams), targets=len(configfs_run.ports))
    assert configfs_run.datagrams


def test_configfs_extended_target_with_userdata(configfs_run: Run) -> None:
    run = configfs_run
    decoded = decode_port(run.datagrams, run.ports[T1])
    assert decoded.unexpected == []
    assert {r.mode for r in decoded.records} == {Mode.EXTENDED}
    window = _window(run, b"lab: cfs t1 enabled", BIG_USERDATA_TEXT)
    result = compare(window, decoded.records)
    assert not result.missing, result.report()
    _extras_are_kernel_lines(run, result.extra)
    assert b"lab: cfs t1 disabled" not in {r.text for r in decoded.records}
    assert decoded.gap_count(GapKind.SEQ) == 0

    first = _record(run, T1, b"lab: cfs t1 enabled")
    assert first.field(b"host") == b"lab-guest" and first.field(b"key1") == b"value1"
    changed = _record(run, T1, b"lab: cfs after changing key1 while enabled")
    assert changed.field(b"key1") == b"value2" and changed.field(b"host") == b"lab-guest"
    removed = _record(run, T1, b"lab: cfs after removing userdata host")
    assert removed.field(b"host") is None and removed.field(b"key1") == b"value2"


def test_configfs_userdata_fragments(configfs_run: Run) -> None:
    """~3 KB of userdata on a short message: ncfrag fragments, reassembled whole."""
    run = configfs_run
    big = _record(run, T1, b"lab: cfs short message with ~3KB of userdata")
    keys = [k for k, _ in big.fields if re.fullmatch(rb"k\d\d", k)]
    assert len(keys) == 14 and big.complete
    assert big.field(b"k13") == b"13-" + b"v" * 185
    fragments = [decode_datagram(d.payload) for d in run.on_port(run.ports[T1])]
    assert any(isinstance(f, Fragment) and f.header.seq == big.seq for f in fragments)


def test_configfs_sysdata(configfs_run: Run) -> None:
    """7.x: cpu_nr, taskname, release, msgid on every record of t1."""
    run = configfs_run
    decoded = decode_port(run.datagrams, run.ports[T1])
    records = decoded.records
    if run.kernel.major < 7:
        assert all(r.field(b"msgid") is None and r.cpu is None for r in records)
        return
    assert records
    for r in records:
        assert r.cpu is not None and 0 <= r.cpu < 2, r
        assert r.taskname, r
        assert r.field(b"release") == run.kernel.release.encode()
    assert [r.msgid for r in records] == list(range(1, len(records) + 1))
    assert decoded.gap_count(GapKind.MSGID) == 0
    # /dev/kmsg writes carry the writer's name: the lab's /init (PID 1) is `init`.
    lab_records = [r for r in records if r.text in {x.text for x in LAB_RECORDS}]
    assert lab_records and {r.taskname for r in lab_records} == {"init"}
    # sysdata comes after userdata, in the kernel's fixed order
    last = [k for k, _ in records[-1].fields][-4:]
    assert last == [b"cpu", b"taskname", b"release", b"msgid"]


def test_configfs_basic_target(configfs_run: Run) -> None:
    run = configfs_run
    decoded = decode_port(run.datagrams, run.ports[T2])
    assert decoded.unexpected == []
    assert {r.mode for r in decoded.records} == {Mode.BASIC}
    window = _window(run, b"lab: cfs t2 enabled", END_MARK.encode())
    result = compare(window, decoded.records)
    assert not result.missing, result.report()
    _extras_are_kernel_lines(run, result.extra)
    assert all(r.fields == () for r in decoded.records)
