"""A configfs directory that behaves like the kernel's (kernel-netconsole.md §3.2).

`KernelConfigfs` is a `HostWriter` over a tmp dir whose writes follow the
kernel's rules: mkdir creates a disabled target with default attribute files
and a `userdata/` group; attributes other than `enabled`, userdata values and
sysdata toggles refuse writes while enabled (EINVAL); writing the current
`enabled` value is EINVAL; enabling runs a pretend netpoll_setup that fails
with the errno set in `enable_errno`; rmdir refuses a target with userdata keys.
"""

from __future__ import annotations

import errno as E
import os
from pathlib import Path

from netconsole.host.write import HostWriter
from netconsole.kernel.configfs import CONFIGFS_ROOT

DEFAULTS = {"enabled": "0", "extended": "0", "release": "0", "dev_name": "eth0",
            "local_port": "6665", "remote_port": "6666", "local_ip": "0.0.0.0",
            "remote_ip": "0.0.0.0", "local_mac": "ff:ff:ff:ff:ff:ff",
            "remote_mac": "ff:ff:ff:ff:ff:ff", "transmit_errors": "0"}
SYSDATA = ("cpu_nr_enabled", "taskname_enabled", "release_enabled", "msgid_enabled")


class KernelConfigfs(HostWriter):
    def __init__(self, root: Path, *, sysdata: bool = True, release: bool = True) -> None:
        super().__init__(root, False)
        self.base = root / CONFIGFS_ROOT
        self.base.mkdir(parents=True, exist_ok=True)
        self.sysdata = sysdata
        self.release = release
        self.enable_errno: int | None = None
        self.log: list[str] = []

    def _split(self, rel: str) -> list[str]:
        p = self.path(rel)
        return list(p.relative_to(self.base).parts)

    def mkdir(self, rel: str) -> None:
        parts = self._split(rel)
        p = self.path(rel)
        if p.exists():
            raise OSError(E.EEXIST, os.strerror(E.EEXIST))
        if len(parts) == 1:
            p.mkdir()
            for k, v in DEFAULTS.items():
                if k == "release" and not self.release:
                    continue
                (p / k).write_text(v + "\n")
            (p / "userdata").mkdir()
            if self.sysdata:
                for t in SYSDATA:
                    (p / "userdata" / t).write_text("0\n")
        elif len(parts) == 3 and parts[1] == "userdata":
            if len(parts[2]) > 53:
                raise OSError(E.ENAMETOOLONG, os.strerror(E.ENAMETOOLONG))
            p.mkdir()
            (p / "value").write_text("\n")
        else:
            raise OSError(E.EPERM, os.strerror(E.EPERM))
        self.log.append(f"mkdir {'/'.join(parts)}")

    def rmdir(self, rel: str) -> None:
        parts = self._split(rel)
        p = self.path(rel)
        if len(parts) == 1:
            keys = [c for c in (p / "userdata").iterdir() if c.is_dir()]
            if keys:
                raise OSError(E.ENOTEMPTY, os.strerror(E.ENOTEMPTY))
        for child in sorted(p.rglob("*"), reverse=True):
            child.rmdir() if child.is_dir() else child.unlink()
        p.rmdir()
        self.log.append(f"rmdir {'/'.join(parts)}")

    def write_attr(self, rel: str, value: str) -> None:
        parts = self._split(rel)
        p = self.path(rel)
        if not p.exists():
            raise OSError(E.ENOENT, os.strerror(E.ENOENT))
        target = self.base / parts[0]
        enabled = (target / "enabled").read_text().strip() == "1"
        attr = "/".join(parts[1:])
        if attr in ("local_mac", "transmit_errors"):
            raise OSError(E.EACCES, os.strerror(E.EACCES))
        if attr == "enabled":
            want = value.strip() in ("1", "y", "Y")
            if want == enabled:
                raise OSError(E.EINVAL, "network logging has already started/stopped")
            if want and self.enable_errno is not None:
                raise OSError(self.enable_errno, os.strerror(self.enable_errno))
            if want and (target / "release").exists() and \
                    (target / "release").read_text().strip() == "1" and \
                    (target / "extended").read_text().strip() != "1":
                raise OSError(E.EINVAL, "Release feature requires extended log message")
        elif not attr.startswith("userdata/") and enabled:
            raise OSError(E.EINVAL, "target is enabled, disable to update parameters")
        elif attr.endswith("/value") and len(value.encode()) >= 200:
            raise OSError(E.EMSGSIZE, os.strerror(E.EMSGSIZE))
        p.write_text(value.strip() + "\n")
        self.log.append(f"{attr}={value.strip()} ({parts[0]})")
