"""What a person sees in a real browser: fleet → host → incident → trace → the records
around it, scrolling back, the live tail, search; and hostile text that stays text.

Tests marked `BOTH_STORES` run on the SQLite and on the ClickHouse site;
test_pages_clickhouse.py has the ClickHouse versions of the others."""

from __future__ import annotations

import re
import time
import urllib.parse
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from netconsole.store import open_reader
from netconsole.wire import OutgoingRecord, encode_extended
from tests.integration.listen_harness import FakeHost
from tests.web.conftest import (
    HOSTILE_NAME,
    HOSTILE_RELEASE,
    HOSTILE_TEXTS,
    HOSTILE_USERDATA,
    Site,
    console_problems,
)

BOTH_STORES = pytest.mark.parametrize("site", ["sqlite", "clickhouse"], indirect=True)


def css(driver: Any, selector: str) -> list[Any]:
    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def wait(driver: Any, condition: Any, timeout: float = 10) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def fleet_rows(driver: Any) -> dict[str, str]:
    """machine -> status, as the fleet table shows them (none: "no machines match")."""
    out = {}
    for row in css(driver, "#fleet tbody tr:not(:has(td.empty))"):
        cells = row.find_elements(By.TAG_NAME, "td")
        out[cells[0].text] = cells[1].find_element(By.CSS_SELECTOR, ".st").text
    return out


def test_fleet_host_incident_trace_and_the_records_around_it(site: Site, browser: Any) -> None:
    b = browser
    b.get(site.url("/"))
    counts = [c.text.replace("\n", " ") for c in css(b, ".counts .count")]
    assert counts[:4] == ["5 machines", "3 live", "0 silent", "2 crashed"]
    rows = fleet_rows(b)
    assert rows[site.crash_host] == rows[site.panic_host] == "crashed"
    assert rows[site.lossy_host] == rows[site.sysdata_host] == "live"
    # crashed first: the default order is by status
    assert list(rows)[:2] == sorted([site.crash_host, site.panic_host])
    assert css(b, "svg.chart rect.bar-records") and css(b, "svg.status rect.st-crashed")
    site.screenshot(b, "fleet")

    # Sort by records (a click on the header), then filter to the crashed machines.
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
    # the newest 200 records hold the oops and the panic (the WARN is further back)
    incidents = [r.text for r in css(b, "#timeline tr.inc")]
    assert len(incidents) == 2 and "NULL pointer" in incidents[0], incidents
    assert "panic: Kernel panic - not syncing: sysrq triggered crash" in incidents[1]
    assert css(b, "#timeline tr.lvl0") and css(b, "#timeline tr.lvl4")  # levels coloured
    assert "Rebooting in 1 seconds.." in css(b, "#timeline tr.rec")[-1].text
    site.screenshot(b, "host-timeline")  # it opens at the newest records: the crash
    # the top of the page (the picture), without loading older records for once
    b.execute_script("document.getElementById('older').removeAttribute('data-src');"
                     "window.scrollTo(0, 0)")
    site.screenshot(b, "host")

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
    assert "still alive after Oops" in after[0].text  # then the host's last five records
    assert "Rebooting in 1 seconds.." in after[-1].text
    assert "about to write through a NULL pointer" in " ".join(r.text for r in before[-3:])
    site.screenshot(b, "incident")

    # a record before it -> its place in the host's timeline
    link = before[-1].find_element(By.CSS_SELECTOR, "td.t a")
    record_id = before[-1].get_attribute("id")
    link.click()
    wait(b, lambda d: "/host?" in d.current_url)
    target = b.execute_script("return document.querySelector(':target').id")
    assert target == record_id
    row = b.find_element(By.ID, record_id)
    assert "about to write through a NULL pointer" in " ".join(
        r.text for r in css(b, "#timeline tr.rec")
        if abs(int(r.get_attribute("id")[1:]) - int(record_id[1:])) < 3)
    assert row.is_displayed()
    assert console_problems(b) == []


