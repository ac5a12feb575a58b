"""`netconsole web`: the web view of the store, served on its own."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from netconsole.cli._options import db_option, parsed_by, reader_for
from netconsole.store import DEFAULT_SILENT_AFTER, parse_duration


@click.command()
@click.option("--bind", "bind", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to serve on. Anything but loopback can be reached from other "
                   "machines: it warns, and wants --token.")
@click.option("-p", "--port", type=click.IntRange(1, 65535), default=6681, show_default=True,
              help="TCP port to serve on.")
@click.option("--token", envvar="NETCONSOLE_WEB_TOKEN", metavar="TOKEN",
              help="Only requests that carry this token are answered (a browser gives it "
                   "once, at /login or as ?token=, and keeps a cookie; scripts send "
                   "'Authorization: Bearer TOKEN') [env NETCONSOLE_WEB_TOKEN].")
@click.option("--silent-after", metavar="DURATION", default=f"{int(DEFAULT_SILENT_AFTER)}s",
              show_default=True, callback=parsed_by(parse_duration),
              help="A host with no record for this long is silent.")
@db_option
def web(bind: str, port: int, token: str | None, silent_after: float,
        db: Path | str | None) -> None:
    """Serve the web view: the fleet, each host's timeline, incidents, the live tail
    and search, in a browser.

    Reads the store `netconsole listen` writes (read-only: the pages change
    nothing), on 127.0.0.1 unless --bind says otherwise. `listen --web
    ADDR:PORT` serves the same view from the receiver itself. Stop with Ctrl-C.

    Examples:

        netconsole web

        NETCONSOLE_WEB_TOKEN=$(openssl rand -hex 16) netconsole web --bind 0.0.0.0
    """
    try:
        from netconsole.web import WebServer, exposure_warnings, source_for
    except ImportError as exc:  # the `web` extra is not installed
        raise click.ClickException(str(exc)) from None

    if token is not None and not token.strip():
        raise click.BadParameter("an empty token protects nothing", param_hint="--token")
    with reader_for(db):  # no store, or a schema of another version: say so now
        pass
    for warning in exposure_warnings(bind, port, token):
        click.echo(f"warning: {warning}", err=True)
    try:
        server = WebServer(bind, port, source_for(db, silent_after=silent_after),
                           token=token, silent_after=silent_after)
    except OSError as exc:
        raise click.ClickException(
            f"cannot serve on {bind} port {port}: {exc.strerror or exc}") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        click.echo(f"serving the web view on {server.url} (read-only)", err=True)
        while not stop.wait(0.5):
            if not server.thread.is_alive():
                raise click.ClickException("the web server stopped")
    finally:
        server.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
