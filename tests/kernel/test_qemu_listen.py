"""The real receiver under test: `netconsole listen` against a real kernel.

One boot per kernel (`listen` in lab.scenarios): basic, extended and
extended+release targets as one module parameter (each replays the log from seq
0), the lab's records (levels, escapes, 900-1020-byte lines: ncfrag fragments in
extended mode, two 1000-byte chunks in basic mode), then a burst of 2 x 3,000
records. The receiver is `python -m netconsole listen` (lab.ListenReceiver) on
three loopback ports; the tests read what its SQLite store holds
(`netconsole.store.open_reader`) and compare it, record by record, with the
guest's serial console, and its hosts table with what the kernel did. QEMU also
captures eth0 (`filter-dump`): `netconsole decode` on that pcap must give the
same records as the store.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab import (
    GATEWAY_MAC,
    HOST_IP,
    ConsoleLine,
    Kernel,
    Lab,
    Run,
    check_nic_count,
    compare,
    record_lines,
    tx_packets,
)
from lab._pcap import DecodeOutput, frames, netconsole_decode
from lab.scenarios import (
    BURST_WRITERS,
    END_MARK,
    LAB_RECORDS,
    LISTEN_PER_WRITER,
    QUIET_BEGIN,
    QUIET_END,
    QUIET_RECORDS,
    SCENARIOS,
)

from netconsole.store import HostInfo, open_reader
from netconsole.stream import Record
from netconsole.wire import Mode

pytestmark = pytest.mark.kernel

BASIC, EXTENDED, RELEASE = 0, 1, 2
_BURST = re.compile(rb"burst ([a-z]) (\d+)")


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store holds for one target (one local port)."""

    host: HostInfo
    records: list[Record]

    def up_to_end(self) -> list[Record]:
        """Records up to and including the end marker (in stored order)."""
        i = next(n for n, r in enumerate(self.records) if r.text == END_MARK.encode())
        return self.records[:i + 1]


@pytest.fixture(scope="session")
def listen_run(lab: Lab, kernel: Kernel) -> Run:
    steps, ports = SCENARIOS["listen"]
    return lab.run(kernel, "listen", steps, ports=ports, timeout=240.0, listen={})


@pytest.fixture(scope="session")
def stored(listen_run: Run) -> dict[int, Stored]:
    """Per target index (BASIC, EXTENDED, RELEASE): its host row and stored records."""
    assert listen_run.store is not None and listen_run.store.exists(), listen_run.listen_log
    with open_reader(listen_run.store) as reader:
        records = [s.record for s in reader.export()]
        hosts = reader.hosts(now=time.time())
    out = {}
    for i, port in enumerate(listen_run.ports):
        mine = [h for h in hosts if h.local_port == port]
        assert len(mine) == 1, f"port {port}: hosts {hosts}"
        out[i] = Stored(mine[0], [r for r in records if r.sender.local_port == port])
    return out


def _end(lines: list[ConsoleLine]) -> list[ConsoleLine]:
    i = next(n for n, line in enumerate(lines) if line.text == END_MARK.encode())
    return lines[:i + 1]


def _not_burst(lines: list[ConsoleLine]) -> list[ConsoleLine]:
    return [line for line in lines if not _BURST.fullmatch(line.text)]


def _total_records(stored: dict[int, Stored]) -> int:
    """Records in the guest's log up to the end marker: an extended target replays from
    seq 0, so the marker's seq + 1."""
    end = stored[EXTENDED].up_to_end()[-1]
    assert end.seq is not None
    return end.seq + 1


def test_listen_received_every_datagram_and_stopped_cleanly(listen_run: Run,
                                                            stored: dict[int, Stored]) -> None:
    assert listen_run.rcs["insmod"] == 0, listen_run.boot.lab_text
    assert listen_run.listen_rc == 0, listen_run.listen_log
    sent = tx_packets(listen_run.boot.lab_text)
    assert sent is not None and sent > 3 * 2 * LISTEN_PER_WRITER * 0.5
    assert listen_run.listen_datagrams is not None, listen_run.listen_log
    check_nic_count(sent, listen_run.listen_datagrams, targets=len(listen_run.ports))
    # --jsonl got the same records as the store
    jsonl = Path(listen_run.store or "").with_name("stored.jsonl")
    lines = jsonl.read_text().splitlines()
    assert len(lines) == sum(len(s.records) for s in stored.values())
    assert json.loads(lines[0])


def test_listen_hosts_table(listen_run: Run, stored: dict[int, Stored]) -> None:
    """Three senders, one per target: the same source (slirp sends all of the guest's
    port 6665 from one host socket) on three local ports; none of them rebooted, no
    duplicate, incomplete or rejected record."""
    assert len({(s.host.address, s.host.port, s.host.local_port) for s in stored.values()}) == 3
    for i, s in stored.items():
        h = s.host
        assert h.address == "127.0.0.1"
        assert (h.reboots, h.duplicates, h.incomplete, h.rejected) == (0, 0, 0, 0), (i, h)
        assert h.records == len(s.records) and h.boot == 0
        assert h.lost_msgid == 0
    assert stored[RELEASE].host.release == listen_run.kernel.release
    assert stored[EXTENDED].host.release in (None, "")


