"""Changing a host: the only place `setup` and `send` write files, run commands or
send packets.

`HostWriter` mirrors `HostView`: paths are relative to a root, which is "/" on a
live host and a directory tree in tests (a fake configfs, /proc and /etc).
Attribute writes are one `write(2)` each, as configfs and /proc need, and
raise `OSError` with the kernel's errno untouched so callers can explain it.
Commands and packets only happen on a live root; on a directory tree they are
recorded in `skipped`, so a test can see what would have run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""


@dataclass(slots=True)
class HostWriter:
    root: Path = Path("/")
    live: bool = True
    skipped: list[str] = field(default_factory=list)
    """Commands and packets not run because the root is not live."""

    @classmethod
    def for_root(cls, root: str | Path | None) -> HostWriter:
        if root is None or str(root) == "/":
            return cls(Path("/"), True)
        return cls(Path(root), False)

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    def write_attr(self, rel: str, value: str) -> None:
        """One write(2) of `value` + newline, no O_CREAT/O_TRUNC games on a live root.

        Raises:
            OSError: with the kernel's errno (EINVAL, ENODEV, 524...).
        """
        flags = os.O_WRONLY
        if not self.live:
            flags |= os.O_CREAT | os.O_TRUNC
            self.path(rel).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path(rel), flags, 0o644)
        try:
            os.write(fd, (value + "\n").encode())
        finally:
            os.close(fd)

    def write_file(self, rel: str, text: str, mode: int = 0o644) -> None:
        """Replace a configuration file atomically (write a sibling, then rename)."""
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.netconsole-tmp")
        tmp.write_text(text)
        os.chmod(tmp, mode)
        os.replace(tmp, p)

    def remove_file(self, rel: str) -> bool:
        try:
            self.path(rel).unlink()
        except FileNotFoundError:
            return False
        return True

    def mkdir(self, rel: str) -> None:
        if self.live:
            os.mkdir(self.path(rel))
        else:  # a plain tree lacks the groups configfs would have made (userdata/)
            self.path(rel).mkdir(parents=True)

    def rmdir(self, rel: str) -> None:
        p = self.path(rel)
        if not self.live:
            # A plain tree holds the attribute files and default groups (userdata/)
            # that configfs removes with the directory.
            shutil.rmtree(p)
            return
        os.rmdir(p)

    def run(self, argv: list[str], timeout: float = 60.0) -> CommandResult | None:
        """Run a command on a live root; None (and recorded) otherwise.

        Raises:
            OSError: the program does not exist.
        """
        if not self.live:
            self.skipped.append(" ".join(argv))
            return None
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            return CommandResult(argv=tuple(argv), returncode=-1,
                                 stderr=f"timed out after {exc.timeout}s")
        return CommandResult(argv=tuple(argv), returncode=done.returncode,
                             stdout=done.stdout, stderr=done.stderr)

    def kmsg(self, line: bytes) -> None:
        """One record into the kernel log (`dev/kmsg` under a test root is a file).

        Raises:
            OSError: EINVAL for more than 1024 bytes, EPERM/EACCES without root.
        """
        rel = "dev/kmsg"
        if self.live:
            fd = os.open(self.path(rel), os.O_WRONLY)
        else:
            self.path(rel).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path(rel), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def probe_neighbour(self, ip: str, dev: str | None) -> str:
        """Make the kernel resolve `ip`'s link-layer address: send it one packet.

        IPv4: a UDP datagram to the discard port (ARP happens before it leaves).
        IPv6: an ICMPv6 echo request when raw sockets are allowed (as `ping`
        does), else the same UDP datagram (neighbour discovery either way).
        Returns what was sent, for the report.
        """
        if not self.live:
            self.skipped.append(f"probe {ip}")
            return "nothing (not a live host)"
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        scope = socket.if_nametoindex(dev) if dev and family == socket.AF_INET6 else 0
        addr: tuple[str, int] | tuple[str, int, int, int] = (
            (ip, 9, 0, scope) if family == socket.AF_INET6 else (ip, 9))
        if family == socket.AF_INET6:
            try:
                with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
                    # type 128 echo request; the kernel fills the checksum for ICMPv6.
                    s.sendto(b"\x80\x00\x00\x00\x6e\x63\x00\x01netconsole-setup",
                             (ip, 0, 0, scope))
                return "an ICMPv6 echo request"
            except OSError:
                pass
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            if dev:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
            try:
                s.sendto(b"netconsole-setup neighbour probe", addr)
            except OSError as exc:
                return f"a UDP datagram to port 9 (failed: {exc.strerror})"
        return "a UDP datagram to port 9"
