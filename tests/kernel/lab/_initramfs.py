"""Initramfs images: cpio `newc` archives, gzip-compressed, written in pure Python.

An image is a list of gzip'ed cpio archives that the kernel unpacks in turn
(`Documentation/driver-api/early-userspace/buffer-format.rst`: concatenated
archives are allowed). The lab uses that to build the expensive parts once:

* `base` per kernel: busybox-static with its applet links, the decompressed
  modules under `/lib/modules/`, `/dev/console`;
* `python` once (optional): a staged CPython and the project (see `_python.py`);
* `init` per scenario: the `/init` shell script and its helpers, a few KB.

No root is needed: device nodes are cpio entries, not `mknod` calls.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lab._errors import LabError
from lab._kernel import Kernel

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

_NEWC_MAGIC = b"070701"


@dataclass(slots=True)
class CpioWriter:
    """A cpio `newc` archive built in memory."""

    _buf: io.BytesIO = field(default_factory=io.BytesIO)
    _ino: int = 1
    _seen: set[str] = field(default_factory=set)

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        name = name.lstrip("/")
        if name in self._seen:
            return
        self._seen.add(name)
        encoded = name.encode() + b"\0"
        fields = (
            self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0,
        )
        self._ino += 1
        header = _NEWC_MAGIC + b"".join(b"%08X" % f for f in fields)
        self._buf.write(header + encoded)
        self._pad()
        self._buf.write(data)
        self._pad()

    def _pad(self) -> None:
        self._buf.write(b"\0" * (-self._buf.tell() % 4))

    def directory(self, name: str, mode: int = 0o755) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            self._entry("/".join(parts[:i]), stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._parent(name)
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._parent(name)
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._parent(name)
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def tree(self, src: Path, dest: str = "/") -> None:
        """Add a directory tree (files, directories, symlinks) under `dest`."""
        for root, dirs, files in os.walk(src):
            dirs.sort()
            rel = Path(root).relative_to(src)
            base = (Path(dest) / rel).as_posix()
            if base.strip("/"):
                self.directory(base)
            for name in sorted(dirs) + sorted(files):
                path = Path(root) / name
                target = f"{base.rstrip('/')}/{name}"
                st = path.lstat()
                if stat.S_ISLNK(st.st_mode):
                    self.symlink(target, os.readlink(path))
                elif stat.S_ISREG(st.st_mode):
                    self.file(target, path.read_bytes(), stat.S_IMODE(st.st_mode))
                elif stat.S_ISDIR(st.st_mode):
                    self.directory(target, stat.S_IMODE(st.st_mode))

    def _parent(self, name: str) -> None:
        parent = name.strip("/").rpartition("/")[0]
        if parent:
            self.directory(parent)

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        self._buf.write(b"\0" * (-self._buf.tell() % 512))
        return self._buf.getvalue()


def gzip_archive(writer: CpioWriter, level: int = 6) -> bytes:
    return gzip.compress(writer.finish(), compresslevel=level, mtime=0)


def busybox_path() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.exists() and _is_static(path):
            return path
    raise LabError("busybox-static is not installed (apt-get install busybox-static)")


def _is_static(path: Path) -> bool:
    proc = subprocess.run(["file", "-L", str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:  # no `file`: trust the package name
        return True
    return "statically linked" in proc.stdout or "static-pie" in proc.stdout


def _applets(busybox: Path) -> list[str]:
    proc = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise LabError(f"{busybox} --list-full failed")
    return [line for line in proc.stdout.split() if line]


def base_image(kernel: Kernel, out: Path) -> Path:
    """busybox + the kernel's modules, cached next to the kernel."""
    busybox = busybox_path()
    stamp = f"{kernel.version}|{busybox.stat().st_size}|{busybox.stat().st_mtime_ns}\n"
    stampfile = out.with_suffix(".stamp")
    if out.exists() and stampfile.exists() and stampfile.read_text() == stamp:
        return out
    w = CpioWriter()
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "tmp", "run", "etc",
              "lib/modules", "root", "mnt"):
        w.directory(d)
    w.char_device("dev/console", 5, 1)
    w.char_device("dev/null", 1, 3, 0o666)
    w.char_device("dev/ttyS0", 4, 64)
    w.char_device("dev/ttyS1", 4, 65)
    w.char_device("dev/kmsg", 1, 11, 0o644)
    w.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in _applets(busybox):
        if applet.strip("/") != "bin/busybox":
            w.symlink(applet, "/bin/busybox")
    for ko in sorted(kernel.modules.glob("*.ko")):
        w.file(f"lib/modules/{ko.name}", ko.read_bytes())
    w.file("etc/lab-kernel", f"{kernel.release}\n".encode())
    w.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    w.file("etc/group", b"root:x:0:\n")
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip_archive(w))
    tmp.replace(out)
    stampfile.write_text(stamp)
    return out


def init_image(files: dict[str, tuple[bytes, int]], out: Path) -> Path:
    """A small archive of scenario files: path -> (content, mode)."""
    w = CpioWriter()
    for name, (data, mode) in sorted(files.items()):
        w.file(name, data, mode)
    out.write_bytes(gzip_archive(w, level=1))
    return out


def concatenate(parts: Iterable[Path], out: Path) -> Path:
    with out.open("wb") as dst:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, dst)
    return out
