"""`netconsole forward`: thin CLI over `netconsole.forward.forward`."""

from __future__ import annotations

import errno
import os
import socket
import sys
from pathlib import Path

import click

from netconsole.forward import (
    DEFAULT_LOCAL_PORT,
    DEFAULT_PSTORE_DIRS,
    DEFAULT_REMOTE_PORT,
    SYSDATA_NAMES,
    AddressError,
    EncodeConfig,
    ForwardOptions,
    PolicyConfig,
    StateError,
    parse_receiver,
)
from netconsole.forward.policy import parse_level
from netconsole.forward.run import forward as run_forward
from netconsole.forward.sender import DEFAULT_BACKLOG

SYSTEM_STATE = Path("/var/lib/netconsole/forward.state")


def default_state_path() -> Path:
    """/var/lib/netconsole/forward.state as root, the user's data dir otherwise."""
    if os.geteuid() == 0:
        return SYSTEM_STATE
    import platformdirs

    return Path(platformdirs.user_data_dir("netconsole")) / "forward.state"


def _level(text: str) -> int:
    try:
        return parse_level(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _labels(values: tuple[str, ...]) -> tuple[tuple[bytes, bytes], ...]:
    out: list[tuple[bytes, bytes]] = []
    for v in values:
        key, eq, value = v.partition("=")
        if not eq or not key or " " in key or len(key) > 53:
            raise click.BadParameter(f"{v!r}: use KEY=VALUE (key 1-53 bytes, no spaces)",
                                     param_hint="--label")
        if "\n" in value or len(value.encode()) > 198:
            raise click.BadParameter(f"{v!r}: value is one line of at most 198 bytes",
                                     param_hint="--label")
        out.append((key.encode(), value.encode()))
    if not any(k == b"hostname" for k, _ in out):
        out.insert(0, (b"hostname", socket.gethostname().encode()))
    return tuple(out)


def _sysdata(text: str | None) -> frozenset[str]:
    names = frozenset(n.strip() for n in (text or "").split(",") if n.strip())
    unknown = names - set(SYSDATA_NAMES)
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(sorted(unknown))}; "
                                 f"choose from {','.join(SYSDATA_NAMES)}", param_hint="--sysdata")
    return names


@click.command("forward")
@click.argument("receivers", nargs=-1, required=True, metavar="RECEIVER[:PORT]...")
@click.option("--kmsg", type=click.Path(path_type=Path), default=Path("/dev/kmsg"),
              show_default=True, help="Where to read records (a file or FIFO in the same "
              "format works too; it ends at EOF).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="State file: last sent seq, boot id, pstore dumps sent. "
              f"Default: {SYSTEM_STATE} as root, else the user data dir.")
@click.option("--pstore-dir", "pstore_dirs", multiple=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where to look for pstore dumps (repeatable). "
              f"Default: {', '.join(map(str, DEFAULT_PSTORE_DIRS))}.")
@click.option("--no-pstore", is_flag=True, help="Do not send pstore dumps.")
@click.option("--release", is_flag=True,
              help="Prefix every message with this kernel's release (like configfs `release`).")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="userdata line on every message (repeatable). hostname=<this host> is "
              "added unless you give hostname= yourself (empty value: left out).")
@click.option("--sysdata", metavar="LIST",
              help=f"sysdata lines to add, from {','.join(SYSDATA_NAMES)}.")
@click.option("--level", default="debug", show_default=True,
              help="Send records at this level or more severe (0-7 or a name). "
              "Crash output always passes.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True),
              help="Average records per second allowed (kernel time); default no limit. "
              "Crash output always passes.")