@pytest.mark.parametrize("target", [BASIC, EXTENDED, RELEASE],
                         ids=["basic", "extended", "release"])
def test_listen_stored_what_the_kernel_logged(listen_run: Run, stored: dict[int, Stored],
                                              target: int) -> None:
    """Everything but the burst, record by record against the console, both ways."""
    records = stored[target].up_to_end()
    assert {r.mode for r in records} == {Mode.BASIC if target == BASIC else Mode.EXTENDED}
    assert all(r.complete for r in records)
    want = _not_burst(_end(listen_run.console.lines))
    got = [r for r in records if not _BURST.fullmatch(r.text)]
    result = compare(want, got)
    assert not result.missing and not result.extra, result.report()
    assert result.matched > 300
    if target == RELEASE:
        assert {r.release for r in records} == {listen_run.kernel.release}


@pytest.mark.parametrize("target", [BASIC, EXTENDED, RELEASE],
                         ids=["basic", "extended", "release"])
def test_listen_stored_long_records_whole(stored: dict[int, Stored], target: int) -> None:
    """The 900-1020-byte records: fragments (extended) or two 1000-byte datagrams
    (basic) stored as one complete record each, byte for byte."""
    by_text = Counter(r.text for r in stored[target].records)
    for rec in LAB_RECORDS:
        assert by_text[rec.text] == 1, rec.text[:40]
    longest = [r for r in stored[target].records if len(r.text) >= 1000]
    assert len(longest) >= 2 and all(r.complete and not r.missing for r in longest)
    if target != BASIC:
        levels = {r.text: (r.facility, r.level) for r in stored[target].records}
        for rec in LAB_RECORDS:
            assert levels[rec.text] == (rec.facility, rec.level), rec.text[:40]


def test_quiet_records_were_not_printed(listen_run: Run, stored: dict[int, Stored]) -> None:
    """The records below the console loglevel: logged by the kernel, printed by no console."""
    texts = {line.text for line in listen_run.console.lines}
    assert QUIET_BEGIN.encode() in texts and QUIET_END.encode() in texts
    for s in stored.values():
        got = {r.text for r in s.records}
        assert QUIET_BEGIN.encode() in got and QUIET_END.encode() in got
        assert not got & {t.encode() for t in QUIET_RECORDS}
    assert not texts & {t.encode() for t in QUIET_RECORDS}


@pytest.mark.parametrize("target", [EXTENDED, RELEASE], ids=["extended", "release"])
def test_listen_accounts_lost_seq(listen_run: Run, stored: dict[int, Stored],
                                  target: int) -> None:
    """Every seq the kernel logged is either stored or counted in `lost_seq`, and the
    count is exactly the seqs missing from the store (none invented, none hidden):
    the QUIET_RECORDS the kernel never sent, and (6.12) what a burst overran."""
    s = stored[target]
    seqs = [r.seq for r in s.up_to_end() if r.seq is not None]
    assert len(seqs) == len(s.up_to_end()), "an extended record without seq"
    assert seqs == sorted(set(seqs)), "seq repeated or out of order"
    total = _total_records(stored)
    missing = set(range(total)) - set(seqs)
    assert len(seqs) + len(missing) == total
    # The host's count covers the whole stream, records after the end mark too
    # (7.x may log and send a line later, with an unsent one before it).
    everything = {r.seq for r in s.records if r.seq is not None}
    missing_all = set(range(max(everything) + 1)) - everything
    assert s.host.lost_seq == len(missing_all), (s.host, sorted(missing_all)[:20])
    by_text = {r.text: r.seq for r in s.records}
    begin, end = by_text[QUIET_BEGIN.encode()], by_text[QUIET_END.encode()]
    assert begin is not None and end is not None
    # Between the two markers: the quiet records (never sent), and at times a line the
    # kernel itself logged meanwhile: sent if loud enough, else one more gap.
    quiet = set(range(begin + 1, end)) - set(seqs)
    assert len(quiet) >= len(QUIET_RECORDS) and quiet <= missing


def test_listen_accounts_basic_dropped(listen_run: Run, stored: dict[int, Stored]) -> None:
    """A basic target has no seq: what the kernel skipped in a burst comes as `** N printk
    messages dropped **`, counted in `dropped`; records below the console loglevel are
    invisible to it. stored + dropped + quiet = records logged."""
    s = stored[BASIC]
    assert s.host.lost_seq == 0
    total = _total_records(stored)
    seen = len(s.up_to_end()) + s.host.dropped
    # Invisible to every console: the quiet records for sure, and at most the seqs
    # that both extended targets miss (the kernel's own lines below the loglevel).
    both_missed = set(range(total))
    for target in (EXTENDED, RELEASE):
        both_missed -= {r.seq for r in stored[target].up_to_end()}
    assert seen + len(QUIET_RECORDS) <= total <= seen + len(both_missed)
    if listen_run.kernel.major >= 7:
        assert s.host.dropped == 0


