"""The receiver's HTTP endpoints (localhost by default).

* `GET /metrics`: Prometheus text format.
* `GET /api/v1/seen?nonce=N[&since=UNIX]`: whether a record containing `N` was
  stored (`netconsole setup` asks this to prove delivery end to end).
* `GET /healthz`: `{"ok": true, "workers": n}`.

A small stdlib server in a thread: these endpoints are tiny and must keep
answering while the workers are busy. Any local process can reach them, so
they hold up against one that misbehaves: one request per connection, each
socket read and write has a timeout, at most MAX_CONNECTIONS are served at once
(when full, a new connection pushes out the oldest one that has not finished
sending its request, so idle connections cannot lock /metrics out), the listen
backlog is BACKLOG, a bad parameter is a 400, a client that hangs up is not an
error, and nothing a request does can stop the server.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from netconsole.store import StoreError, open_reader

MAX_CONNECTIONS = 32
"""Connections served at once (a thread each)."""
REQUEST_TIMEOUT = 10.0
"""Seconds one read or write of a connection may wait."""
BACKLOG = 128
MIN_NONCE, MAX_NONCE = 6, 256
_WORD = re.compile(r"\w")


@dataclass(frozen=True, slots=True)
class _Reply:
    code: int
    body: bytes
    content_type: str


def _json(code: int, obj: dict[str, Any]) -> _Reply:
    return _Reply(code, json.dumps(obj).encode() + b"\n", "application/json")


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer with a bound on connections and quiet client errors."""

    daemon_threads = True
    request_queue_size = BACKLOG

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 family: socket.AddressFamily) -> None:
        self.address_family = family
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        # Connections still sending their request, oldest first (a dict keeps order).
        self._waiting: dict[socket.socket, None] = {}
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            if len(self._open) >= MAX_CONNECTIONS:
                victim = next(iter(self._waiting), None)
                if victim is None:  # all busy answering: turn the newcomer away
                    self.shutdown_request(request)
                    return
                del self._waiting[victim]
                with contextlib.suppress(OSError):  # its thread sees the end and finishes
                    victim.shutdown(socket.SHUT_RDWR)
            self._open.add(request)
            self._waiting[request] = None
        try:
            super().process_request(request, client_address)
        except RuntimeError:  # no thread to be had
            self.shutdown_request(request)

    def request_started(self, request: socket.socket) -> None:
        """The request line and headers are in: no longer one to push out."""
        with self._lock:
            self._waiting.pop(request, None)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
            self._waiting.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client hung up or stalled: its business
        print(f"netconsole listen: HTTP request from {client_address[0]} failed: {exc!r}",
              file=sys.stderr)


class ApiServer:
    """Serves the endpoints from a daemon thread until `close()`."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, db: str | None,
                 workers: Callable[[], int]) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT

            def parse_request(self) -> bool:
                ok = super().parse_request()
                server.request_started(self.connection)
                return ok

            def do_GET(self) -> None:
                reply = api.reply(self.path)
                self.send_response(reply.code)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.registry = registry
        self.db = db
        self.workers = workers
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        server = _Server((host, port), Handler, family)
        self.server = server
        self.address = self.server.server_address
        self.thread = threading.Thread(target=self.server.serve_forever, name="http",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():  # shutdown() waits for a serve_forever that never ran
            self.server.shutdown()
        self.server.server_close()

    def reply(self, path: str) -> _Reply:
        """The answer to `GET path`; computed whole before anything is sent, so
        a failure is still a proper 500."""
        try:
            return self._route(path)
        except Exception as exc:
            print(f"netconsole listen: HTTP GET {path[:200]!r} failed: {exc!r}", file=sys.stderr)
            return _json(500, {"error": "internal error; see the receiver's log"})

    def _route(self, path: str) -> _Reply:
        url = urlsplit(path)
        if url.path == "/metrics":
            return _Reply(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        if url.path == "/healthz":
            return _json(200, {"ok": True, "workers": self.workers()})
        if url.path == "/api/v1/seen":
            return self._seen(parse_qs(url.query))
        return _json(404, {"error": f"no such endpoint: {url.path}",
                           "endpoints": ["/metrics", "/healthz", "/api/v1/seen"]})

    def _seen(self, query: dict[str, list[str]]) -> _Reply:
        nonce = (query.get("nonce") or [""])[0]
        if not MIN_NONCE <= len(nonce) <= MAX_NONCE:
            return _json(400, {"error": f"nonce= must be {MIN_NONCE} to {MAX_NONCE} characters"})
        if not nonce.isprintable():
            return _json(400, {"error": "nonce= must be printable (no NUL or control "
                                        "characters)"})
        if not _WORD.search(nonce):
            # Only a scan of every record could look for it.
            return _json(400, {"error": "nonce= needs a letter or a digit"})
        raw = (query.get("since") or [""])[0]
        try:
            since = float(raw) if raw else 0.0
        except ValueError:
            return _json(400, {"error": f"since= must be a unix time, not {raw[:40]!r}"})
        if not math.isfinite(since) or since < 0:
            return _json(400, {"error": f"since= must be a unix time, not {raw[:40]!r}"})
        try:
            with open_reader(self.db) as reader:
                seen = reader.seen_nonce(nonce, since=since or None)
        except StoreError as exc:
            return _json(503, {"error": str(exc)})
        return _json(200, {"nonce": nonce, "seen": seen})
