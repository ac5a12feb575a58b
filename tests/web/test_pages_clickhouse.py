"""The web view on the ClickHouse store, in a real browser: fleet → host → incident →
trace → the records around it, and search, as test_pages.py walks them on SQLite
(its tests marked `BOTH_STORES` run here too: scrolling back, a jump to a time,
incidents, the live tail, hostile text, odd names).

The site is `listen --store clickhouse://… --web` on two real servers;
`netconsole web --db clickhouse://…` serves it too. What differs from SQLite: record ids are
63-bit hashes (19 digits, not in time order), and search takes no FTS5 syntax.
Other tests of the session may have added machines by now: counts are checked
by status, not in total.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from netconsole.store import SQLiteReader, StoredRecord, open_reader
from netconsole.store._views import SQLiteViews, ViewQueries
from netconsole.store.clickhouse import ClickHouseViews
from netconsole.web._rows import timeline_rows
from tests.web.conftest import (
    HOSTILE_NAME,
    HOSTILE_USERDATA,
    Site,
    WebCommand,
    console_problems,
)
from tests.web.test_pages import css, fleet_rows, wait


def _records(site: Site, host: str) -> list[StoredRecord]:
    with open_reader(site.store) as reader:
        return reader.tail(host=host, limit=100_000)


def test_fleet_host_incident_trace_and_the_records_around_it(clickhouse_site: Site,
                                                             browser: Any) -> None:
    site, b = clickhouse_site, browser
    b.get(site.url("/"))
    counts = [c.text.replace("\n", " ") for c in css(b, ".counts .count")]
    assert counts[2:4] == ["0 silent", "2 crashed"]
    rows = fleet_rows(b)
    assert rows[site.crash_host] == rows[site.panic_host] == "crashed"
    assert rows[site.lossy_host] == rows[site.sysdata_host] == "live"
    assert list(rows)[:2] == sorted([site.crash_host, site.panic_host])
    assert css(b, "svg.chart rect.bar-records") and css(b, "svg.status rect.st-crashed")

    b.find_element(By.LINK_TEXT, "records").click()
    wait(b, lambda d: "sort=records" in d.current_url)
    by_records = [int(r.find_elements(By.TAG_NAME, "td")[4].text)
                  for r in css(b, "#fleet tbody tr")]
    assert by_records == sorted(by_records)
    b.find_element(By.CSS_SELECTOR, ".counts a.st-crashed").click()
    wait(b, lambda d: "status=crashed" in d.current_url)
    assert set(fleet_rows(b)) == {site.crash_host, site.panic_host}

    # fleet -> host
    b.find_element(By.LINK_TEXT, site.crash_host).click()
    wait(b, lambda d: d.find_element(By.CSS_SELECTOR, "h1 .hostname").text == site.crash_host)
    assert b.find_element(By.CSS_SELECTOR, "h1 .st").text == "crashed"
    assert "sysrq triggered crash" in b.find_element(By.CSS_SELECTOR, "p.crashed").text
    # The newest 200 records hold the oops and the panic. Where each stands among
    # the rows is web/_rows.py's (by id: not yet the store's order on ClickHouse).
    incidents = [r.text for r in css(b, "#timeline tr.inc")]
    assert len(incidents) == 2, incidents
    assert any("NULL pointer" in i for i in incidents)
    assert any("panic: Kernel panic - not syncing: sysrq triggered crash" in i
               for i in incidents)
    records = css(b, "#timeline tr.rec")
    assert len(records) == 200 and "Rebooting in 1 seconds.." in records[-1].text
    newest = _records(site, site.crash_host)[-200:]
    assert [r.get_attribute("id") for r in records] == [f"r{s.id}" for s in newest]
    assert css(b, "#timeline tr.lvl0") and css(b, "#timeline tr.lvl4")

    # host -> incident
    oops = next(a for a in css(b, "#timeline tr.inc a") if "NULL pointer" in a.text)
    b.execute_script("arguments[0].scrollIntoView({block: 'center'})", oops)
    oops.click()
    wait(b, lambda d: "/incident/" in d.current_url)
    assert ("BUG: kernel NULL pointer dereference, address: 0000000000000000"
            in b.find_element(By.TAG_NAME, "h1").text)
    # the trace, its culprit frame marked
    culprit = css(b, "#trace li.culprit")
    assert [c.text for c in culprit] == ["RIP: do_oops+0x11/0x30 [labtrig] culprit"]
    frames = [li.text for li in css(b, "#trace li")]
    assert any(f.startswith("labtrig_init+0x10d/0xff0 [labtrig]") for f in frames)
    assert "Oops: Oops: 0002 [#1]" in b.find_element(By.ID, "report").text
    # the host's records around it: before, the report's own, after
    before, report, after = (css(b, f"#around tr.{c}") for c in ("before", "in-report",
                                                                  "after"))
    assert len(before) == 15 and len(report) >= 10
    assert "still alive after Oops" in after[0].text
    assert "Rebooting in 1 seconds.." in after[-1].text
    assert "about to write through a NULL pointer" in " ".join(r.text for r in before[-3:])

    # a record before it -> its place in the host's timeline (a 63-bit id)
    link = before[-1].find_element(By.CSS_SELECTOR, "td.t a")
    record_id = before[-1].get_attribute("id")
    link.click()
    wait(b, lambda d: "/host?" in d.current_url)
    assert b.execute_script("return document.querySelector(':target').id") == record_id
    shown = [r.get_attribute("id") for r in css(b, "#timeline tr.rec")]
    at = shown.index(record_id)
    assert "about to write through a NULL pointer" in " ".join(
        r.text for r in css(b, "#timeline tr.rec")[max(0, at - 2):at + 3])
    assert b.find_element(By.ID, record_id).is_displayed()
    assert console_problems(b) == []


def test_search_marks_matches_and_links_into_the_timeline(clickhouse_site: Site,
                                                          browser: Any) -> None:
    site, b = clickhouse_site, browser
    b.get(site.url("/search"))
    box = b.find_element(By.CSS_SELECTOR, "form[role=search] input[name=q]")
    box.send_keys("labtrig")
    box.submit()
    wait(b, lambda d: "q=labtrig" in d.current_url)
    hits = css(b, "#hits tr.rec")
    assert len(hits) > 5 and all(site.crash_host in h.text for h in hits)
    assert {m.text for m in css(b, "#hits mark")} == {"labtrig"}
    b.get(site.url("/search?q=labtrig+NULL"))  # every word, each marked
    hits = css(b, "#hits tr.rec")
    assert {m.text.lower() for m in css(b, "#hits mark")} == {"labtrig", "null"}
    hit_id = hits[0].get_attribute("id")
    hits[0].find_element(By.CSS_SELECTOR, "td.t a").click()
    wait(b, lambda d: "/host?" in d.current_url)
    assert b.execute_script("return document.querySelector(':target').id") == hit_id
    assert "NULL" in b.find_element(By.ID, hit_id).text

    # the filters of `netconsole search`: host, and a userdata field exactly
    b.get(site.url(f"/search?q=labtrig&host={site.sysdata_host}"))
    assert b.find_element(By.ID, "summary").text.startswith("0 matches")
    rack = urllib.parse.quote(f"rack={HOSTILE_USERDATA}")
    b.get(site.url(f"/search?q=Call+Trace&field={rack}"))
    hosts = {r.find_element(By.CSS_SELECTOR, "td.stream").text for r in css(b, "#hits tr.rec")}
    assert hosts == {HOSTILE_NAME}
    b.get(site.url("/search?q=Call+Trace&field=rack%3Delsewhere"))
    assert b.find_element(By.ID, "summary").text.startswith("0 matches")
    # FTS5 syntax is SQLite's: said so, as the CLI says it
    b.get(site.url("/search?q=%22link+is%22+OR+oops*&fts=1"))
    assert b.find_element(By.CSS_SELECTOR, ".problem").text.startswith(
        "cannot search for that: --fts is SQLite FTS5 syntax")
    assert console_problems(b) == []


def test_record_ids_of_63_bits(clickhouse_site: Site) -> None:
    """Ids up to 2^63 - 1 in every parameter that takes one, and in Last-Event-ID."""
    site = clickhouse_site
    records = _records(site, site.crash_host)
    texts = [s.record.text for s in records]
    # the highest id whose text no other record contains (the live tail's text filter)
    top = max((s for s in records if sum(s.record.text in t for t in texts) == 1),
              key=lambda s: s.id)
    assert len(str(top.id)) == 19
    host = urllib.parse.quote(site.crash_host)
    for query in (f"around={top.id}", f"before={top.id}", f"after={top.id}"):
        assert site.get(f"/host?h={host}&{query}")[0] == 200, query
    assert f'id="r{top.id}"'.encode() in site.get(f"/host?h={host}&around={top.id}")[2]
    assert site.get(f"/host/records?h={host}&before={top.id}")[0] == 200
    assert site.get(f"/host?h={host}&before={2**63}")[0] == 400

    # The live tail resumes after the id the browser last got, not from the newest.
    text = urllib.parse.quote(top.record.text.decode())
    events = f"/live/events?host={host}&text={text}"
    [data] = [line for line in _sse(site.url(events)) if line.startswith(b"data:")]
    # As text: a JavaScript number is exact only to 2^53 (live.js names rows by it).
    assert json.loads(data[len(b"data:"):])["id"] == str(top.id)
    assert not any(line.startswith(b"data:")
                   for line in _sse(site.url(events), {"Last-Event-ID": str(top.id)}))


def _sse(url: str, headers: dict[str, str] | None = None) -> list[bytes]:
    """The lines a live tail sends within about a second and a half."""
    lines: list[bytes] = []
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                timeout=1.5) as reply:
        try:
            while True:
                lines.append(reply.readline().strip())
        except TimeoutError:
            pass
    return lines


def test_netconsole_web_serves_a_clickhouse_store(clickhouse_site: Site,
                                                  tmp_path: Path) -> None:
    """`netconsole web --db clickhouse://…`, beside the receiver that serves the rest."""
    web = WebCommand(tmp_path, str(clickhouse_site.store))
    try:
        url = f"http://127.0.0.1:{web.port}/?status=crashed"
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = reply.read().decode()
        assert clickhouse_site.crash_host in body and clickhouse_site.panic_host in body
    finally:
        assert web.stop() == 0, web.stderr


@pytest.mark.parametrize("site", ["sqlite", "clickhouse"], indirect=True)
def test_each_incident_stands_before_its_first_record(site: Site) -> None:
    with open_reader(site.store) as reader:
        views: ViewQueries = SQLiteViews(reader) if isinstance(reader, SQLiteReader) else \
            ClickHouseViews(reader)
        streams = views.host_streams(site.crash_host, now=time.time())
        rows = timeline_rows(views.timeline([h.id for h in streams]))
    placed = [(row.incident.first_record_id, next(
        r.record.id for r in rows[i:] if r.kind == "record" and r.record is not None))
        for i, row in enumerate(rows) if row.kind == "incident" and row.incident is not None]
    assert len(placed) == 2
    assert [first for first, _ in placed] == [record for _, record in placed]
