"""`netconsole=` targets on a real kernel: basic, extended (ncfrag), release, several at once.

One boot per kernel (`modparam` in lab.scenarios): three targets given as one
module parameter, the lab's records through /dev/kmsg, then a sysrq panic. A
module-parameter target replays the log from seq 0, so every kernel line of the
console must arrive, record by record, on every target (on 7.x up to the
panic, see test_qemu_crash.py).
"""

from __future__ import annotations

from collections import Counter

import pytest
from lab import ConsoleLine, Run, compare, decode_port, record_lines
from lab.scenarios import KMSG_MAX_TEXT, LAB_RECORDS

from netconsole.stream import GapKind, Reboot, Record
from netconsole.wire import MAX_PRINT_CHUNK, Fragment, Mode, decode_datagram

pytestmark = pytest.mark.kernel

BASIC, EXTENDED, RELEASE = 0, 1, 2
CRASH_LINE = b"sysrq: Trigger a crash"


def sent_lines(run: Run) -> list[ConsoleLine]:
    """The console lines the kernel surely sends: all of them on 6.12; on 7.x
    everything before `sysrq: Trigger a crash` (its threaded netconsole may or
    may not get to send that line, seen both ways, and nothing after it)."""
    lines = run.console.lines
    if run.kernel.major < 7:
        return lines
    cut = next(i for i, line in enumerate(lines) if line.text == CRASH_LINE)
    return lines[:cut]


def before_crash(run: Run, records: list[Record]) -> list[Record]:
    """The records to hold against `sent_lines`: on 7.x those before the crash line."""
    if run.kernel.major < 7:
        return records
    cut = next((i for i, r in enumerate(records) if r.text == CRASH_LINE), len(records))
    return records[:cut]


def test_modparam_insmod_succeeds(modparam_run: Run) -> None:
    assert modparam_run.rcs["insmod"] == 0, modparam_run.boot.lab_text
    assert len(modparam_run.console.lines) > 300, modparam_run.describe()


def test_basic_target_replays_the_whole_log(modparam_run: Run) -> None:
    decoded = decode_port(modparam_run.datagrams, modparam_run.ports[BASIC])
    assert decoded.unexpected == []
    assert {r.mode for r in decoded.records} == {Mode.BASIC}
    result = compare(sent_lines(modparam_run), before_crash(modparam_run, decoded.records))
    assert not result.missing and not result.extra, result.report()
    assert result.matched > 300
    assert decoded.gap_count(GapKind.DROPPED) == 0


def test_basic_target_record_longer_than_one_datagram(modparam_run: Run) -> None:
    """Basic mode cuts a record's console text into 1000-byte datagrams, no marker."""
    datagrams = modparam_run.on_port(modparam_run.ports[BASIC])
    assert max(len(d.payload) for d in datagrams) == MAX_PRINT_CHUNK
    decoded = decode_port(datagrams, modparam_run.ports[BASIC])
    texts = [r.text for r in decoded.records]
    longest = next(r for r in LAB_RECORDS if len(r.text) == KMSG_MAX_TEXT)
    # "[    4.123456] " + text + "\n" is more than 1000 bytes: two datagrams.
    assert longest.text in texts
    split = [d for d in datagrams if len(d.payload) == MAX_PRINT_CHUNK]
    assert any(longest.text[:40] in d.payload for d in split)


def test_extended_target_replays_from_seq_0(modparam_run: Run) -> None:
    decoded = decode_port(modparam_run.datagrams, modparam_run.ports[EXTENDED])
    assert decoded.unexpected == []
    records = decoded.records
    assert {r.mode for r in records} == {Mode.EXTENDED}
    assert [r.seq for r in records] == list(range(len(records)))
    assert decoded.gaps == []
    result = compare(sent_lines(modparam_run), before_crash(modparam_run, records))
    assert not result.missing and not result.extra, result.report()


def test_extended_target_ncfrag_reassembly(modparam_run: Run) -> None:
    datagrams = modparam_run.on_port(modparam_run.ports[EXTENDED])
    fragments = [f for f in (decode_datagram(d.payload) for d in datagrams)
                 if isinstance(f, Fragment)]
    assert fragments, "no ncfrag datagram: the long records were not fragmented"
    assert all(len(d.payload) <= MAX_PRINT_CHUNK for d in datagrams)
    decoded = decode_port(datagrams, modparam_run.ports[EXTENDED])
    by_text = {r.text: r for r in decoded.records}
    long_records = [r for r in LAB_RECORDS if len(r.text) >= 990]
    for rec in long_records:
        assert rec.text in by_text, f"{rec.text[:20]!r} (len {len(rec.text)}) never arrived"
        assert by_text[rec.text].complete
    fragmented_seqs = {f.header.seq for f in fragments}
    assert {by_text[r.text].seq for r in long_records} <= fragmented_seqs


def test_extended_target_levels_and_facilities(modparam_run: Run) -> None:
    decoded = decode_port(modparam_run.datagrams, modparam_run.ports[EXTENDED])
    by_text = {r.text: r for r in decoded.records}
    for rec in LAB_RECORDS:
        got = by_text[rec.text]
        assert (got.facility, got.level) == (rec.facility, rec.level), rec.text[:40]
    kernel_records = [r for r in decoded.records if r.text.startswith(b"Linux version")]
    assert kernel_records and kernel_records[0].facility == 0 and kernel_records[0].seq == 0


def test_release_prefix_on_every_datagram(modparam_run: Run) -> None:
    release = modparam_run.kernel.release
    datagrams = modparam_run.on_port(modparam_run.ports[RELEASE])
    assert datagrams
    assert all(d.payload.startswith(f"{release},".encode()) for d in datagrams)
    decoded = decode_port(datagrams, modparam_run.ports[RELEASE])
    assert decoded.unexpected == []
    assert {r.release for r in decoded.records} == {release}
    result = compare(sent_lines(modparam_run), before_crash(modparam_run, decoded.records))
    assert not result.missing and not result.extra, result.report()


def test_several_targets_are_separate_streams(modparam_run: Run) -> None:
    """One module parameter, three targets: three streams the receiver keeps apart."""
    run = modparam_run
    streams = [decode_port(run.datagrams, port) for port in run.ports]
    assert all(s.sender.host == "127.0.0.1" for s in streams)
    assert len({s.sender for s in streams}) == 3
    basic, extended, release = (s.records for s in streams)
    key = [(r.seq, r.ts_usec, r.text) for r in extended]
    assert key == [(r.seq, r.ts_usec, r.text) for r in release]
    assert Counter(record_lines(basic)) == Counter(record_lines(extended))


def test_no_false_reboot_when_timestamps_step_back(modparam_run: Run) -> None:
    """A secondary CPU coming up stamps its first records with its own clock: under TCG
    the log's timestamps step back 0.4-1.2 s within one boot (measured), seq still
    rising. The kernel did not reboot; the decoder must not say it did."""
    top = worst = 0
    for line in modparam_run.console.lines:
        worst = max(worst, top - line.ts_usec)
        top = max(top, line.ts_usec)
    for port in modparam_run.ports[EXTENDED:]:
        reboots = [e for e in decode_port(modparam_run.datagrams, port).problems
                   if isinstance(e, Reboot)]
        assert reboots == [], f"timestamps stepped back {worst} us in this boot"
