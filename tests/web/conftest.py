"""The web view's tests: a real `netconsole listen --web` fed real kernel captures and
hostile records over loopback, and Debian's Chromium driven by Selenium.

One receiver and one browser serve the whole module set (session scope): the
replay is what takes time. Every page a test opens is saved as a screenshot: in
docs/screenshots/ (the README shows them) when NETCONSOLE_SCREENSHOTS=1, else in
a temporary directory, so that a test run leaves the tree as it was.

The same replay also goes to `netconsole listen --store clickhouse://…` on two
real ClickHouse servers (tests/integration/clickhouse/server.py), served by
`netconsole web --db clickhouse://…` (`clickhouse_site`): tests that hold on
both stores take `site` parametrized `["sqlite", "clickhouse"]` (indirect);
its pages are not saved as screenshots.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netconsole.wire import OutgoingRecord, encode_extended
from tests.helpers import capture, udp_payloads
from tests.integration.clickhouse.server import Cluster, available
from tests.integration.listen_harness import FakeHost, Listener, _die_with_parent, free_tcp_port

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOTS = (DOCS_SCREENSHOTS if os.environ.get("NETCONSOLE_SCREENSHOTS") == "1"
               else Path(tempfile.mkdtemp(prefix="netconsole-screenshots-")))
if SCREENSHOTS != DOCS_SCREENSHOTS:
    atexit.register(shutil.rmtree, SCREENSHOTS, True)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

CRASH = capture("6.12.117+deb12-amd64", "crash")
PANIC = capture("6.12.117+deb12-amd64", "panic")
SYSDATA = capture("7.2.13+deb14-amd64", "sysdata")
EXTENDED = capture("7.2.13+deb14-amd64", "extended")

# What hostile senders write, each setting a flag if it ever runs.
HOSTILE_NAME = "<img src=x onerror=\"window.__pwned='hostname'\">"
HOSTILE_TEXTS = (
    "<script>window.__pwned='text'</script>",
    "\"><img src=x onerror=\"window.__pwned='attribute'\">",
    "'><svg onload=alert('svg')></svg><iframe src=javascript:alert(1)>",
    "</td></tr></table><script src=/static/x.js></script>{{7*7}} ${7*7}",
    "\x1b[31mred\x1b[0m \u202egnp.exe",
)
HOSTILE_RELEASE = "\"><script>window.__pwned='release'</script>"
HOSTILE_USERDATA = "<b onmouseover=\"window.__pwned='userdata'\">rack</b>"
HOSTILE_WARN = (
    "------------[ cut here ]------------",
    "WARNING: CPU: 0 PID: 1 at <img src=x onerror=alert('incident')> evil_fn+0x1/0x2",
    "Call Trace:",
    " <TASK>",
    " <script>window.__pwned='frame'</script>+0x1/0x2",
    " evil_fn+0x10/0x20",
    " </TASK>",
    "---[ end trace 0000000000000000 ]---",
)


@dataclass
class Site:
    """The receiver serving the web view, and who sent what."""

    listener: Listener
    base: str
    crash_host: str  # replayed crash.pcap: a WARN, an oops and a panic
    panic_host: str  # replayed panic.pcap
    sysdata_host: str  # 7.2's sysdata capture: userdata, cpu, taskname
    lossy_host: str  # 7.2's extended capture, with a loss gap, then again (a reboot)
    hostile_host: FakeHost
    screenshots: bool  # docs/screenshots/ show the SQLite site's pages

    @property
    def store(self) -> Path | str:
        """What `open_reader` opens: the ClickHouse URL, else the SQLite file."""
        return self.listener.store or self.listener.db

    def url(self, path: str) -> str:
        return self.base + path

    def screenshot(self, driver: Any, name: str) -> None:
        if self.screenshots:
            screenshot(driver, name)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        request = urllib.request.Request(self.url(path), headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def send(self, text: str, *, level: int = 4, name: str = HOSTILE_NAME,
             release: str | None = HOSTILE_RELEASE) -> None:
        """One extended record from the hostile sender."""
        host = self.hostile_host
        host.seq += 1
        record = OutgoingRecord(
            facility=0, level=level, seq=host.seq, ts_usec=5_000_000 + host.seq * 1000,
            text=text.encode(), release=release,
            userdata=((b"hostname", name.encode()), (b"rack", HOSTILE_USERDATA.encode())))
        host.send(encode_extended(record), self.listener.port)


def _replay(host: FakeHost, port: int, payloads: list[bytes]) -> int:
    for n, payload in enumerate(payloads, start=1):
        host.sock.sendto(payload, ("127.0.0.1", port))
        if n % 100 == 0:
            time.sleep(0.005)  # the kernel's own pace, well under the socket buffer
    return len(payloads)


def _stored(lis: Listener) -> float:
    return lis.metrics().get("netconsole_stored_records_total", 0)


def _settle(lis: Listener, at_least: int, timeout: float = 60) -> None:
    """Wait until at least `at_least` records are stored and no more arrive."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while True:
        now = _stored(lis)
        if now != last:
            last, since = now, time.monotonic()
        elif now >= at_least and time.monotonic() - since > 0.7:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"only {now} records stored")
        time.sleep(0.1)


