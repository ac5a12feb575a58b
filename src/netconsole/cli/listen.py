"""`netconsole listen`: the receiver."""

from __future__ import annotations

import sys
from typing import Any

import click

from netconsole.collector import (
    ConfigError,
    ListenConfig,
    ListenError,
    build_config,
    load_toml,
    render_toml,
    serve,
)
from netconsole.store import StoreError


class _BadConfig(click.ClickException):
    """A bad setting: one line (`Error: …`) and status 2, as for a bad option,
    without the usage text (the line names the setting, whether file or option)."""

    exit_code = 2


@click.command()
@click.option("-p", "--port", "ports", type=click.IntRange(1, 65535), multiple=True,
              help="UDP port to receive on (repeatable). Default: 6666.")
@click.option("-b", "--bind", "bind", multiple=True, metavar="ADDRESS",
              help="Address to bind (repeatable). Default: :: (IPv4 and IPv6). "
                   "An IPv4 literal such as 0.0.0.0 binds IPv4 only.")
@click.option("--allow", multiple=True, metavar="CIDR",
              help="Accept only senders in this network (repeatable); others are counted "
                   "and dropped.")
@click.option("--db", type=click.Path(dir_okay=False),
              help="SQLite database. Default: netconsole.db in your data directory.")
@click.option("--store", metavar="URL",
              help="Store in ClickHouse instead: clickhouse://HOST:PORT/DATABASE, with "
                   "?cluster=NAME over a cluster's servers (docs/scale-out.md).")
@click.option("-w", "--workers", type=click.IntRange(0, 256),
              help="Receiver processes. Default: one per core (0).")
@click.option("--http", metavar="ADDR:PORT",
              help="Where /metrics and /api/v1 answer. Default: 127.0.0.1:6680.")
@click.option("--no-http", is_flag=True, help="Serve no HTTP endpoints.")
@click.option("--web", metavar="ADDR:PORT",
              help="Also serve the web view (docs/web.md) there, e.g. 127.0.0.1:6681. "
                   "Beyond loopback it warns; $NETCONSOLE_WEB_TOKEN then protects it.")
@click.option("--jsonl", metavar="FILE",
              help="Also append records as JSON lines (docs/records.md) to FILE; "
                   "`-` writes them to stdout instead of the live view.")
@click.option("--forward", multiple=True, metavar="URL",
              help="Also forward every stored record to a syslog server, RFC 5424 "
                   "(repeatable): syslog+udp://HOST:PORT or syslog+tcp://HOST:PORT "
                   "(docs/outputs.md).")
@click.option("--files", metavar="DIR",
              help="Also append every stored record to DIR/<host>/<YYYY-MM-DD>.log, "
                   "console style; SIGHUP reopens them (logrotate).")
@click.option("-q", "--quiet", is_flag=True, default=None, help="No live view.")
@click.option("--retain", metavar="AGE", help="Delete records older than AGE (30d, 12h).")
@click.option("--max-size", metavar="SIZE", help="Keep the database under SIZE (10GB).")
@click.option("--rcvbuf", type=int, metavar="BYTES", help="Socket receive buffer to ask for.")
@click.option("--sender-budget", type=click.FloatRange(min=0), metavar="RECORDS",
              help="Records/s one sender may average while the receiver is behind; its "
                   "excess is shed (crash reports never are). 0: no budget. Default: 2000.")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="TOML configuration file; options given here win over it.")
@click.option("--print-config", is_flag=True,
              help="Print the effective configuration as TOML and exit.")
def listen(config_path: str | None, print_config: bool, no_http: bool, **options: Any) -> None:
    """Receive netconsole traffic, store every record, and show it live.

    Receives basic and extended netconsole (fragments, release, userdata,
    sysdata) from any number of hosts on one UDP port or several, with one
    worker process per core. Each record is committed to the SQLite store
    before it is shown; loss (seq and msgid gaps), duplicates, reboots and
    incomplete records are counted per host. Read the store with `netconsole
    tail`, `search`, `hosts` and `export`; scrape `/metrics` for Prometheus.

    Besides the store, records can go to syslog servers (--forward) and to
    one file per host and day (--files), each only once it is stored.

    SIGTERM and Ctrl-C flush everything and stop; SIGHUP re-reads the
    configuration file and reopens the --jsonl and --files files without
    stopping.

    Examples:

        netconsole listen

        netconsole listen -p 6666 -p 6667 --allow 10.0.0.0/8 --retain 30d

        netconsole listen --jsonl - --no-http | jq .text

        netconsole listen --forward syslog+tcp://logs.example.net:514 --files /var/log/netconsole
    """
    cli_values = {k: v for k, v in options.items() if v is not None and v != ()}
    if no_http:
        cli_values["http"] = None
    try:
        file_values = load_toml(config_path) if config_path else {}
        cfg = build_config(file_values, cli_values)
    except ConfigError as exc:
        raise _BadConfig(str(exc)) from None
    if no_http:
        cfg = cfg.replace(http=None)
    if print_config:
        click.echo(render_toml(cfg), nl=False)
        return

    def reload() -> ListenConfig:
        fresh = build_config(load_toml(config_path) if config_path else {}, cli_values)
        return fresh.replace(http=None) if no_http else fresh

    try:
        status = serve(cfg, config_loader=reload if config_path else None)
    except (ListenError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(status)