@BOTH_STORES
def test_host_timeline_scrolls_back_with_its_gap_and_reboot(site: Site, browser: Any) -> None:
    b = browser
    b.get(site.url(f"/host?h={site.lossy_host}"))
    wait(b, lambda d: len(css(d, "#timeline tr.rec")) > 0)
    first = len(css(b, "#timeline tr.rec"))
    assert first == 200
    # starts at the newest: the last row is in view
    assert b.execute_script(
        "const r = document.querySelector('#timeline tbody').lastElementChild"
        ".getBoundingClientRect(); return r.bottom <= window.innerHeight + 1")
    # scroll back until the first record stored
    for _ in range(20):
        b.execute_script("window.scrollTo(0, 0)")
        if "first record stored" in b.find_element(By.ID, "older").text:
            break
        time.sleep(0.2)
    with open_reader(site.store) as reader:
        stored = [s.id for s in reader.tail(host=site.lossy_host, limit=100_000)]
    ids = [int(r.get_attribute("id")[1:]) for r in css(b, "#timeline tr.rec")]
    assert ids == stored  # each once, in the store's order (SQLite's: by id)
    gaps = [r.text for r in css(b, "#timeline tr.ev-gap")]
    assert any("10 records lost" in g for g in gaps), gaps
    assert [r.text for r in css(b, "#timeline tr.boot")] == ["boot 1"]
    assert any("rebooted" in r.text for r in css(b, "#timeline tr.ev-reboot"))
    # the rate picture marks them too
    assert css(b, "svg.chart line.mark-reboot") and css(b, "svg.chart line.mark-gap")
    assert console_problems(b) == []


@BOTH_STORES
def test_jump_to_a_time(site: Site, browser: Any) -> None:
    with open_reader(site.store) as reader:
        records = reader.tail(host=site.sysdata_host, limit=100_000)
    middle = records[len(records) // 2]
    # the first record of the second the middle one arrived in
    second = int(middle.record.received)
    expected = next(r for r in records if r.record.received >= second)
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(second))
    b = browser
    b.get(site.url(f"/host?h={site.sysdata_host}&at={urllib.parse.quote(at)}"))
    row = wait(b, lambda d: d.find_element(By.CSS_SELECTOR, "#timeline tr.target"))
    assert row.get_attribute("id") == f"r{expected.id}"
    assert row.is_displayed()
    assert b.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return r.top >= 0 && r.bottom <= window.innerHeight", row)


@BOTH_STORES
def test_incidents_grouped_by_fingerprint(site: Site, browser: Any) -> None:
    b = browser
    b.get(site.url("/incidents"))
    groups = css(b, "#groups tbody tr")
    titles = [g.find_elements(By.TAG_NAME, "td")[3].text for g in groups]
    assert "BUG: kernel NULL pointer dereference, address: 0000000000000000" in titles
    assert sum(t == "Kernel panic - not syncing: sysrq triggered crash" for t in titles) == 2
    site.screenshot(b, "incidents")
    oops = next(g for g in groups if "NULL pointer" in g.text)
    oops.find_element(By.CSS_SELECTOR, "td.num a").click()
    wait(b, lambda d: "fingerprint=" in d.current_url)
    listed = css(b, "#incidents tbody tr")
    assert len(listed) == 1 and site.crash_host in listed[0].text
    listed[0].find_element(By.CSS_SELECTOR, "a.sev-critical, a.sev-error").click()
    wait(b, lambda d: "/incident/" in d.current_url)
    assert css(b, "#trace li.culprit")


