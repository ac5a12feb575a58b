"""`forward()`: the I/O loop around `Forwarder`, as `netconsole forward` runs it.

Order of a run:

1. read the boot id and the state file; open the kmsg source (errors here
   are the caller's to explain: no permission, no such file);
2. bind the UDP source port; queue every pstore dump not sent before;
3. loop: read what `/dev/kmsg` has, offer each record, flush the targets,
   save the state (at most once a second, and always at the end); wait in
   `select` for more records, a retry time, or a signal;
4. stop on SIGTERM/SIGINT; at EOF of a file or FIFO, or in `--once` mode
   once everything there was read, stop when the backlogs are empty (or after
   `DRAIN_SECONDS` of failed retries); flush once more and save the state.

SIGUSR1 prints the counters as one JSON line on stderr.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from netconsole.forward.core import Forwarder
from netconsole.forward.kmsg import KmsgReader, ReadStatus, open_kmsg
from netconsole.forward.policy import Policy, PolicyConfig, Verdict
from netconsole.forward.pstore import DEFAULT_PSTORE_DIRS, find_dumps, order_dumps, read_dump
from netconsole.forward.sender import (
    DEFAULT_BACKLOG,
    DEFAULT_LOCAL_PORT,
    Backlog,
    EncodeConfig,
    Receiver,
    Target,
    UdpTransport,
)
from netconsole.forward.state import (
    BOOT_ID_PATH,
    ForwardState,
    load_state,
    read_boot_id,
    save_state,
)

# Save the resume point at most this often while running (a kill -9 repeats
# at most this much; the receiver drops the repeats as duplicates).
SAVE_EVERY_SECONDS = 1.0
# Longest sleep in select: bounds how late a retry or a stop is noticed.
MAX_WAIT_SECONDS = 1.0
# Once the input is over (--once, EOF of a file or FIFO), how long to go on
# trying receivers that still have records queued before exiting; what is
# left is not lost: the state file makes the next run send it.
DRAIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardOptions:
    """Everything one run needs; `netconsole forward`'s options, parsed."""

    receivers: tuple[Receiver, ...]
    state: Path
    encode: EncodeConfig = field(default_factory=EncodeConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    kmsg: Path = Path("/dev/kmsg")
    pstore_dirs: tuple[Path, ...] = DEFAULT_PSTORE_DIRS
    local_port: int = DEFAULT_LOCAL_PORT
    backlog: int = DEFAULT_BACKLOG
    once: bool = False
    boot_id_path: Path = BOOT_ID_PATH


@dataclass(slots=True, kw_only=True)
class ForwardStats:
    """The counters of a run (`--stats`, SIGUSR1)."""

    boot_id: str = ""
    resumed_after_seq: int | None = None
    read: int = 0  # /dev/kmsg records read (after the resume point)
    skipped: int = 0  # records at or below the resume point
    sent: int = 0  # records accepted and queued for every receiver
    crash: int = 0  # of those, passed as crash output (filters bypassed)
    filtered_level: int = 0
    rate_limited: int = 0
    kmsg_overruns: int = 0  # EPIPE: the ring overwrote unread records
    kmsg_lost: int = 0  # records lost, from seq jumps
    unparsable: int = 0
    pstore_dumps: int = 0  # dumps queued in this run
    pstore_records: int = 0
    pstore_already_sent: int = 0
    pstore_errors: int = 0
    backlog: int = 0  # records queued now, all receivers
    state_seq: int | None = None  # the resume point last saved
    state_errors: int = 0  # saves that failed (read-only root at shutdown, disk full)
    last_state_error: str | None = None
    receivers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _taskname_of(caller: str) -> bytes | None:
    """`T<pid>` -> /proc/<pid>/comm, or None when the task is gone."""
    try:
        return Path(f"/proc/{int(caller[1:])}/comm").read_bytes().strip() or None
    except (OSError, ValueError):
        return None


def _save(path: Path, state: ForwardState, stats: ForwardStats) -> None:
    """Save the state; a failure is counted, not fatal: sending matters more,
    and the next save (or the next boot's fresh start) makes up for it."""
    try:
        save_state(path, state)
    except OSError as exc:
        stats.state_errors += 1
        stats.last_state_error = str(exc)
        return
    stats.state_seq = state.seq


def _fill(stats: ForwardStats, fwd: Forwarder, reader: KmsgReader) -> None:
    v = fwd.verdicts
    stats.sent = v[Verdict.SEND] + v[Verdict.CRASH]
    stats.crash = v[Verdict.CRASH]
    stats.filtered_level = v[Verdict.LEVEL]
    stats.rate_limited = v[Verdict.RATE]
    c = reader.counters
    stats.kmsg_overruns, stats.kmsg_lost = c.overruns, c.lost
    stats.unparsable, stats.skipped = c.unparsable, c.skipped
    stats.backlog = fwd.queued()
    stats.receivers = {str(t.receiver): {**asdict(t.counters), "backlog": len(t.backlog),
                                         "msgid": t.msgid} for t in fwd.targets}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Wakeup:
    """What the signal handlers leave for the loop: a readable fd and a flag."""

    fd: int | None
    usr1: threading.Event


@contextlib.contextmanager
def _signals(stop: threading.Event) -> Iterator[_Wakeup]:
    """SIGTERM/SIGINT set `stop`, SIGUSR1 sets `usr1`; any of them makes `fd`
    readable so `select` returns at once. Off the main thread: no handlers."""
    usr1 = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield _Wakeup(fd=None, usr1=usr1)
        return
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)

    def on_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    def on_usr1(signum: int, frame: FrameType | None) -> None:
        usr1.set()

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    old_fd = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGUSR1, on_usr1)
    try:
        yield _Wakeup(fd=r, usr1=usr1)
    finally:
        signal.set_wakeup_fd(old_fd)
        for s, h in old.items():
            signal.signal(s, h)
        os.close(r)
        os.close(w)


