"""`netconsole send`: thin CLI over `netconsole.setup.send`."""

from __future__ import annotations

import dataclasses
import sys

import click

from netconsole.cli._json import emit_json


@click.command("send")
@click.argument("text")
@click.option("--via", type=click.Choice(["kmsg", "udp"]), default="kmsg", show_default=True,
              help="kmsg: through the kernel's log, so kernel netconsole carries it; udp: "
              "one record in the kernel's wire format straight to --to.")
@click.option("--level", type=click.IntRange(0, 7), default=5, show_default=True,
              help="printk level 0-7 (5 notice). Levels at or above console_loglevel never "
              "reach kernel netconsole.")
@click.option("--to", "to", metavar="RECEIVER[:PORT]",
              help="Where --via udp sends (port 6666 by default).")
@click.option("--source-port", type=click.IntRange(0, 65535), default=6665, show_default=True,
              help="UDP source port for --via udp (netpoll's default; 0 for any).")
@click.option("--json", "as_json", is_flag=True, help="Print what was sent as JSON.")
@click.option("--root", metavar="DIR", hidden=True,
              help="Write dev/kmsg under DIR instead (tests).")
def send(text: str, via: str, level: int, to: str | None, source_port: int, as_json: bool,
         root: str | None) -> None:
    """Send one test message through the kernel (/dev/kmsg) or straight to a receiver.

    --via kmsg (root) logs TEXT at --level; every enabled netconsole target
    sends it, so it proves the kernel side end to end. --via udp sends one
    extended record, byte for byte as the kernel would, from port 6665, with
    the release prefix and hostname= userdata: it proves the path and the
    receiver without the kernel.

    Example:

        sudo netconsole send --level 4 "hello from $(hostname)"

        netconsole send --via udp --to 192.0.2.10:6666 "receiver test"
    """
    from netconsole._hostport import HostPortError, parse_hostport
    from netconsole.host.write import HostWriter
    from netconsole.kernel.netconsole_param import DEFAULT_REMOTE_PORT
    from netconsole.setup.send import SendError, send_kmsg, send_udp

    try:
        if via == "kmsg":
            if to:
                raise click.UsageError("--to is for --via udp; --via kmsg goes to every "
                                       "kernel netconsole target")
            sent = send_kmsg(HostWriter.for_root(root), text, level)
        else:
            if not to:
                raise click.UsageError("--via udp needs --to RECEIVER[:PORT]")
            try:
                where = parse_hostport(to, default_port=DEFAULT_REMOTE_PORT)
            except HostPortError as exc:
                raise click.BadParameter(str(exc), param_hint="--to") from None
            sent = send_udp(where.scoped, where.port, text, level, source_port=source_port)
    except SendError as exc:
        click.echo(f"send: {exc}", err=True)
        sys.exit(1)
    if as_json:
        data = dataclasses.asdict(sent) | {"via": sent.via.value}
        emit_json(data)
    elif sent.to:
        click.echo(f"sent level {level} record to {sent.to} from {sent.source} "
                   f"({sent.datagrams} datagram(s), {sent.bytes} bytes)")
    else:
        click.echo(f"logged level {level} record to /dev/kmsg ({sent.bytes} bytes)")
