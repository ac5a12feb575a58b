"""store/_views.py over a real SQLite store written by the real writer: machines and
their crashed status, timeline pages, counts over time, search."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from netconsole.store import open_reader, open_store
from netconsole.store._views import SQLiteViews
from netconsole.stream.events import Gap, GapKind, Reboot, RebootReason, Record, Sender
from netconsole.wire import Mode

T0 = 1_800_000_000.0


def _sender(n: int, port: int = 6665) -> Sender:
    return Sender(host=f"10.0.0.{n}", port=port, local_port=6666)


def _record(sender: Sender, at: float, seq: int, text: str, name: str | None = None,
            level: int = 6) -> Record:
    fields = ((b"hostname", name.encode()),) if name else ()
    return Record(sender=sender, mode=Mode.EXTENDED, received=at, text=text.encode(),
                  facility=0, level=level, seq=seq, ts_usec=seq * 1000, fields=fields)


def _incident(db: Path, host: str, *, kind: str, at: float, fatal: bool = False,
              record_id: int | None = None) -> int:
    conn = sqlite3.connect(db)
    with conn:
        host_id, boot = conn.execute(
            "SELECT id, boot FROM hosts WHERE coalesce(name, address) = ?", (host,)).fetchone()
        cur = conn.execute(
            "INSERT INTO incidents (host_id, key, boot, kind, severity, state, title,"
            " fingerprint, frames, text, first_received, last_received, first_record_id,"
            " last_record_id, lines, fatal, updated_at) VALUES (?, ?, ?, ?, 'critical',"
            " 'closed', ?, ?, ?, 'report', ?, ?, ?, ?, 1, ?, ?)",
            (host_id, f"{kind}{at}", boot, kind, f"{kind} at {at}", f"fp-{kind}",
             json.dumps([]), at, at, record_id, record_id, int(fatal), at))
    conn.close()
    return int(cur.lastrowid or 0)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    """Five machines: web-1 (two streams), crashed-panic, crashed-oops (silent since),
    oops-then-fine, rebooted-after-panic; web-1 with a gap and a reboot."""
    path = tmp_path / "v.db"
    store = open_store(path)
    web_a, web_b = _sender(1), _sender(1, port=6667)
    events: list[object] = []
    for i in range(500):
        events.append(_record(web_a, T0 + i, i, f"web message {i}", "web-1"))
        if i == 100:
            events.append(Gap(sender=web_a, at=T0 + 150.5, kind=GapKind.SEQ, first=151,
                              count=4))
        if i == 300:
            events.append(Reboot(sender=web_a, at=T0 + 300.5, reason=RebootReason.SEQ_BACK,
                                 previous_seq=300, seq=0, previous_release=None,
                                 release=None))
    events += [_record(web_b, T0 + 10 + i, i, f"basic copy {i}", "web-1") for i in range(50)]
    for n, name in ((2, "crashed-panic"), (3, "crashed-oops"), (4, "oops-then-fine"),
                    (5, "rebooted")):
        events += [_record(_sender(n), T0 + i, i, f"{name} {i}", name) for i in range(20)]
    events.append(_record(_sender(4), T0 + 200, 20, "still fine", "oops-then-fine"))
    store.apply(events)  # type: ignore[arg-type]
    store.close()
    _incident(path, "crashed-panic", kind="panic", at=T0 + 19)
    _incident(path, "crashed-oops", kind="oops", at=T0 + 19)
    _incident(path, "oops-then-fine", kind="oops", at=T0 + 19)
    _incident(path, "rebooted", kind="panic", at=T0 + 19)
    store = open_store(path)
    store.apply([Reboot(sender=_sender(5), at=T0 + 60, reason=RebootReason.SEQ_BACK,
                        previous_seq=19, seq=0, previous_release=None, release=None),
                 _record(_sender(5), T0 + 60, 0, "booted again", "rebooted")])
    store.close()
    yield path


def _views(db: Path) -> SQLiteViews:
    return SQLiteViews(open_reader(db))


def test_machines_and_their_status(db: Path) -> None:
    views = _views(db)
    # At T0 + 250 with silent_after 100: web-1 (records up to T0 + 499) and
    # oops-then-fine (T0 + 200) are live, the others silent since T0 + 19 or + 60.
    found = {m.machine: m for m in views.machines(now=T0 + 250, silent_after=100)}
    assert {name: m.status for name, m in found.items()} == {
        "web-1": "live", "crashed-panic": "crashed", "crashed-oops": "crashed",
        "oops-then-fine": "live", "rebooted": "silent"}
    web = found["web-1"]
    assert web.streams == 2 and web.records == 550 and web.lost_seq == 4
    assert web.reboots == 1 and web.addresses == ("10.0.0.1",)
    assert found["crashed-panic"].crash_title == f"panic at {T0 + 19}"
    assert found["crashed-oops"].crash_id is not None and found["web-1"].crash_id is None
    # a reboot closes its incidents, and it is not crashed any more
    assert found["rebooted"].incidents == 1 and found["rebooted"].open_incidents == 0
    assert found["crashed-oops"].open_incidents == 1
    # Right after the oops, the host still live, it is not called crashed yet;
    # a panic is crashed at once.
    soon = {m.machine: m.status for m in views.machines(now=T0 + 25, silent_after=100)}
    assert soon["crashed-oops"] == "live" and soon["crashed-panic"] == "crashed"
    assert soon["oops-then-fine"] == "live"
    assert views.machine("web-1", now=T0 + 250, silent_after=100) == web
    assert views.machine("nobody", now=T0) is None


def test_fleet_filters_sorts_and_pages(db: Path) -> None:
    views = _views(db)
    page = views.fleet(now=T0 + 250, silent_after=100, sort="records", descending=True,
                       limit=2)
    assert [m.machine for m in page.machines] == ["web-1", "oops-then-fine"]
    assert page.matched == page.total == 5
    assert page.counts == {"live": 2, "silent": 1, "crashed": 2}
    assert page.records == 550 + 20 * 4 + 1 + 1
    crashed = views.fleet(now=T0 + 250, silent_after=100, status="crashed")
    assert sorted(m.machine for m in crashed.machines) == ["crashed-oops", "crashed-panic"]
    assert [m.machine for m in views.fleet(now=T0, needle="OOPS", sort="machine").machines
            ] == ["crashed-oops", "oops-then-fine"]
    assert views.fleet(now=T0, needle="10.0.0.1").matched == 1
    by_status = views.fleet(now=T0 + 250, silent_after=100).machines
    assert [m.status for m in by_status] == ["crashed", "crashed", "silent", "live", "live"]


def test_scrolling_back_shows_every_record_and_event_once(db: Path) -> None:
    views = _views(db)
    ids = views.machine("web-1", now=T0).host_ids  # type: ignore[union-attr]
    seen: list[int] = []
    events: list[int] = []
    page = views.timeline(ids, limit=64)
    assert not page.newer
    while True:
        seen[:0] = [s.id for s in page.records]
        events += [e.id for e in page.events]
        if not page.older:
            break
        page = views.timeline(ids, before=page.records[0].id, limit=64)
    assert len(seen) == 550 and seen == sorted(set(seen))
    assert sorted(events) == sorted(set(events)) and len(events) == 2  # the gap, the reboot
    around = views.timeline(ids, around=seen[300], limit=20)
    assert [s.id for s in around.records] == seen[290:310]
    assert around.older and around.newer
    at = views.record_at(ids, T0 + 400.2)
    assert at is not None and views.timeline(ids, around=at).records
    assert views.record_at(ids, T0 + 10_000) is None


def test_activity_counts_what_is_stored(db: Path) -> None:
    views = _views(db)
    fleet = views.activity(since=T0, until=T0 + 600, step=60)
    assert len(fleet.buckets) == 10
    assert sum(b.records for b in fleet.buckets) == 550 + 81 + 1
    assert sum(b.incidents for b in fleet.buckets) == 4
    ids = views.machine("web-1", now=T0).host_ids  # type: ignore[union-attr]
    host = views.activity(since=T0, until=T0 + 600, step=60, host_ids=ids)
    assert [b.records for b in host.buckets] == [110, 60, 60, 60, 60, 60, 60, 60, 20, 0]
    assert sorted(m.kind for m in host.marks) == ["gap", "reboot"]
