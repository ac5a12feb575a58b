"""The receiver's HTTP endpoints (localhost by default).

* `GET /metrics`: Prometheus text format.
* `GET /api/v1/seen?nonce=N[&since=UNIX]`: whether a record containing `N` was
  stored (`netconsole setup` asks this to prove delivery end to end).
* `GET /healthz`: `{"ok": true, "workers": n}`.

A small stdlib server in a thread: these endpoints are tiny and must keep
answering while the workers are busy.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry

from netconsole.store import StoreError, open_reader


class ApiServer:
    """Serves the endpoints from a daemon thread until `close()`."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry, db: str | None,
                 workers: Callable[[], int]) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.registry = registry
        self.db = db
        self.workers = workers
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.address = self.server.server_address
        self.thread = threading.Thread(target=self.server.serve_forever, name="http",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        query = parse_qs(url.query)
        if url.path == "/metrics":
            self._send(req, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        elif url.path == "/healthz":
            self._json(req, 200, {"ok": True, "workers": self.workers()})
        elif url.path == "/api/v1/seen":
            nonce = (query.get("nonce") or [""])[0]
            if len(nonce) < 6:
                self._json(req, 400, {"error": "nonce= must be at least 6 characters"})
                return
            since = float((query.get("since") or ["0"])[0] or 0) or None
            try:
                with open_reader(self.db) as reader:
                    seen = reader.seen_nonce(nonce, since=since)
            except StoreError as exc:
                self._json(req, 503, {"error": str(exc)})
                return
            self._json(req, 200, {"nonce": nonce, "seen": seen})
        else:
            self._json(req, 404, {"error": f"no such endpoint: {url.path}",
                                  "endpoints": ["/metrics", "/healthz", "/api/v1/seen"]})

    @staticmethod
    def _json(req: BaseHTTPRequestHandler, code: int, obj: dict[str, Any]) -> None:
        ApiServer._send(req, code, json.dumps(obj).encode() + b"\n", "application/json")

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str) -> None:
        req.send_response(code)
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
