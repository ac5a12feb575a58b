"""`netconsole doctor`: thin CLI over `netconsole.doctor.diagnose` and `host.collect`."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from netconsole.cli._json import emit_json

EXIT_WORKS, EXIT_BROKEN, EXIT_DOCTOR_FAILED = 0, 1, 2


@click.command("doctor")
@click.option("--root", "root", metavar="DIR|FILE.tar.gz",
              help="Examine a snapshot (a directory or a tarball from --collect) instead of "
              "this host.")
@click.option("--collect", "collect_to", metavar="FILE.tar.gz",
              help="Save everything the checks read into FILE.tar.gz and exit.")
@click.option("--target", "targets", multiple=True, metavar="PARAM",
              help="Also check a netconsole= target you plan to use, e.g. "
              "'@/eth0,6666@10.0.0.5/'. Repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show details of OK and INFO findings too.")
def doctor(root: str | None, collect_to: str | None, targets: tuple[str, ...], as_json: bool,
           verbose: bool) -> None:
    """Explain why netconsole does not work on this host, and what to do.

    Checks the kernel and its config, the netconsole= parameters (with the
    kernel's own grammar), configfs targets, each target's interface and
    whether netpoll can drive its driver, the route and next-hop MAC, the
    console loglevel and dmesg. Every finding has a code, the evidence read,
    the cause and ranked remedies.

    Exit status: 0 when netconsole will work, 1 when it will not, 2 when the
    doctor itself could not run.

    Example:

        netconsole doctor --root tests/data/snapshots/aws-4.4-ena-2.0.1K
    """
    from netconsole.doctor import diagnose
    from netconsole.doctor.render import render_text, to_dict
    from netconsole.host.collect import collect
    from netconsole.host.view import SnapshotError, open_root

    try:
        with open_root(root) as view:
            if collect_to:
                members = collect(view, collect_to)
                click.echo(f"wrote {collect_to}: {len(members)} files", err=True)
                sys.exit(EXIT_WORKS)
            report = diagnose(view, targets=list(targets), source=root or "live")
    except (SnapshotError, OSError) as exc:
        # One line, as is: a rich console would wrap it and read `[...]` in a
        # path as markup.
        click.secho(f"doctor: {' '.join(str(exc).split())}", err=True, fg="red")
        sys.exit(EXIT_DOCTOR_FAILED)
    if as_json:
        emit_json(to_dict(report))  # escaped: dmesg text and names reach the terminal
    else:
        render_text(report, Console(), verbose=verbose)
    sys.exit(report.exit_code)