@contextlib.contextmanager
def _replayed(lis: Listener, base: str, *, screenshots: bool) -> Iterator[Site]:
    """The captures and the hostile records sent to `lis`, stored: its site at `base`."""
    senders = [FakeHost("127.0.0.2"), FakeHost("127.0.0.3"), FakeHost("127.0.0.4"),
               FakeHost("127.0.0.5")]
    hostile = FakeHost("127.0.0.9")
    try:
        crash, sysdata, panic, lossy = senders
        sent = _replay(crash, lis.port, [p for *_, p in udp_payloads(CRASH)])
        sent += _replay(sysdata, lis.port,
                        [p for *_, dport, p in udp_payloads(SYSDATA) if dport == 6666])
        sent += _replay(panic, lis.port, [p for *_, p in udp_payloads(PANIC)])
        extended = [p for *_, p in udp_payloads(EXTENDED)]
        # A loss gap in the middle, then the same boot log again: a reboot.
        sent += _replay(lossy, lis.port, extended[:150] + extended[160:])
        _settle(lis, 1500)
        time.sleep(1.2)  # the second boot comes after a pause, as a real one would
        sent += _replay(lossy, lis.port, extended)
        site = Site(listener=lis, base=base, crash_host="127.0.0.2", panic_host="127.0.0.4",
                    sysdata_host="127.0.0.3", lossy_host="127.0.0.5", hostile_host=hostile,
                    screenshots=screenshots)
        for text in HOSTILE_TEXTS:
            site.send(text)
        for line in HOSTILE_WARN:
            site.send(line)
        _settle(lis, sent * 9 // 10)
        yield site
    finally:
        for host in [*senders, hostile]:
            host.close()


@pytest.fixture(scope="session")
def site(request: pytest.FixtureRequest) -> Site:
    """The SQLite site; parametrized (indirect) "sqlite" or "clickhouse", that one."""
    backend = getattr(request, "param", "sqlite")
    found: Site = request.getfixturevalue(f"{backend}_site")
    return found


@pytest.fixture(scope="session")
def sqlite_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`listen --web` on a SQLite store."""
    tmp = tmp_path_factory.mktemp("web")
    web_port = free_tcp_port()
    lis = Listener(tmp, "--web", f"127.0.0.1:{web_port}")
    try:
        with _replayed(lis, f"http://127.0.0.1:{web_port}", screenshots=True) as site:
            yield site
    finally:
        assert lis.stop() == 0, lis.stderr


class WebCommand:
    """A `netconsole web --db STORE` subprocess on a free port of 127.0.0.1."""

    def __init__(self, tmp: Path, store: str) -> None:
        self.port = free_tcp_port()
        self.stderr_path = tmp / f"web-{time.monotonic_ns()}.err"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netconsole", "web", "--db", store, "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=self.stderr_path.open("wb"),
            start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while b"serving the web view" not in self.stderr_path.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"netconsole web did not start: {self.stderr}")
            time.sleep(0.05)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def clickhouse_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`listen --store clickhouse://… --web` on two real servers (the shards of
    a cluster)."""
    if not available():
        pytest.skip("clickhouse-server is not installed "
                    "(tests/integration/clickhouse/ci-prepare.sh installs it)")
    tmp = tmp_path_factory.mktemp("web-clickhouse")
    with contextlib.ExitStack() as stack:
        cluster = Cluster(tmp / "servers")
        stack.callback(cluster.stop)
        cluster.start()
        url = cluster.url()
        web_port = free_tcp_port()
        lis = Listener(tmp, "--web", f"127.0.0.1:{web_port}", store=url)
        stack.callback(lambda: _stopped(lis.stop(), lis.stderr))
        yield stack.enter_context(_replayed(lis, f"http://127.0.0.1:{web_port}",
                                            screenshots=False))


def _stopped(status: int, stderr: str) -> None:
    assert status == 0, stderr


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's headless Chromium through its ChromeDriver, with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1280,860", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: download nothing
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """Save what the browser shows as NAME.png in `SCREENSHOTS`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def console_problems(driver: Any) -> list[str]:
    """Browser console errors since the last call, but for HTTP statuses (a 400 or
    404 page is one): a Content-Security-Policy violation would mean markup from
    a sender reached the page as markup, a script error that ours broke."""
    return [json.dumps(e) for e in driver.get_log("browser")
            if e.get("level") == "SEVERE" and e.get("source") != "network"]
