"""`netconsole doctor --collect`: save everything the checks read into a tarball.

The archive has the layout of docs/doctor.md: the same paths as on the host
under the archive root, plus `dmesg.txt`, `ip/{link,addr,route,neigh}.json` (as
`ip -j` prints them), `ethtool/<if>.txt` and `netconsole-snapshot.txt`.
sysfs symlinks (`master`, `device/driver`) are stored as small text files
holding the link target, which the reader accepts, so the archive has no
symlinks and extracts safely anywhere.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import time
from pathlib import Path

from netconsole import __version__
from netconsole.host.view import HostView, live_ip_json, read_kmsg, run_command

FILES = (
    "proc/version", "proc/sys/kernel/osrelease", "proc/cmdline", "proc/config.gz",
    "proc/consoles", "proc/modules", "proc/sys/kernel/printk", "proc/sys/kernel/printk_devkmsg",
    "sys/module/printk/parameters/ignore_loglevel", "etc/os-release",
    "sys/module/netconsole/initstate", "sys/module/netconsole/version",
    "sys/module/netconsole/parameters/oops_only", "sys/module/netpoll/parameters/carrier_timeout",
)
DIRS = ("etc/modprobe.d", "run/modprobe.d", "usr/local/lib/modprobe.d", "lib/modprobe.d",
        "usr/lib/modprobe.d", "etc/modules-load.d")
NET_FILES = ("operstate", "carrier", "flags", "address", "ifindex", "mtu", "type", "uevent")
_KALLSYMS_KEEP = re.compile(r"netpoll|poll_controller")


class Collector:
    """Builds the archive in memory-light steps: each file is added as it is read."""

    def __init__(self, view: HostView, tar: tarfile.TarFile) -> None:
        self.view = view
        self.tar = tar
        self.added: list[str] = []

    def add_bytes(self, rel: str, data: bytes) -> None:
        info = tarfile.TarInfo(rel)
        info.size = len(data)
        info.mtime = int(time.time())
        info.mode = 0o644
        self.tar.addfile(info, io.BytesIO(data))
        self.added.append(rel)

    def add_text(self, rel: str, text: str) -> None:
        self.add_bytes(rel, text.encode("utf-8", "replace"))

    def copy(self, rel: str) -> None:
        data = self.view.read_bytes(rel)
        if data is not None:
            self.add_bytes(rel, data)

    def copy_link(self, rel: str) -> None:
        try:
            target = os.readlink(self.view.path(rel))
        except OSError:
            return
        self.add_text(rel, target + "\n")

    def copy_tree(self, rel: str, depth: int = 4) -> None:
        if depth < 0:
            return
        for name in self.view.listdir(rel) or []:
            child = f"{rel}/{name}"
            p = self.view.path(child)
            if p.is_symlink():
                self.copy_link(child)
            elif p.is_dir():
                self.copy_tree(child, depth - 1)
            else:
                self.copy(child)


def _release(view: HostView) -> str | None:
    text = view.first_line("proc/sys/kernel/osrelease")
    return text or None


def collect(view: HostView, out: str | Path) -> list[str]:
    """Write a snapshot of `view` (normally the live host) to the tarball `out`.

    Returns:
        The archive members written, in order.
    """
    mode = "w:gz" if str(out).endswith(("gz", "tgz")) else "w"
    with tarfile.open(out, mode) as tar:  # type: ignore[call-overload]
        c = Collector(view, tar)
        for rel in FILES:
            c.copy(rel)
        release = _release(view)
        if release:
            c.copy(f"boot/config-{release}")
            for name in ("modules.builtin", "modules.dep"):
                text = view.read(f"lib/modules/{release}/{name}")
                if text is not None:
                    keep = [ln for ln in text.splitlines() if "netconsole" in ln]
                    c.add_text(f"lib/modules/{release}/{name}", "\n".join(keep) + "\n")
        for d in DIRS:
            c.copy_tree(d, depth=1)
        c.copy_tree("sys/kernel/config/netconsole", depth=4)
        drivers: set[str] = set()
        for ifname in view.listdir("sys/class/net") or []:
            base = f"sys/class/net/{ifname}"
            for name in NET_FILES:
                c.copy(f"{base}/{name}")
            c.copy_link(f"{base}/master")
            c.copy_link(f"{base}/device/driver")
            for name in view.listdir(base) or []:
                if name.startswith("lower_"):
                    c.copy_link(f"{base}/{name}")
            driver = view.link_name(f"{base}/device/driver")
            if driver:
                drivers.add(driver)
            eth = view.ethtool(ifname)
            if eth is not None:
                c.add_text(f"ethtool/{ifname}.txt",
                           "".join(f"{k}: {v}\n" for k, v in eth[1].items()))
        for driver in sorted(drivers):
            c.copy(f"sys/module/{driver}/version")
        syms = view.kallsyms()
        if syms is not None:
            keep, modules = [], set()
            for line in syms:
                parts = line.split()
                mod = parts[3] if len(parts) > 3 else None
                if _KALLSYMS_KEEP.search(line) or (mod is not None and mod not in modules):
                    keep.append(line)
                    if mod is not None:
                        modules.add(mod)
            c.add_text("proc/kallsyms", "\n".join(keep) + "\n")
        logs = view.dmesg()
        if logs is not None:
            c.add_text("dmesg.txt", "\n".join(logs[1]) + "\n")
        ip = live_ip_json() if view.live else None
        if not view.live:  # re-collecting a snapshot: keep its non-host files as they are
            for d in ("ip", "ethtool"):
                c.copy_tree(d, depth=0)
            for name in ("commands.txt", "modprobe.txt", "uname.txt", "config.txt"):
                c.copy(name)
        if ip is not None:
            for name, items in ip.items():
                c.add_text(f"ip/{name}.json", json.dumps(items, indent=1, default=str) + "\n")
        c.add_text("netconsole-snapshot.txt",
                   f"netconsole {__version__} doctor --collect\n"
                   f"time: {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
                   f"files: {len(c.added)}\n")
        return c.added


__all__ = ["collect", "read_kmsg", "run_command"]