@pytest.mark.parametrize("target", [BASIC, EXTENDED, RELEASE],
                         ids=["basic", "extended", "release"])
def test_listen_burst_records_are_the_kernels(listen_run: Run, stored: dict[int, Stored],
                                              target: int) -> None:
    numbers: dict[bytes, list[int]] = {w.encode(): [] for w in BURST_WRITERS}
    for r in stored[target].records:
        m = _BURST.fullmatch(r.text)
        if m is not None:
            numbers[m.group(1)].append(int(m.group(2)))
    for writer, got in numbers.items():
        assert got == sorted(set(got)), f"writer {writer!r} out of order or repeated"
        assert all(0 <= n < LISTEN_PER_WRITER for n in got)
        if listen_run.kernel.major >= 7:
            assert len(got) == LISTEN_PER_WRITER
    on_console = {line.text: line.ts_usec for line in listen_run.console.lines}
    for r in stored[target].records:
        if _BURST.fullmatch(r.text) and r.text in on_console:
            assert on_console[r.text] == r.ts_usec, r.text


def test_listen_targets_agree(stored: dict[int, Stored]) -> None:
    """Extended and release carry the same records; basic the same lines where it has them."""
    ext = [(r.seq, r.ts_usec, r.text) for r in stored[EXTENDED].up_to_end()]
    rel = [(r.seq, r.ts_usec, r.text) for r in stored[RELEASE].up_to_end()]
    if stored[EXTENDED].host.lost_seq == stored[RELEASE].host.lost_seq == 0:
        assert ext == rel
    basic = Counter(record_lines(stored[BASIC].up_to_end()))
    extended = Counter(record_lines(stored[EXTENDED].up_to_end()))
    if stored[BASIC].host.dropped == 0 and stored[EXTENDED].host.lost_seq == 0:
        assert basic == extended


@pytest.fixture(scope="session")
def from_pcap(listen_run: Run) -> dict[int, DecodeOutput]:
    """`netconsole decode` on QEMU's capture of eth0 (the same traffic), per target."""
    return {i: netconsole_decode(listen_run.pcap, port) for i, port in enumerate(listen_run.ports)}


@pytest.mark.parametrize("target", [BASIC, EXTENDED, RELEASE],
                         ids=["basic", "extended", "release"])
def test_decode_pcap_is_what_listen_stored(listen_run: Run, stored: dict[int, Stored],
                                           from_pcap: dict[int, DecodeOutput],
                                           target: int) -> None:
    """What the guest put on the wire (decoded from the capture, sender 10.0.2.15:6665)
    and what listen stored on the host are the same records, in the same order."""
    out = from_pcap[target]
    assert out.returncode == 0
    assert out.summary["rejected"] == {} and out.summary["reboots"] == 0, out.summary
    assert out.summary["duplicates"] == out.summary["incomplete"] == 0, out.summary
    assert {(r.host, r.port) for r in out.records} == {("10.0.2.15", 6665)}
    assert {r.local_port for r in out.records} == {listen_run.ports[target]}
    assert all(r.complete for r in out.records)
    wire = [(r.seq, r.ts_usec, r.text) for r in out.records]
    store = [(r.seq, r.ts_usec, r.text) for r in stored[target].records]
    assert wire == store
    if target != BASIC:
        assert out.summary["gaps"].get("seq", 0) == stored[target].host.lost_seq
    else:
        assert out.summary["gaps"].get("dropped", 0) == stored[target].host.dropped


def test_decode_pcap_matches_the_console(listen_run: Run,
                                         from_pcap: dict[int, DecodeOutput]) -> None:
    want = _not_burst(_end(listen_run.console.lines))
    records = from_pcap[EXTENDED].records
    end = next(n for n, r in enumerate(records) if r.text == END_MARK.encode())
    result = compare(want, [r for r in records[:end + 1] if not _BURST.fullmatch(r.text)])
    assert not result.missing and not result.extra, result.report()


def test_pcap_frames_went_to_the_gateway_mac(listen_run: Run) -> None:
    """`netconsole=...@10.0.2.2/52:55:0a:00:02:02`: every frame to that MAC and address,
    from 10.0.2.15:6665; as many as the guest's NIC counted."""
    got = [f for f in frames(listen_run.pcap) if f.src_ip == "10.0.2.15"]
    assert {(f.dst_mac, f.dst_ip, f.src_port) for f in got} == {(GATEWAY_MAC, HOST_IP, 6665)}
    check_nic_count(tx_packets(listen_run.boot.lab_text), len(got), targets=len(listen_run.ports))