@BOTH_STORES
def test_live_tail_shows_a_new_record_within_2s_and_pauses_when_scrolled_back(
        site: Site, browser: Any) -> None:
    b = browser
    b.get(site.url("/live"))
    wait(b, lambda d: len(css(d, "#live tbody tr")) == 50)  # the newest 50 to start with
    assert b.find_element(By.ID, "state").text == "following: 50 records"
    sender = FakeHost("127.0.0.7")
    try:
        def send(text: str) -> None:
            sender.send(sender.datagrams(1, text.encode()), site.listener.port)

        token = f"live-{time.time_ns()}"
        sent = time.monotonic()
        send(f"{token} eth0: link up")
        wait(b, lambda d: any(token in r.text for r in css(d, "#live tbody tr")), timeout=2)
        assert time.monotonic() - sent < 2
        row = css(b, "#live tbody tr")[-1]
        assert token in row.text and "127.0.0.7" in row.text
        site.screenshot(b, "live")

        # Scrolled back, it pauses: the next record waits, counted, until the bottom.
        b.execute_script("window.scrollTo(0, 0)")
        wait(b, lambda d: d.find_element(By.ID, "state").text.startswith("paused"))
        later = f"later-{time.time_ns()}"
        send(later)
        wait(b, lambda d: "1 new record waits" in d.find_element(By.ID, "state").text)
        assert not any(later in r.text for r in css(b, "#live tbody tr"))
        b.execute_script("window.scrollTo(0, document.documentElement.scrollHeight)")
        wait(b, lambda d: any(later in r.text for r in css(d, "#live tbody tr")))
        wait(b, lambda d: d.find_element(By.ID, "state").text.startswith("following"))

        # Filters: only matching records, then and later.
        b.get(site.url(f"/live?host=127.0.0.7&text={token.upper()}"))
        wait(b, lambda d: len(css(d, "#live tbody tr")) == 1)
        filtered = f"{token} again"
        send(filtered)
        send("not this one")
        wait(b, lambda d: any("again" in r.text for r in css(d, "#live tbody tr")), timeout=2)
        time.sleep(0.5)
        assert [r.text.split()[-2:] for r in css(b, "#live tbody tr")] == [
            ["link", "up"], [token, "again"]]
        assert console_problems(b) == []
    finally:
        sender.close()


def test_search_marks_matches_and_links_into_the_timeline(site: Site, browser: Any) -> None:
    b = browser
    b.get(site.url("/search"))
    box = b.find_element(By.CSS_SELECTOR, "form[role=search] input[name=q]")
    box.send_keys("labtrig")
    box.submit()
    wait(b, lambda d: "q=labtrig" in d.current_url)
    hits = css(b, "#hits tr.rec")
    assert len(hits) > 5 and all(site.crash_host in h.text for h in hits)
    assert {m.text for m in css(b, "#hits mark")} == {"labtrig"}
    site.screenshot(b, "search")
    b.get(site.url("/search?q=labtrig+NULL"))  # every word, each marked
    hits = css(b, "#hits tr.rec")
    assert {m.text.lower() for m in css(b, "#hits mark")} == {"labtrig", "null"}
    hit = hits[0]
    hit_id = hit.get_attribute("id")
    hit.find_element(By.CSS_SELECTOR, "td.t a").click()
    wait(b, lambda d: "/host?" in d.current_url)
    assert b.execute_script("return document.querySelector(':target').id") == hit_id
    assert "NULL" in b.find_element(By.ID, hit_id).text

    # the same filters as `netconsole search`: host, and FTS5 syntax
    b.get(site.url(f"/search?q=labtrig&host={site.sysdata_host}"))
    assert b.find_element(By.ID, "summary").text.startswith("0 matches")
    b.get(site.url("/search?q=%22link+is%22+OR+oops*&fts=1"))
    assert css(b, "#hits tr.rec")
    # and the record facts: a userdata field, exactly
    rack = urllib.parse.quote(f"rack={HOSTILE_USERDATA}")
    b.get(site.url(f"/search?q=Call+Trace&field={rack}"))
    hosts = {r.find_element(By.CSS_SELECTOR, "td.stream").text for r in css(b, "#hits tr.rec")}
    assert hosts == {HOSTILE_NAME}
    b.get(site.url("/search?q=Call+Trace&field=rack%3Delsewhere"))
    assert b.find_element(By.ID, "summary").text.startswith("0 matches")
    b.get(site.url("/search?q=%22unclosed&fts=1"))
    assert b.find_element(By.CSS_SELECTOR, ".problem").text == (
        "cannot search for that: unterminated string")


