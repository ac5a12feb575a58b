"""`IncidentTable.process(..., open_reports=False)` + `open_reports()`: the receiver's
way, snapshots of open reports once per store batch instead of once per record.

What is decided (reports closed or amended, silences) must not change, nor the
final state of any incident; only the OPENED/UPDATED snapshots wait for the batch.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from netconsole.incidents import Incident, IncidentTable, Output, Phase
from netconsole.stream.events import Record
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import T0, Run, expire_until, lines_to_records

OOM_KILL = ("Out of memory: Killed process {pid} (java) total-vm:8388608kB, "
            "anon-rss:4194304kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:8192kB "
            "oom_score_adj:0")
PLAIN = "e1000e 0000:00:1f.6 eno1: NIC Link is Up 1000 Mbps Full Duplex"


def _drive(records: list[Record], batch_every: int | None) -> Run:
    """Feed one record per `process` call; `batch_every`: the receiver's way, open
    reports asked for every that many records (None: the default way)."""
    table = IncidentTable()
    run = Run()
    now = T0
    for i, record in enumerate(records):
        now = record.received
        deadline = table.next_deadline()
        if deadline is not None and deadline <= now:
            run.out += table.expire(now)
        run.out += table.process([record], now, open_reports=batch_every is None)
        if batch_every is not None and (i + 1) % batch_every == 0:
            run.out += table.open_reports()
    if batch_every is not None:
        run.out += table.open_reports()
    run.out += expire_until(table, now + 60)
    return run


def _decided(out: list[Output]) -> list[Output]:
    return [e for e in out
            if not (isinstance(e, Incident) and e.phase in (Phase.OPENED, Phase.UPDATED))]


def test_a_stream_of_oom_kills_is_one_snapshot_per_batch_not_one_per_record() -> None:
    text = "\n".join(OOM_KILL.format(pid=1000 + i) for i in range(500))
    records = lines_to_records(text, step=0.001)
    table = IncidentTable()
    snapshots = []
    for r in records:
        out = table.process([r], r.received, open_reports=False)
        snapshots += [e for e in out if isinstance(e, Incident)]
    assert snapshots == []  # before: 500 OPENED/UPDATED, each a snapshot of every line
    (opened,) = table.open_reports()
    assert (opened.phase, opened.count) == (Phase.OPENED, 500)
    assert table.open_reports() == []  # nothing changed since
    default = _drive(records, None)
    assert len([e for e in default.incident_events if e.phase is Phase.UPDATED]) == 499


def _mix(draw: st.DrawFn) -> list[Record]:
    pieces = draw(st.lists(st.sampled_from(["oom", "plain", "oops", "hung", "io"]),
                           min_size=1, max_size=12))
    lines: list[str] = []
    for p in pieces:
        if p == "oom":
            lines += [OOM_KILL.format(pid=i) for i in range(draw(st.integers(1, 20)))]
        elif p == "plain":
            lines += [PLAIN] * draw(st.integers(1, 20))
        elif p == "oops":
            lines += reports.GPF.split("\n")
        elif p == "hung":
            lines += reports.HUNG_TASK.split("\n")
        else:
            lines += reports.IO_ERRORS.split("\n")
    step = draw(st.sampled_from([0.0005, 0.05, 0.7]))
    return lines_to_records("\n".join(lines), step=step)


@settings(max_examples=60, deadline=None)
@given(records=st.composite(_mix)(), batch_every=st.integers(1, 50))
def test_batched_snapshots_decide_exactly_what_per_record_snapshots_do(
        records: list[Record], batch_every: int) -> None:
    default = _drive(records, None)
    batched = _drive(records, batch_every)
    assert _decided(batched.out) == _decided(default.out)
    assert batched.closed == default.closed
    # every incident the default way opened is seen open (or decided) the batched way
    keys = {e.key for e in default.incident_events}
    assert {e.key for e in batched.incident_events} == keys


def test_an_oom_storm_is_its_report_then_one_incident_of_bare_kills() -> None:
    """The dump_header of an OOM kill is ratelimited (10 per 5 s): in a storm the
    first kills come with their report, the rest as bare kill lines. The report ends
    with its own kill line; the bare kills after it are one incident with a count."""
    bare = "\n".join(OOM_KILL.format(pid=2000 + i) for i in range(40))
    records = lines_to_records(reports.OOM + "\n" + bare, step=0.001)
    run = _drive(records, 7)
    full, kills = run.closed
    assert full.lines == len(reports.OOM.split("\n")) and full.count == 1
    assert "invoked oom-killer" in full.text.split("\n")[0]
    assert full.title.startswith("Out of memory: Killed process 1234")  # its own kill
    assert (kills.kind, kills.count) == (full.kind, 40)
    assert kills.title == OOM_KILL.format(pid=2000)


def test_a_hung_task_line_alone_is_a_one_line_report_and_frees_the_host() -> None:
    """A hung-task line is always followed by its body (`Not tainted`, `"echo 0 >`,
    `task:`, the trace). When the next line is foreign, the line came alone: a report
    of one line, closed complete, and the foreign lines are nobody's; so the host's
    ordinary records need not all pass through the detector (the express lane)."""
    hung = "INFO: task kworker/u16:3:1234 blocked for more than 122 seconds."
    text = "\n".join([hung, PLAIN, PLAIN, hung, PLAIN])
    records = lines_to_records(text, step=0.001)
    table = IncidentTable()
    busy = []
    for r in records:
        table.process([r], r.received)
        busy.append(table.busy(r.sender))
    assert busy == [True, False, False, True, False]
    run = _drive(records, None)
    assert [(i.lines, i.truncated, i.title) for i in run.closed] == [(1, False, hung)] * 2
    # The real thing is still one report of all its lines.
    full = _drive(lines_to_records(reports.HUNG_TASK, step=0.001), None).closed
    assert [i.lines for i in full] == [len(reports.HUNG_TASK.split("\n"))]


def test_everyday_filesystem_lines_pass_the_prefilter_but_their_errors_do_not() -> None:
    """What the trigger lets through takes the receiver's slow path: a mount line
    must not, every filesystem start must."""
    from netconsole.incidents._patterns import STARTS, TRIGGER

    everyday = ["EXT4-fs (nvme0n1p2): mounted filesystem 4f6f2c1e r/w with ordered data "
                "mode. Quota mode: none.", "EXT4-fs (sda1): re-mounted 4f6f2c1e r/w.",
                "BTRFS info (device sdb1): using crc32c (crc32c-intel) checksum algorithm",
                "BTRFS: device fsid 5d2c uuid 7e1f devid 1 transid 19 /dev/sdb1"]
    for line in everyday:
        assert TRIGGER.search(line) is None, line
    errors = ["EXT4-fs error (device sda1): ext4_find_entry:1676: inode #2: comm ls: "
              "reading directory lblock 0",
              "EXT4-fs (dm-0): Remounting filesystem read-only",
              "EXT4-fs (sdb): ext4_do_writepages:2745: inode #12: error -5",
              "EXT4-fs critical (device vda1): ext4_lookup:1820: inode #2",
              "BTRFS error (device sdb1): bdev /dev/sdb1 errs: wr 0, rd 1",
              "BTRFS critical (device sdb1): corrupt leaf: root=1",
              "XFS (sdc1): Corruption detected. Unmount and run xfs_repair"]
    for line in errors:
        assert any(s.pattern.search(line) for s in STARTS), line
        assert TRIGGER.search(line) is not None, line
