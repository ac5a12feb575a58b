"""The `netconsole` command: a click group whose subcommands live one per module.

Subcommands are imported lazily so that `netconsole --help` stays fast and a
command's heavy imports (sockets, sqlite, web) cost nothing to the others.
To add a command, add one line to `COMMANDS`.
"""

from __future__ import annotations

import importlib

import click

from netconsole import __version__
from netconsole._sqlite_library import stop_counting_allocations

stop_counting_allocations()  # before any command imports sqlite3 (see the module)

# name -> (module, attribute, one-line help shown in `netconsole --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "listen": ("netconsole.cli.listen", "listen",
        "Receive netconsole traffic, store every record, and show it live."),
    "tail": ("netconsole.cli.tail", "tail",
        "Show stored records, and follow new ones."),
    "search": ("netconsole.cli.search", "search",
        "Full-text search over stored records."),
    "hosts": ("netconsole.cli.hosts", "hosts",
        "Senders: last seen, loss, reboots, live/silent."),
    "incidents": ("netconsole.cli.incidents", "incidents",
        "Crashes, oopses, WARNs and lockups, grouped; and hosts gone silent."),
    "web": ("netconsole.cli.web", "web",
        "Serve the web view: fleet, hosts, incidents, live tail, search."),
    "export": ("netconsole.cli.export", "export",
        "Export stored records as JSON lines or CSV."),
    "decode": ("netconsole.cli.decode", "decode",
        "Decode netconsole traffic in pcap/pcapng files to JSON lines."),
    "doctor": ("netconsole.cli.doctor", "doctor",
        "Explain why netconsole does not work on this host, and what to do."),
    "setup": ("netconsole.cli.setup", "setup",
        "Configure kernel netconsole towards a receiver, persist it, prove delivery."),
    "send": ("netconsole.cli.send", "send",
        "Send one test message through the kernel (/dev/kmsg) or straight to a receiver."),
    "forward": ("netconsole.cli.forward", "forward",
        "Send this host's kernel log like netconsole does, from userspace (and pstore dumps)."),
    "shim": ("netconsole.cli.shim", "shim",
        "np_shim: an empty ndo_poll_controller for a NIC (netpoll on < 4.19)."),
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module only when it is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)  # in the order of the table: the main job first

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr, _ = entry
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netconsole")
def main() -> None:
    """Linux netconsole end to end: receive, decode, diagnose, set up, forward.

    The kernel's netconsole sends printk messages over UDP. These commands
    receive and store them, decode captures of them, explain why netconsole
    does not work on a host, configure it, and stand in for it from userspace.

    Example:

        netconsole decode capture.pcap --events
    """