def _no_script_ran(driver: Any) -> None:
    assert driver.execute_script("return window.__pwned") is None
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018 (raises when no alert is open)
    injected = css(driver, "img[src='x'], iframe, svg[onload], b[onmouseover], "
                           "script:not([src^='/static/'])")
    assert injected == []
    assert css(driver, "script[src]") == css(driver, "script[src^='/static/']")
    assert console_problems(driver) == []


@BOTH_STORES
def test_hostile_text_is_shown_as_text_and_runs_nothing(site: Site, browser: Any) -> None:
    b = browser
    b.get(site.url("/"))
    _no_script_ran(b)
    body = b.find_element(By.TAG_NAME, "body").text
    assert HOSTILE_NAME in body and HOSTILE_RELEASE in body

    # its host page, reached by clicking its name
    b.find_element(By.LINK_TEXT, HOSTILE_NAME).click()
    wait(b, lambda d: d.find_element(By.CSS_SELECTOR, "h1 .hostname").text == HOSTILE_NAME)
    _no_script_ran(b)
    texts = [r.find_element(By.CSS_SELECTOR, "td.msg .text").text
             for r in css(b, "#timeline tr.rec")]
    for payload in HOSTILE_TEXTS[:4]:
        assert payload in texts
    assert "\\x1b[31mred\\x1b[0m \\u202egnp.exe" in texts  # control characters shown, not obeyed
    assert f"rack={HOSTILE_USERDATA}" in b.find_element(By.ID, "timeline").text
    assert b.title.startswith(HOSTILE_NAME)
    site.screenshot(b, "hostile")

    # its incident: a WARN whose title and frames are markup
    link = next(a for a in css(b, "#timeline tr.inc a"))
    b.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    wait(b, lambda d: "/incident/" in d.current_url)
    _no_script_ran(b)
    assert "<img src=x onerror=alert('incident')>" in b.find_element(By.TAG_NAME, "h1").text
    for path in ("/incidents", "/search?q=pwned", "/search?q=%3Cscript%3E",
                 f"/host?h={urllib.parse.quote(HOSTILE_NAME)}&span=1h"):
        b.get(site.url(path))
        _no_script_ran(b)

    # the live tail, with hostile records arriving after the page opened
    b.get(site.url("/live"))
    wait(b, lambda d: d.find_element(By.ID, "state").text.startswith("following"))
    fresh = "<img src=x onerror=\"window.__pwned='live'\"><script>alert('live')</script>"
    site.send(fresh)
    wait(b, lambda d: any(fresh in r.text for r in css(d, "#live tbody tr")), timeout=5)
    _no_script_ran(b)


@BOTH_STORES
def test_a_name_that_is_a_path_or_a_query_still_finds_its_host(site: Site,
                                                                browser: Any) -> None:
    """Host names travel in the query string, escaped: `/`, `?`, `#`, `&` and `..`
    in a name reach the right host."""
    name = "../../incident/1?h=x&before=1#r1"
    host = FakeHost("127.0.0.8")
    try:
        record = OutgoingRecord(facility=0, level=6, seq=1, ts_usec=1, text=b"odd name",
                                userdata=((b"hostname", name.encode()),))
        host.send(encode_extended(record), site.listener.port)
        b = browser

        def listed(d: Any) -> bool:
            d.get(site.url("/?q=incident"))
            return name in fleet_rows(d)

        wait(b, listed)
        b.find_element(By.LINK_TEXT, name).click()
        wait(b, lambda d: d.find_element(By.CSS_SELECTOR, "h1 .hostname").text == name)
        texts = [r.find_element(By.CSS_SELECTOR, ".text").text
                 for r in css(b, "#timeline tr.rec")]
        assert texts == ["odd name"]
        assert re.search(r"/host\?h=", b.current_url)
    finally:
        host.close()
