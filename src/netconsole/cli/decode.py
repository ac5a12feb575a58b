"""`netconsole decode`: pcap/pcapng captures -> records as JSON lines."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Iterable
from typing import BinaryIO, TextIO

import click

from netconsole.capture import read_frames
from netconsole.capture._decode import CaptureDecoder, DecodeSummary
from netconsole.cli._json import json_line
from netconsole.cli._progress import Ticker, progress
from netconsole.records_json import event_to_json
from netconsole.stream import Record
from netconsole.stream.events import Event


class _OutputFailed(Exception):
    """stdout refused a write (a full disk, /dev/full): not the input's fault."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror)
        self.error = error


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
@click.option("--port", "ports", type=click.IntRange(1, 65535), multiple=True,
              help="Only UDP datagrams to this destination port (repeatable). "
                   "Default: every UDP datagram.")
@click.option("--events", is_flag=True,
              help="Also write gap, duplicate, reboot, incomplete and rejected events "
                   "(objects with an \"event\" key).")
@click.option("--summary", type=click.Choice(["text", "json", "none"]), default="text",
              show_default=True, help="How to write the summary to stderr.")
def decode(files: tuple[str, ...], ports: tuple[int, ...], events: bool, summary: str) -> None:
    """Decode netconsole traffic captured with `tcpdump -w` into JSON lines.

    Reads pcap and pcapng (Ethernet, Linux cooked v1/v2, raw IP; IPv4 and
    IPv6), reassembles basic-mode lines and extended `ncfrag` fragments per
    sender, and writes one JSON object per record to stdout (the schema is
    docs/records.md). A summary of records, hosts, gaps, incomplete records and
    rejected packets goes to stderr. Bad input is counted, never fatal.

    Exit status: 0 when every file was read, 1 when the output could not be
    written, 2 when a file could not be opened or read, or is not a capture.
    On a terminal a progress bar (by bytes read) is shown on stderr.

    Example:

        tcpdump -i eth0 -w nc.pcap udp port 6666

        netconsole decode nc.pcap --events | jq -r 'select(.level<=3) | .text'
    """
    decoder = CaptureDecoder(ports)
    out = sys.stdout
    with progress("decoding", _total_size(files)) as tick:
        failed, opened = _decode_all(files, decoder, out, events, tick)
    if opened:  # nothing read, nothing to sum up: the errors above say it all
        _print_summary(decoder.summary, summary)
    if failed:
        sys.exit(2)


def _total_size(files: tuple[str, ...]) -> int:
    """The bytes to read, for the progress bar; 0 (no bar) when one is not a plain file."""
    total = 0
    for name in files:
        try:
            st = os.stat(name) if name != "-" else None
        except OSError:
            continue  # said when it is opened
        if st is None or not os.path.isfile(name):
            return 0
        total += st.st_size
    return total


def _decode_all(files: tuple[str, ...], decoder: CaptureDecoder, out: TextIO, events: bool,
                tick: Ticker) -> tuple[bool, int]:
    """Decode every file to `out`: (whether one failed, how many were opened)."""
    failed = False
    opened = 0
    done = 0
    try:
        for name in files:
            try:
                f: BinaryIO = sys.stdin.buffer if name == "-" else open(name, "rb")  # noqa: SIM115
            except OSError as exc:
                click.echo(f"netconsole decode: {name}: {exc.strerror}", err=True)
                failed = True
                continue
            opened += 1
            with f:
                before = len(decoder.summary.problems)
                try:
                    _write(out, decoder.frames(read_frames(f), name), events,
                           _file_ticker(tick, f, done))
                except OSError as exc:  # reading the capture (writing raises _OutputFailed)
                    click.echo(f"netconsole decode: {name}: {exc.strerror}", err=True)
                    failed = True
                if name != "-":
                    done += os.path.getsize(name) if os.path.isfile(name) else 0
                for problem in decoder.summary.problems[before:]:
                    if "not_a_capture" in problem or "too short to be" in problem:
                        failed = True
        _write(out, decoder.finish(), events)
        _flush(out)
    except _OutputFailed as exc:
        if exc.error.errno == errno.EPIPE:
            raise exc.error from None  # the reader stopped reading: click exits quietly
        _discard(out)
        click.echo(f"netconsole decode: cannot write the output: {exc}", err=True)
        sys.exit(1)
    return failed, opened


def _file_ticker(tick: Ticker, f: BinaryIO, done: int) -> Callable[[], None]:
    """Progress within file `f`, after `done` bytes of the files before it."""
    def at() -> None:
        with contextlib.suppress(OSError, ValueError):  # a pipe has no position
            tick(done + f.tell())

    return at


TICK_EVERY = 1024
"""Events between two looks at the file position (the bar redraws by time anyway)."""


def _write(out: TextIO, evs: Iterable[Event], events: bool,
           tick: Callable[[], None] | None = None) -> None:
    """One JSON line per record (and per event with `events`)."""
    for n, ev in enumerate(evs, 1):  # reading the capture happens here too: its errors
        if tick is not None and n % TICK_EVERY == 0:  # are not ours
            tick()
        if events or isinstance(ev, Record):
            line = json_line(event_to_json(ev)) + "\n"
            try:
                out.write(line)
            except OSError as exc:
                raise _OutputFailed(exc) from exc


def _flush(out: TextIO) -> None:
    try:
        out.flush()
    except OSError as exc:
        raise _OutputFailed(exc) from exc


def _discard(out: TextIO) -> None:
    """Point stdout's descriptor at /dev/null: the interpreter flushes stdout again at
    exit, and the output still buffered would fail again, with a traceback."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):  # not a real file (a test runner's buffer)
        return
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    os.close(null)


def _print_summary(s: DecodeSummary, how: str) -> None:
    if how == "none":
        return
    if how == "json":
        click.echo(json_line(s.as_dict()), err=True)
        return
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(s.rejected.items())) or "none"
    click.echo(
        f"{s.records} records from {len(s.hosts)} hosts in {s.datagrams} datagrams "
        f"({s.packets} packets); lost: {s.lost_seq} by seq, {s.lost_msgid} by msgid, "
        f"{s.dropped} dropped by the sender; {s.incomplete} incomplete, "
        f"{s.duplicates} duplicates, {s.reboots} reboots; rejected: {rejected}",
        err=True,
    )
    for p in s.problems:
        click.echo(f"problem: {p}", err=True)
