"""Serving the web app: uvicorn on a socket we bind first, in a thread of its own.

`listen --web` runs it beside the receiver and `netconsole web` on its own. The
socket is bound before anything else starts, so a taken port is one clear error
and nothing was created; uvicorn then serves it from a daemon thread (it leaves
the process's signals alone off the main thread), and `close()` ends the live
tails and stops it within about a second.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from netconsole.store import DEFAULT_SILENT_AFTER
from netconsole.web.app import (
    LOOPBACK_HOSTS,
    TOKEN_ENV,
    Source,
    WebConfig,
    create_app,
    source_for,
)

DEFAULT_PORT = 6681


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warnings(host: str, port: int, token: str | None) -> list[str]:
    """What to tell an operator who binds the web view beyond this machine."""
    if is_loopback(host):
        return []
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    out = [f"the web view on {where} can be reached from other machines"]
    if token is None:
        out.append(f"no token: anyone who reaches {where} can read every stored record; "
                   f"set one with --token or ${TOKEN_ENV}")
    return out


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


class WebServer:
    """The web app served from a daemon thread until `close()`.

    Raises (on construction):
        OSError: the address cannot be bound (taken, no permission, unknown name).
    """

    def __init__(self, host: str, port: int, open_source: Callable[[], Source], *,
                 token: str | None = None, silent_after: float = DEFAULT_SILENT_AFTER) -> None:
        self.sock = bind(host, port)
        # Bound to loopback: only a request that names a loopback host is served, so
        # a web page that rebinds its DNS name to 127.0.0.1 reads nothing.
        allowed = (*LOOPBACK_HOSTS, host) if is_loopback(host) else None
        self.app, self.pages = create_app(open_source, WebConfig(
            token=token, allowed_hosts=allowed, silent_after=silent_after))
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="off", server_header=False,
            timeout_graceful_shutdown=1, limit_concurrency=200))
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="web", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.pages.stopping.set()
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self.sock.close()
        self.pages.pool.close()


def web_for_listen(host: str, port: int, db: str | Path | None, silent_after: float,
                   announce: Callable[[str], None]) -> WebServer:
    """The server `listen --web ADDR:PORT` runs on listen's store `db` (a SQLite
    file, None for the default one, or a `clickhouse://` URL): the token from
    $NETCONSOLE_WEB_TOKEN, warnings announced. Raises OSError when it cannot bind."""
    token = os.environ.get(TOKEN_ENV) or None
    for warning in exposure_warnings(host, port, token):
        announce(f"warning: {warning}")
    return WebServer(host, port, source_for(db, silent_after=silent_after), token=token,
                     silent_after=silent_after)
