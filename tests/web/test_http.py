"""The web view over plain HTTP: its headers, read-only, Host checks, the token, and
the commands that serve it (`netconsole web`, `listen --web`)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from netconsole.collector import free_udp_port
from netconsole.web import CSP, exposure_warnings
from tests.integration.listen_harness import Listener, free_tcp_port
from tests.web.conftest import Site

PAGES = ("/", "/incidents", "/live", "/search?q=labtrig", "/host?h=127.0.0.2", "/incident/1",
         "/host/records?h=127.0.0.2&before=100")


def _request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
             data: bytes | None = None) -> tuple[int, Any, bytes]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kw: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=data)
    try:
        with opener.open(request, timeout=10) as reply:
            return reply.status, reply.headers, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_every_answer_carries_the_security_headers(site: Site) -> None:
    assert "script-src 'self'" in CSP and "unsafe" not in CSP
    for path in (*PAGES, "/static/style.css", "/static/live.js", "/nothing", "/incident/999999",
                 "/host?h=nobody", "/host?h=127.0.0.2&before=x"):
        status, headers, body = site.get(path)
        assert status in (200, 400, 404), (path, status)
        assert headers["Content-Security-Policy"] == CSP, path
        for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'",
                          "base-uri 'none'", "frame-ancestors 'none'"):
            assert directive in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        if path.endswith(".js"):
            assert headers["Content-Type"].startswith("text/javascript")
        elif status != 404 or "?" in path:
            assert headers["Content-Type"].startswith(("text/html", "text/css")), path
    # no inline script anywhere: every <script> has a src of ours
    for path in PAGES:
        body = site.get(path)[2].decode()
        assert "<script>" not in body and "onload=" not in body and "style=" not in body
    assert site.get("/host?h=nobody")[0] == 404
    assert site.get("/incident/999999")[0] == 404
    assert site.get("/host?h=127.0.0.2&before=x")[0] == 400


def test_read_only_and_only_for_a_loopback_host_name(site: Site) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = _request(site.url("/"), method=method, data=b"")
        assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert _request(site.url("/"), method="HEAD")[0] == 200
    # A page elsewhere whose name resolves to 127.0.0.1 (DNS rebinding) reads nothing.
    status, _, body = _request(site.url("/"), headers={"Host": "evil.example:80"})
    assert status == 421 and b"loopback" in body
    for name in ("localhost", "127.0.0.1", "[::1]:80"):
        assert _request(site.url("/"), headers={"Host": name})[0] == 200


def test_live_events_are_server_sent_json(site: Site) -> None:
    request = urllib.request.Request(site.url("/live/events?host=127.0.0.2&level=emerg"))
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/event-stream")
        lines = []
        while len([line for line in lines if line.startswith(b"data:")]) < 3:
            lines.append(reply.readline().strip())
    data = [line for line in lines if line.startswith(b"data:")]
    assert b'"level": "emerg"' in data[0] and b"Kernel panic" in data[0]
    assert any(line.startswith(b"id: ") for line in lines)


def _serve(db: Path, *args: str, env: dict[str, str] | None = None
           ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_tcp_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "netconsole", "web", "--db", str(db), "--port", str(port),
         *args], stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    assert line.startswith("serving the web view on"), line
    return proc, f"http://127.0.0.1:{port}"


def test_netconsole_web_with_a_token(site: Site) -> None:
    token = "s3cret-token-for-tests"
    proc, base = _serve(site.listener.db, env={"NETCONSOLE_WEB_TOKEN": token})
    try:
        status, headers, body = _request(base + "/")
        assert status == 401 and b'name="token"' in body  # the login form
        assert headers["Content-Security-Policy"] == CSP
        assert _request(base + "/?token=wrong")[0] == 401
        assert _request(base + "/live/events")[0] == 401
        assert _request(base + "/static/style.css")[0] == 200  # no data there
        assert _request(base + "/", headers={"Authorization": f"Bearer {token}"})[0] == 200
        # ?token= sets the cookie and sends the browser on without it in the URL
        status, headers, _ = _request(base + f"/incidents?kind=oops&token={token}")
        assert status == 303 and headers["Location"] == "/incidents?kind=oops"
        cookie = headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and token not in cookie
        jar = cookie.split(";")[0]
        status, _, body = _request(base + "/incidents?kind=oops", headers={"Cookie": jar})
        assert status == 200 and b"NULL pointer" in body
        # the login form
        status, headers, _ = _request(base + "/login", method="POST",
                                      data=f"token={token}&next=/search".encode())
        assert status == 303 and headers["Location"] == "/search"
        status, _, _ = _request(base + "/login", method="POST",
                                data=b"token=nope&next=//evil.example/")
        assert status == 401
        status, headers, _ = _request(base + "/login", method="POST",
                                      data=f"token={token}&next=//evil.example/".encode())
        assert headers["Location"] == "/"  # never elsewhere
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_netconsole_web_in_a_browser_asks_for_the_token(site: Site, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    token = "browser-token-1234"
    proc, base = _serve(site.listener.db, "--token", token)
    try:
        browser.get(base + "/incidents")
        field = browser.find_element(By.CSS_SELECTOR, "input[name=token]")
        field.send_keys(token)
        field.submit()
        deadline = time.monotonic() + 10
        while "/incidents" not in browser.current_url or not browser.find_elements(
                By.ID, "groups"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_netconsole_web_says_what_is_wrong_in_one_line(tmp_path: Path, site: Site) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "netconsole", "web", *args],
                              capture_output=True, text=True, timeout=30)

    missing = run("--db", str(tmp_path / "none.db"))
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1
    assert "no database at" in missing.stderr and "Traceback" not in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run("--db", str(site.listener.db), "--port", str(port))
    assert busy.returncode == 1 and busy.stderr.count("\n") == 1
    assert f"cannot serve on 127.0.0.1 port {port}" in busy.stderr
    empty = run("--db", str(site.listener.db), "--token", " ")
    assert empty.returncode == 2 and "empty token" in empty.stderr


def test_binding_beyond_loopback_warns() -> None:
    assert exposure_warnings("127.0.0.1", 6681, None) == []
    assert exposure_warnings("::1", 6681, None) == []
    assert exposure_warnings("localhost", 6681, None) == []
    wide = exposure_warnings("0.0.0.0", 6681, None)
    assert len(wide) == 2 and "other machines" in wide[0] and "--token" in wide[1]
    assert exposure_warnings("::", 6681, "t") == [
        "the web view on [::]:6681 can be reached from other machines"]


def test_listen_web_option(tmp_path: Path) -> None:
    def listen(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "netconsole", "listen", "--db",
                               str(tmp_path / "l.db"), *args], capture_output=True, text=True,
                              timeout=30)

    shown = listen("--web", "127.0.0.1:7001", "--print-config")
    assert shown.returncode == 0 and 'web = "127.0.0.1:7001"' in shown.stdout
    assert "# web = (unset)" in listen("--print-config").stdout
    for bad in ("nonsense", "127.0.0.1:0", "127.0.0.1:99999"):
        result = listen("--web", bad)
        assert result.returncode == 2, bad
        assert result.stderr.startswith("Error: web: ") and result.stderr.count("\n") == 1
    config = tmp_path / "listen.toml"
    config.write_text("[listen]\nweb = 6681\n")
    result = listen("--config", str(config), "--print-config")
    assert result.returncode == 2 and "web must be a string" in result.stderr
    config.write_text("[listen]\nweb = false\n")
    assert listen("--config", str(config), "--print-config").returncode == 0


def test_listen_with_a_taken_web_port_says_so_and_creates_nothing(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "netconsole", "listen", "--db", str(tmp_path / "n.db"),
             "-p", str(free_udp_port()), "--no-http", "--web", f"127.0.0.1:{port}", "-q"],
            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"cannot serve the web view on 127.0.0.1:{port}" in result.stderr
    assert not (tmp_path / "n.db").exists()


def test_listen_stops_promptly_with_a_live_tail_open(tmp_path: Path) -> None:
    port = free_tcp_port()
    lis = Listener(tmp_path, "--web", f"127.0.0.1:{port}")
    assert f"web view http://127.0.0.1:{port}/" in lis.stderr
    stream = urllib.request.urlopen(f"http://127.0.0.1:{port}/live/events", timeout=10)
    try:
        assert stream.readline().startswith(b"retry:")
        started = time.monotonic()
        assert lis.stop() == 0
        assert time.monotonic() - started < 10
    finally:
        stream.close()