def forward(options: ForwardOptions, *, stop: threading.Event | None = None,
            report: Callable[[str], None] | None = None) -> ForwardStats:
    """Send this host's kernel log (and pstore dumps) to the receivers.

    Args:
        options: the parsed command line.
        stop: set it (another thread, or SIGTERM/SIGINT) to end the run.
        report: where SIGUSR1's JSON counters go (default: stderr).

    Returns:
        The counters at the end of the run.

    Raises:
        PermissionError, FileNotFoundError: opening the kmsg source.
        OSError: binding the source port.
        StateError: the state file is not one.
    """
    stop = stop or threading.Event()
    boot_id = read_boot_id(options.boot_id_path)
    state = load_state(options.state)
    after = state.resume_after(boot_id)
    stats = ForwardStats(boot_id=boot_id, resumed_after_seq=after, state_seq=state.seq)
    fd, chardev = open_kmsg(str(options.kmsg))
    transport = UdpTransport(options.local_port)
    try:
        transport.prepare(list(options.receivers))
        reader = KmsgReader(functools.partial(os.read, fd), whole_records=chardev,
                            after_seq=after)
        targets = [Target(receiver=r, backlog=Backlog(options.backlog))
                   for r in options.receivers]
        fwd = Forwarder(targets, options.encode, Policy(options.policy), _taskname_of)
        emit = report or (lambda line: print(line, file=sys.stderr, flush=True))

        def snapshot() -> str:
            _fill(stats, fwd, reader)
            return stats.to_json()

        pending: set[str] = set()
        dumps = []
        for path in find_dumps(list(options.pstore_dirs)):
            try:
                dumps.append(read_dump(path))
            except (OSError, ValueError):
                stats.pstore_errors += 1
        for dump in order_dumps(dumps):
            if dump.digest in state.pstore_sent or dump.digest in pending:
                stats.pstore_already_sent += 1
                continue
            stats.pstore_records += fwd.offer_pstore(dump)
            stats.pstore_dumps += 1
            pending.add(dump.digest)

        with _signals(stop) as wake:
            last_save = time.monotonic()
            drain_until: float | None = None  # input is over: send what is queued until then
            while True:
                status: ReadStatus | None = None
                if drain_until is None:
                    recs, status = reader.read_available()
                    for rec in recs:
                        fwd.offer(rec)
                    stats.read += len(recs)
                now = time.monotonic()
                fwd.flush(transport.send, now)
                if pending:
                    for digest in pending - fwd.pending_tags():
                        state = state.with_pstore(digest)
                        pending.discard(digest)
                state = state.advanced(boot_id=boot_id, seq=fwd.done_seq())
                if not options.once and now - last_save >= SAVE_EVERY_SECONDS:
                    _save(options.state, state, stats)
                    last_save = now
                if wake.usr1.is_set():
                    wake.usr1.clear()
                    emit(snapshot())
                if drain_until is None and (status is ReadStatus.EOF or
                                            (options.once and status is ReadStatus.AGAIN)):
                    drain_until = now + DRAIN_SECONDS
                if stop.is_set() or (drain_until is not None and
                                     (not fwd.queued() or now >= drain_until)):
                    break
                if drain_until is None and status is None:
                    continue  # the read stopped at its limit: read on
                wait = MAX_WAIT_SECONDS
                retry = fwd.next_retry()
                if retry is not None:
                    wait = max(0.0, min(wait, retry - now))
                fds = [] if drain_until is not None else [fd]
                if wake.fd is not None:
                    fds.append(wake.fd)
                ready, _, _ = select.select(fds, [], [], wait)
                if wake.fd is not None and wake.fd in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake.fd, 512)
            fwd.flush(transport.send, time.monotonic())
        for digest in pending - fwd.pending_tags():
            state = state.with_pstore(digest)
        state = state.advanced(boot_id=boot_id, seq=fwd.done_seq())
        _save(options.state, state, stats)
        _fill(stats, fwd, reader)
        return stats
    finally:
        transport.close()
        os.close(fd)