@click.option("--burst", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Records allowed at once above --rate.")
@click.option("--backlog", type=click.IntRange(min=1), default=DEFAULT_BACKLOG,
              show_default=True, help="Records kept per receiver while it is unreachable.")
@click.option("--port", "remote_port", type=click.IntRange(1, 65535),
              default=DEFAULT_REMOTE_PORT, show_default=True,
              help="Receiver port when RECEIVER has none.")
@click.option("--local-port", type=click.IntRange(0, 65535), default=DEFAULT_LOCAL_PORT,
              show_default=True, help="Source port (the kernel's local_port; 0: any).")
@click.option("--once", is_flag=True,
              help="Send what is there now, then exit (tests, cron). Exits 3 when records "
              "stayed unsent (receiver unreachable); the next run sends them.")
@click.option("--stats", "print_stats", is_flag=True,
              help="Print the counters as JSON on stdout when done (SIGUSR1 prints them "
              "on stderr at any time).")
def forward(receivers: tuple[str, ...], kmsg: Path, state_path: Path | None,
            pstore_dirs: tuple[Path, ...], no_pstore: bool, release: bool,
            labels: tuple[str, ...], sysdata: str | None, level: str, rate: float | None,
            burst: int, backlog: int, remote_port: int, local_port: int, once: bool,
            print_stats: bool) -> None:
    """Send this host's kernel log like netconsole does, from userspace.

    For hosts where the netconsole module cannot load (no netpoll in the
    driver, `Unknown error 524`, a locked-down kernel): reads /dev/kmsg and
    sends every record to each RECEIVER exactly as an extended netconsole
    target would (same header, escaping, ncfrag fragmentation, release prefix,
    userdata, sysdata, msgid), from source port 6665. It resumes where it
    stopped (the state file) and starts over after a reboot. On start it also
    sends the previous boot's crash dumps from pstore, once, marked with the
    userdata ` pstore=<file>` and ` boot=previous`.

    RECEIVER is HOST, HOST:PORT or [IPv6]:PORT. Reading /dev/kmsg needs root
    or CAP_SYSLOG when kernel.dmesg_restrict=1.

    Example:

        netconsole forward 10.0.0.5:6666 --release --sysdata msgid,release
    """
    try:
        targets = tuple(parse_receiver(r, remote_port) for r in receivers)
    except AddressError as exc:
        raise click.BadParameter(str(exc), param_hint="RECEIVER") from None
    options = ForwardOptions(
        receivers=targets,
        state=state_path or default_state_path(),
        encode=EncodeConfig(release=os.uname().release if release else None,
                            labels=_labels(labels), sysdata=_sysdata(sysdata),
                            kernel_release=os.uname().release),
        policy=PolicyConfig(max_level=_level(level), rate=rate, burst=burst),
        kmsg=kmsg,
        pstore_dirs=() if no_pstore else (pstore_dirs or DEFAULT_PSTORE_DIRS),
        local_port=local_port,
        backlog=backlog,
        once=once,
    )
    if not once:
        click.echo(f"forward: {kmsg} -> {', '.join(map(str, targets))}", err=True)
    try:
        stats = run_forward(options)
    except PermissionError as exc:
        raise click.ClickException(
            f"cannot read {exc.filename or kmsg}: permission denied. Run as root, or give "
            "the process CAP_SYSLOG (e.g. AmbientCapabilities=CAP_SYSLOG in the systemd "
            "unit) when kernel.dmesg_restrict=1.") from None
    except FileNotFoundError as exc:
        raise click.ClickException(f"{exc.filename or kmsg}: no such file") from None
    except StateError as exc:
        raise click.ClickException(f"state file {exc}; move it away to start over") from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"source port {local_port} is in use; pick another with --local-port") from None
        raise click.ClickException(str(exc)) from None
    if print_stats:
        click.echo(stats.to_json())
    if once and stats.backlog:
        # A cron job or a test must be able to tell: the state file still
        # points before these records, so the next run sends them.
        click.echo(f"forward: {stats.backlog} records not sent (receiver unreachable?); "
                   "the next run sends them", err=True)
        sys.exit(3)
    sys.exit(0)
