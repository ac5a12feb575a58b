"""Where forward left off: the state file.

Holds the boot id of the kernel whose log was being sent, the seq of the last
record forward is done with (sent, or deliberately filtered or dropped), and
the digests of the pstore dumps already sent. With it:

* a restart in the same boot skips records with seq <= the saved seq, so it
  neither repeats nor skips (records still in the in-memory backlog were not
  done with, so they are sent again after a restart rather than lost);
* a reboot changes `/proc/sys/kernel/random/boot_id`, and the saved seq, which
  belongs to the old boot's ring buffer, is ignored: the new boot is read from
  its first record;
* a pstore dump is sent once, even after systemd-pstore moves it from
  `/sys/fs/pstore` to `/var/lib/systemd/pstore` (it is known by its content).

The file is JSON, replaced atomically (written beside it, fsync'd, renamed),
so a crash or `kill -9` leaves the old state or the new one, never half.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
STATE_VERSION = 1
# Digests of sent pstore dumps kept; a backend holds a handful of dumps at most.
MAX_PSTORE_DIGESTS = 256


class StateError(ValueError):
    """The state file exists but cannot be used."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardState:
    """The resume point of forward.

    Attributes:
        boot_id: the boot the seq belongs to; None before the first save.
        seq: the last record done with in that boot; None when none was.
        pstore_sent: digests of the pstore dumps already sent, oldest first.
    """

    boot_id: str | None = None
    seq: int | None = None
    pstore_sent: tuple[str, ...] = ()

    def resume_after(self, boot_id: str) -> int | None:
        """The seq to skip up to in boot `boot_id`; None means read from the start."""
        return self.seq if boot_id == self.boot_id else None

    def advanced(self, *, boot_id: str, seq: int | None) -> ForwardState:
        """This state with a new resume point (`seq` None keeps the saved one)."""
        if seq is None:
            return self if boot_id == self.boot_id else replace(self, boot_id=boot_id, seq=None)
        return replace(self, boot_id=boot_id, seq=seq)

    def with_pstore(self, digest: str) -> ForwardState:
        """This state remembering one more sent dump."""
        if digest in self.pstore_sent:
            return self
        return replace(self, pstore_sent=(*self.pstore_sent, digest)[-MAX_PSTORE_DIGESTS:])


def encode_state(state: ForwardState) -> bytes:
    """The state file's bytes."""
    doc = {"version": STATE_VERSION, "boot_id": state.boot_id, "seq": state.seq,
           "pstore_sent": list(state.pstore_sent)}
    return json.dumps(doc, indent=1).encode() + b"\n"


def decode_state(data: bytes) -> ForwardState:
    """Parse the state file's bytes.

    Raises:
        StateError: not a state file of this version.
    """
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise StateError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
        raise StateError("not a netconsole forward state file (version 1)")
    boot_id, seq, sent = doc.get("boot_id"), doc.get("seq"), doc.get("pstore_sent", [])
    if boot_id is not None and not isinstance(boot_id, str):
        raise StateError("boot_id is not a string")
    if seq is not None and (not isinstance(seq, int) or seq < 0):
        raise StateError("seq is not a non-negative integer")
    if not isinstance(sent, list) or not all(isinstance(d, str) for d in sent):
        raise StateError("pstore_sent is not a list of strings")
    return ForwardState(boot_id=boot_id, seq=seq, pstore_sent=tuple(sent))


def load_state(path: Path) -> ForwardState:
    """The saved state, or an empty one when the file does not exist yet.

    Raises:
        StateError: the file exists and is not a state file (it is not
            overwritten silently: losing it would resend the whole buffer).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ForwardState()
    try:
        return decode_state(data)
    except StateError as exc:
        raise StateError(f"{path}: {exc}") from None


def save_state(path: Path, state: ForwardState) -> None:
    """Write the state atomically: a temporary file beside it, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            f.write(encode_state(state))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def read_boot_id(path: Path = BOOT_ID_PATH) -> str:
    """This boot's id (a random UUID the kernel makes at each boot)."""
    return path.read_text().strip()
