"""`listen --files DIR`: one log file per host and day, like the kernel console.

Each stored record is appended to `DIR/<host>/<YYYY-MM-DD>.log` (the day it
was received, UTC) as the console prints it, `[    5.123456] text`, one line
per line of text; loss, reboots and shed datagrams are marked lines starting
`--- netconsole:`. `<host>` is the record's `hostname=` userdata, else the
sender's address, made safe as a file name whatever the sender claims
(`safe_name`).

Files are opened for appending and never truncated: a restart goes on where
the last run stopped. SIGHUP closes them all, so that the next record opens
the file logrotate left at the path (contrib/netconsole.logrotate). Writing
is the receiver's own, but cheap: each file gets one append per batch, and
at most `OPEN_FILES` stay open (the least recently used is closed).
"""

from __future__ import annotations

import collections
import datetime
import errno
import os
import re
import sys
from pathlib import Path

from netconsole._terminal import printable
from netconsole.outputs._base import CommittedBatch, Delivered, OutputStats, host_of
from netconsole.store import Shed
from netconsole.stream import Gap, GapKind, Reboot, Sender

OPEN_FILES = 128
"""Files kept open at most; more hosts reopen theirs per batch."""
MAX_NAME = 64
"""Characters of a host directory's name at most (a host name's label is 63)."""
FILE_MODE = 0o640
DIR_MODE = 0o750
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")
_REBOOT_WHY = {"seq_back": "seq went back", "time_back": "timestamps went back",
               "new_release": "new kernel release"}


def safe_name(claimed: str) -> str:
    """A directory name for a host, whatever it claims to be called.

    Letters, digits and `. _ : -` are kept and anything else (`/`, control
    characters, spaces, non-ASCII) becomes `_`; at most MAX_NAME characters;
    a name starting with a dot (`.`, `..`, a hidden file) gets a `_` before it.
    """
    name = _UNSAFE.sub("_", claimed)[:MAX_NAME]
    if not name or name.startswith("."):
        name = "_" + name[: MAX_NAME - 1]
    return name


def day_of(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%d")


def record_lines(d: Delivered) -> str:
    """A record as the console would print it: each line `[sssss.uuuuuu] text`."""
    r = d.record
    if r.ts_usec is not None:
        seconds, micros = divmod(r.ts_usec, 1_000_000)
        prefix = f"[{seconds:5d}.{micros:06d}] "
    else:
        prefix = ""  # basic mode without printk.time: the console printed none either
    lines = printable(r.text, newlines=True).split("\n")
    if not r.complete:
        lines[-1] += " [incomplete]"
    return "".join(prefix + line + "\n" for line in lines)


def mark_line(e: Gap | Reboot | Shed) -> str:
    """A loss, reboot or shed mark: never a kernel line (those start with `[`)."""
    if isinstance(e, Reboot):
        what = _REBOOT_WHY.get(e.reason.value, e.reason.value)
        detail = ""
        if e.previous_seq is not None or e.seq is not None:
            detail = f", seq {e.previous_seq} -> {e.seq}"
        if e.release != e.previous_release and e.release is not None:
            detail += f", release {printable(e.previous_release or '?')} -> {printable(e.release)}"
        return f"--- netconsole: reboot ({what}{detail}) ---\n"
    if isinstance(e, Shed):
        return (f"--- netconsole: {e.count} datagrams shed (the receiver was behind and the "
                f"host over its budget) ---\n")
    if e.kind is GapKind.DROPPED:
        return f"--- netconsole: {e.count} printk messages dropped by the sender ---\n"
    span = f"{e.first}-{e.first + e.count - 1}" if e.first is not None else "?"
    if e.kind is GapKind.MSGID:
        return f"--- netconsole: {e.count} messages lost (msgid {span}) ---\n"
    return f"--- netconsole: {e.count} records lost (seq {span}) ---\n"


class FilesOutput:
    """Appends committed records to per-host, per-day files under `root`."""

    def __init__(self, root: str | Path) -> None:
        self.name = "files"
        self.root = Path(root)
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        self._fds: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._names: dict[Sender, str] = {}  # the directory each sender's records went to
        self._stats = OutputStats()
        self._complained: set[str] = set()

    def deliver(self, batch: CommittedBatch) -> None:
        pending: dict[tuple[str, str], list[str]] = {}
        counts: dict[tuple[str, str], int] = {}
        names = self._names
        for e in batch.entries:
            if type(e) is Delivered:
                r = e.record
                name = safe_name(host_of(r))
                if names.get(r.sender) != name:
                    if len(names) > 100_000:  # bounded whatever the senders do
                        names.clear()
                    names[r.sender] = name
                key = (name, day_of(r.received))
                pending.setdefault(key, []).append(record_lines(e))
                counts[key] = counts.get(key, 0) + 1
            else:
                assert isinstance(e, (Gap, Reboot, Shed))
                name = names.get(e.sender) or safe_name(e.sender.host)
                pending.setdefault((name, day_of(e.at)), []).append(mark_line(e))
        for key, lines in pending.items():
            n = counts.get(key, 0)
            if self._append(key, "".join(lines).encode("utf-8", "surrogateescape")):
                self._stats.sent += n
            else:
                self._stats.dropped += n

    def _append(self, key: tuple[str, str], data: bytes) -> bool:
        try:
            fd = self._open(key)
            view = memoryview(data)
            while view:  # O_APPEND: each write lands at the end, whoever else appends
                view = view[os.write(fd, view):]
        except OSError as exc:
            self._close_one(key)
            where = f"{key[0]}/{key[1]}.log"
            if where not in self._complained and len(self._complained) < 100:
                self._complained.add(where)
                print(f"netconsole listen: --files: cannot write {self.root / where}: "
                      f"{exc.strerror or exc}", file=sys.stderr)
            return False
        return True

    def _open(self, key: tuple[str, str]) -> int:
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
            return fd
        host, day = key
        directory = self.root / host
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            pass
        except FileNotFoundError:  # DIR itself was removed: make it again
            self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            os.mkdir(directory, DIR_MODE)
        # O_NOFOLLOW: a symlink planted at a log's path is refused, not followed.
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(directory / f"{day}.log", flags, FILE_MODE)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OSError(errno.ELOOP, "it is a symbolic link") from None
            raise
        self._fds[key] = fd
        while len(self._fds) > OPEN_FILES:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def _close_one(self, key: tuple[str, str]) -> None:
        fd = self._fds.pop(key, None)
        if fd is not None:
            os.close(fd)

    def reopen(self) -> None:
        """SIGHUP: close every file; the next record opens what is at the path now."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._complained.clear()

    def close(self) -> None:
        self.reopen()

    def stats(self) -> OutputStats:
        s = self._stats
        return OutputStats(sent=s.sent, dropped=s.dropped)
