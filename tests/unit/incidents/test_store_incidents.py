"""Incidents in the SQLite store: upserted with their batch, linked to records, queried."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from netconsole.incidents import IncidentTable
from netconsole.store import Retention, SQLiteStore, open_store
from netconsole.stream.events import Reboot, RebootReason
from tests.unit.incidents import reports
from tests.unit.incidents.conftest import HOST, OTHER, T0, expire_until, lines_to_records


@pytest.fixture
def store() -> Iterator[SQLiteStore]:
    s = open_store(":memory:")
    yield s
    s.close()


def test_store_incident_is_linked_to_its_records(store: SQLiteStore) -> None:
    table = IncidentTable()
    records = lines_to_records("hello\n" + reports.KERNEL_BUG + "\nafter")
    store.apply(table.process(records, records[-1].received))
    (inc,) = store.reader.incidents()
    assert (inc.kind, inc.state, inc.title) == ("oops", "closed",
                                                 "kernel BUG at fs/ext4/inode.c:2786!")
    assert inc.culprit == "ext4_writepages+0xf1e/0x1010 [ext4]"
    assert (inc.first_seq, inc.last_seq) == (101, 100 + len(reports.KERNEL_BUG.split("\n")))
    linked = store.reader.incident_records(inc.id)
    assert [r.record.seq for r in linked] == list(range(inc.first_seq, inc.last_seq + 1))
    assert "\n".join(r.record.text.decode() for r in linked) == inc.text
    assert store.reader.incident(inc.id) == inc
    assert store.reader.incident(inc.id + 1) is None
    assert any(f["function"] == "do_writepages" for f in inc.frames)


def test_store_incident_upserts_across_batches(store: SQLiteStore) -> None:
    table = IncidentTable()
    records = lines_to_records(reports.HUNG_TASK)
    store.apply(table.process(records[:5], records[4].received))
    (open_,) = store.reader.incidents()
    assert open_.state == "open" and open_.lines == 5 and open_.closed_at is None
    store.apply(table.process(records[5:], records[-1].received))
    (closed,) = store.reader.incidents()
    assert closed.id == open_.id and closed.state == "closed" and closed.lines == len(records)
    assert closed.first_record_id == open_.first_record_id
    assert closed.last_record_id is not None and closed.last_record_id > open_.last_record_id


def test_store_incident_closed_by_reboot_keeps_the_old_boot(store: SQLiteStore) -> None:
    table = IncidentTable()
    half = lines_to_records("\n".join(reports.OOM.split("\n")[:10]))
    reboot = Reboot(sender=HOST, at=half[-1].received + 5, reason=RebootReason.SEQ_BACK,
                    previous_seq=109, seq=0, previous_release=None, release=None)
    fresh = lines_to_records(reports.KERNEL_BUG, seq=0, t=reboot.at)
    store.apply(table.process([*half, reboot, *fresh], reboot.at))
    got = [(i.kind, i.boot, i.truncated) for i in store.reader.incidents()]
    assert got == [("oom", 0, True), ("oops", 1, False)]


def test_store_top_groups_the_same_crash_across_hosts(store: SQLiteStore) -> None:
    table = IncidentTable()
    batch = []
    for n, sender in enumerate((HOST, OTHER)):
        batch += lines_to_records(reports.warn(cpu=n, pid=100 + n), sender=sender,
                                  t=T0 + n, seq=10 * n)
    batch += lines_to_records(reports.SOFT_LOCKUP, t=T0 + 5, seq=500)
    store.apply(table.process(batch, T0 + 6))
    top = store.reader.incidents_top()
    assert [(g.kind, g.incidents, g.hosts) for g in top] == [("warning", 2, 2),
                                                            ("soft_lockup", 1, 1)]
    assert set(top[0].host_names) == {HOST.host, OTHER.host}
    assert [i.kind for i in store.reader.incidents(host=OTHER.host)] == ["warning"]
    assert [i.kind for i in store.reader.incidents(kind="soft_lockup")] == ["soft_lockup"]
    assert store.reader.incidents(since=T0 + 4.5)[0].kind == "soft_lockup"
    assert store.reader.incidents(host="nobody") == []
    assert len(store.reader.incidents(fingerprint=top[0].fingerprint)) == 2


def test_store_silence_is_an_event(store: SQLiteStore) -> None:
    table = IncidentTable()
    panic = lines_to_records("Kernel panic - not syncing: Fatal exception\nRebooting in 1 "
                             "seconds..")
    store.apply(table.process(panic, panic[-1].received))
    store.apply(expire_until(table, panic[-1].received + 60))
    (event,) = store.reader.events(kind="silence")
    assert event.detail["reason"] == "after_crash" and event.detail["phase"] == "started"
    host = store.reader.hosts(now=T0)[0]
    assert host.last_seen == pytest.approx(panic[-1].received)  # a silence is not a sighting


def test_store_retention_by_age_removes_old_incidents() -> None:
    store = open_store(":memory:", retention=Retention(max_age=3600))
    table = IncidentTable()
    records = lines_to_records(reports.KERNEL_BUG)
    store.apply(table.process(records, records[-1].received))
    store.enforce_retention(T0 + 1800)
    assert len(store.reader.incidents()) == 1
    store.enforce_retention(T0 + 7200)
    assert store.reader.incidents() == []
    store.close()


def test_store_a_pstore_replay_belongs_to_the_previous_boot(store: SQLiteStore) -> None:
    """The host rebooted (boot 1 now) and `forward` replays the panic of boot 0."""
    from dataclasses import replace

    table = IncidentTable()
    before = lines_to_records("hello", seq=500)
    reboot = Reboot(sender=HOST, at=before[-1].received + 30, reason=RebootReason.SEQ_BACK,
                    previous_seq=500, seq=1, previous_release=None, release=None)
    replay = [replace(r, fields=((b"pstore", b"dmesg-ramoops-0"),))
              for r in lines_to_records(reports.KERNEL_BUG, seq=1, t=reboot.at + 1)]
    store.apply(table.process([*before, reboot, *replay], replay[-1].received + 10))
    store.apply(table.expire(replay[-1].received + 60))
    (inc,) = store.reader.incidents()
    assert (inc.kind, inc.previous_boot, inc.boot) == ("oops", True, 0)
    assert [h.boot for h in store.reader.hosts(now=replay[-1].received)] == [1]


def test_store_counts_what_was_shed_per_host(store: SQLiteStore) -> None:
    from netconsole.store import Shed

    store.apply([*lines_to_records("hello"), Shed(sender=OTHER, at=T0 + 1, count=1234),
                 Shed(sender=OTHER, at=T0 + 2, count=6)])
    shed = dict(store._conn.execute("SELECT address, shed FROM hosts").fetchall())
    assert shed == {HOST.host: 0, OTHER.host: 1240}
    rows = store._conn.execute("SELECT detail FROM events WHERE kind = 'shed'").fetchall()
    assert rows == [('{"count": 1234}',), ('{"count": 6}',)]
