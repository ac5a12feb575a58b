"""Reading a host: the live system ("/") or a snapshot directory with the same paths.

`HostView` is the only way `doctor/` sees a machine. Every method returns None
when the thing is missing or unreadable, never raises for a file's absence or
garbage: a partial or hand-written snapshot must give "unknown" findings, not a
traceback. Paths are given relative to the root (`proc/cmdline`) and shown to
people absolute (`/proc/cmdline`).

What a live view adds over a directory: netlink through pyroute2 (links,
addresses, routes, neighbours and the kernel's own route lookup), dmesg from
/dev/kmsg, and `ethtool -i`. A snapshot has them as files (`ip/*.json` or
`ip/*.txt`, `dmesg.txt`, `ethtool/<if>.txt`), documented in docs/doctor.md.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netconsole.host import netinfo
from netconsole.host.netinfo import Address, Link, Neighbour, Route, RouteLookup

# Alternative names a person might use for the same view in a snapshot.
DMESG_FILES = ("dmesg.txt", "dmesg", "var/log/dmesg", "journal-k.txt")
EXTRA_LOG_FILES = ("commands.txt", "modprobe.txt")
NET_VIEWS = ("link", "addr", "route", "neigh")


class SnapshotError(Exception):
    """The snapshot itself cannot be opened (not a directory, not a tarball)."""


@dataclass(slots=True)
class NetViews:
    """The four netlink views, each None when unknown, with where it came from."""

    links: list[Link] | None = None
    addresses: list[Address] | None = None
    routes: list[Route] | None = None
    neighbours: list[Neighbour] | None = None
    sources: dict[str, str] = field(default_factory=dict)
    """view -> evidence path (`ip/addr.json`, `netlink`)."""

    def link(self, name: str) -> Link | None:
        for link in self.links or ():
            if link.name == name:
                return link
        return None

    def link_by_mac(self, mac: str) -> Link | None:
        for link in self.links or ():
            if link.mac and link.mac.lower() == mac.lower():
                return link
        return None


class HostView:
    """Files and network state of one host, live or from a snapshot."""

    def __init__(self, root: str | Path = "/", *, live: bool | None = None) -> None:
        self.root = Path(root)
        self.live = (str(self.root) == "/") if live is None else live
        self._net: NetViews | None = None
        self._cache: dict[str, str | None] = {}

    # --- files -----------------------------------------------------------------------

    def path(self, rel: str) -> Path:
        return self.root / rel.lstrip("/")

    @staticmethod
    def show(rel: str) -> str:
        """How a path is shown in evidence: absolute, as on the host."""
        return "/" + rel.lstrip("/")

    def read_bytes(self, rel: str, limit: int = 64 * 1024 * 1024) -> bytes | None:
        # Read in chunks: some /proc files (sysctls) refuse one huge read() with ENOMEM.
        chunks: list[bytes] = []
        size = 0
        try:
            with open(self.path(rel), "rb") as f:
                while size < limit:
                    chunk = f.read(1 << 20)
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
        except (OSError, ValueError):
            return None
        return b"".join(chunks)

    def read(self, rel: str) -> str | None:
        """A text file, `.gz` files decompressed; None when missing or unreadable."""
        if rel in self._cache:
            return self._cache[rel]
        data = self.read_bytes(rel)
        text: str | None = None
        if data is not None:
            if rel.endswith(".gz") and data[:2] == b"\x1f\x8b":
                # A hand-written snapshot may hold a plain-text "config.gz": only
                # decompress what is really gzip.
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError, ValueError):
                    data = None
            if data is not None:
                text = data.decode("utf-8", "replace")
        self._cache[rel] = text
        return text

    def lines(self, rel: str) -> list[str] | None:
        text = self.read(rel)
        return None if text is None else text.splitlines()

    def first_line(self, rel: str) -> str | None:
        text = self.read(rel)
        if text is None:
            return None
        return text.splitlines()[0].strip() if text.strip() else ""

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.path(rel))

    def is_dir(self, rel: str) -> bool:
        return self.path(rel).is_dir()

    def listdir(self, rel: str) -> list[str] | None:
        try:
            return sorted(os.listdir(self.path(rel)))
        except (OSError, ValueError):  # ValueError: a NUL in a name read from the host
            return None

    def link_name(self, rel: str) -> str | None:
        """The last component a sysfs symlink points to.

        In a snapshot the symlink may be a plain file holding the target path or
        just the name (`ena`), which is easier to write by hand.
        """
        p = self.path(rel)
        try:
            if p.is_symlink():
                return os.path.basename(os.readlink(p).rstrip("/")) or None
            if p.is_file():
                text = p.read_text("utf-8", "replace").strip()
                return os.path.basename(text.rstrip("/")) or None
        except (OSError, ValueError):
            return None
        return None

    # --- logs ------------------------------------------------------------------------

    def dmesg(self) -> tuple[str, list[str]] | None:
        """(evidence path, lines) of the kernel log."""
        if self.live:
            lines = read_kmsg() or run_command(["dmesg"])
            return ("dmesg", lines) if lines is not None else None
        for name in DMESG_FILES:
            got = self.lines(name)
            if got is not None:
                return (name, got)
        return None

    def extra_logs(self) -> list[tuple[str, list[str]]]:
        """Terminal output a person saved next to the snapshot (`commands.txt`)."""
        out = []
        for name in EXTRA_LOG_FILES:
            got = self.lines(name)
            if got is not None:
                out.append((name, got))
        return out

    def kallsyms(self) -> list[str] | None:
        return self.lines("proc/kallsyms")

    def ethtool(self, ifname: str) -> tuple[str, dict[str, str]] | None:
        """`ethtool -i <if>` as a dict (`driver`, `version`, `firmware-version`...)."""
        rel = f"ethtool/{ifname}.txt"
        text = self.read(rel)
        if text is None and self.live and shutil.which("ethtool"):
            got = run_command(["ethtool", "-i", ifname])
            text = "\n".join(got) if got else None
            rel = f"ethtool -i {ifname}"
        if text is None:
            return None
        info = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                info[key.strip()] = value.strip()
        return (rel, info) if info else None

    # --- network ---------------------------------------------------------------------

    def net(self) -> NetViews:
        if self._net is None:
            self._net = live_net() if self.live else self._net_from_files()
        return self._net

    def _net_from_files(self) -> NetViews:
        views = NetViews()
        parsers: dict[str, tuple[Callable[[str], list[Any]], Callable[[str], list[Any]]]] = {
            "link": (netinfo.links_from_json, netinfo.links_from_text),
            "addr": (netinfo.addresses_from_json, netinfo.addresses_from_text),
            "route": (netinfo.routes_from_json, netinfo.routes_from_text),
            "neigh": (netinfo.neighbours_from_json, netinfo.neighbours_from_text),
        }
        for view, (from_json, from_text) in parsers.items():
            items: list[Any] | None = None
            used: list[str] = []
            names = [view] + (["route6"] if view == "route" else [])
            for name in names:
                for ext, parse in (("json", from_json), ("txt", from_text)):
                    rel = f"ip/{name}.{ext}"
                    text = self.read(rel)
                    if text is None:
                        continue
                    try:
                        parsed = parse(text)
                    except (ValueError, KeyError, TypeError, AttributeError):
                        continue
                    items = (items or []) + parsed
                    used.append(rel)
                    break
            if view == "link" and items is None:
                # `ip addr` text also carries the link lines.
                text = self.read("ip/addr.txt")
                if text is not None:
                    items, used = netinfo.links_from_text(text), ["ip/addr.txt"]
            if items is not None:
                setattr(views, {"link": "links", "addr": "addresses", "route": "routes",
                                "neigh": "neighbours"}[view], items)
                views.sources[view] = ", ".join(used)
        return views

    def route_get(self, dst: str) -> RouteLookup | None:
        """Which interface/gateway/source the kernel would use for `dst`."""
        if self.live:
            got = live_route_get(dst)
            if got is not None:
                return got
        routes = self.net().routes
        return netinfo.lookup_route(routes, dst) if routes is not None else None


# --- live helpers (the only code here that touches the running kernel) ---------------


def read_kmsg(limit: int = 20000) -> list[str] | None:
    """The kernel log from /dev/kmsg as `[sec.usec] text` lines, without blocking."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    out: list[str] = []
    try:
        while len(out) < limit:
            try:
                rec = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: the record was overwritten; keep reading
                continue
            if not rec:
                break
            head, _, text = rec.decode("utf-8", "replace").partition(";")
            parts = head.split(",")
            usec = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else 0
            msg = text.split("\n", 1)[0]
            out.append(f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] {msg}")
    finally:
        os.close(fd)
    return out


def run_command(argv: list[str], timeout: float = 5.0) -> list[str] | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.splitlines() if done.returncode == 0 else None


def _attr(msg: Any, name: str) -> Any:
    try:
        return msg.get_attr(name)
    except (AttributeError, KeyError, TypeError):
        return None


_IFF = {0x1: "UP", 0x2: "BROADCAST", 0x8: "LOOPBACK", 0x10: "POINTOPOINT", 0x80: "NOARP",
        0x100: "PROMISC", 0x400: "MASTER", 0x800: "SLAVE", 0x1000: "MULTICAST",
        0x10000: "LOWER_UP"}


def live_ip_json() -> dict[str, list[dict[str, Any]]] | None:
    """The four views from netlink, shaped like `ip -j` output."""
    try:
        from pyroute2 import IPRoute  # type: ignore[import-untyped]
    except ImportError:
        return None
    try:
        with IPRoute() as ipr:
            raw_links = list(ipr.get_links())
            names = {m["index"]: _attr(m, "IFLA_IFNAME") for m in raw_links}
            links = []
            for m in raw_links:
                flags = int(m["flags"])
                names_f = [n for bit, n in _IFF.items() if flags & bit]
                if flags & 0x1 and not flags & 0x10000:
                    names_f.append("NO-CARRIER")
                d: dict[str, Any] = {
                    "ifindex": m["index"], "ifname": names[m["index"]], "flags": names_f,
                    "operstate": _attr(m, "IFLA_OPERSTATE"),
                    "address": _attr(m, "IFLA_ADDRESS"),
                }
                master = _attr(m, "IFLA_MASTER")
                if master:
                    d["master"] = names.get(master)
                info = _attr(m, "IFLA_LINKINFO")
                kind = _attr(info, "IFLA_INFO_KIND") if info is not None else None
                if kind:
                    d["linkinfo"] = {"info_kind": kind}
                links.append(d)
            addrs: dict[int, dict[str, Any]] = {}
            for a in ipr.get_addr():
                entry = addrs.setdefault(a["index"], {"ifindex": a["index"],
                                                      "ifname": names.get(a["index"]),
                                                      "addr_info": []})
                entry["addr_info"].append({
                    "family": "inet6" if a["family"] == 10 else "inet",
                    "local": _attr(a, "IFA_LOCAL") or _attr(a, "IFA_ADDRESS"),
                    "prefixlen": a["prefixlen"],
                    "scope": {0: "global", 200: "site", 253: "link", 254: "host"}.get(
                        a["scope"], str(a["scope"])),
                })
            routes = []
            for fam in (2, 10):
                for r in ipr.get_routes(family=fam, table=254):
                    dst = _attr(r, "RTA_DST")
                    rd: dict[str, Any] = {
                        "dst": f"{dst}/{r['dst_len']}" if dst else "default",
                        "dev": names.get(_attr(r, "RTA_OIF")),
                    }
                    for key, attr in (("gateway", "RTA_GATEWAY"), ("prefsrc", "RTA_PREFSRC"),
                                      ("metric", "RTA_PRIORITY")):
                        value = _attr(r, attr)
                        if value is not None:
                            rd[key] = value
                    if r["type"] != 1:
                        rd["type"] = {2: "local", 3: "broadcast", 6: "blackhole",
                                      7: "unreachable", 8: "prohibit"}.get(r["type"], "other")
                    routes.append(rd)
            neighs = []
            for n in ipr.get_neighbours():
                state = int(n["state"])
                states = [s for bit, s in ((0x1, "INCOMPLETE"), (0x2, "REACHABLE"),
                                           (0x4, "STALE"), (0x8, "DELAY"), (0x10, "PROBE"),
                                           (0x20, "FAILED"), (0x40, "NOARP"),
                                           (0x80, "PERMANENT")) if state & bit]
                nd: dict[str, Any] = {"dst": _attr(n, "NDA_DST"),
                                      "dev": names.get(n["ifindex"]), "state": states}
                ll = _attr(n, "NDA_LLADDR")
                if ll:
                    nd["lladdr"] = ll
                if nd["dst"]:
                    neighs.append(nd)
    except Exception:  # netlink unavailable (container, seccomp): unknown
        return None
    return {"link": links, "addr": list(addrs.values()), "route": routes, "neigh": neighs}


def live_net() -> NetViews:
    data = live_ip_json()
    if data is None:
        return NetViews()
    text = {k: json.dumps(v) for k, v in data.items()}
    return NetViews(
        links=netinfo.links_from_json(text["link"]),
        addresses=netinfo.addresses_from_json(text["addr"]),
        routes=netinfo.routes_from_json(text["route"]),
        neighbours=netinfo.neighbours_from_json(text["neigh"]),
        sources={k: "netlink" for k in NET_VIEWS},
    )


def live_route_get(dst: str) -> RouteLookup | None:
    """Ask the kernel (`ip route get`); no packet is sent."""
    try:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            msg = ipr.route("get", dst=dst)[0]
            oif = _attr(msg, "RTA_OIF")
            dev = None
            if oif:
                links = ipr.get_links(oif)
                dev = _attr(links[0], "IFLA_IFNAME") if links else None
            rtype = {1: "unicast", 2: "local"}.get(msg["type"], "other")
            return RouteLookup(dst=dst, dev=dev, gateway=_attr(msg, "RTA_GATEWAY"),
                               prefsrc=_attr(msg, "RTA_PREFSRC"), type=rtype, source="kernel")
    except Exception:  # unreachable, no netlink: fall back to the table
        return None


# --- snapshots -----------------------------------------------------------------------


def _find_root(base: Path) -> Path:
    """A tarball may hold the snapshot at its top or inside one directory."""
    markers = ("proc", "sys", "dmesg.txt", "ip", "etc", "boot")
    if any((base / m).exists() for m in markers):
        return base
    entries = [p for p in base.iterdir() if p.is_dir()]
    if len(entries) == 1:
        return _find_root(entries[0]) if any((entries[0] / m).exists() for m in markers) \
            else entries[0]
    return base


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract a snapshot safely.

    Files and directories go through tarfile's "data" filter (no absolute paths,
    no `..`, no devices): a snapshot from elsewhere is untrusted. Links are not
    created at all; each becomes a small text file holding its target, which is
    exactly what `HostView.link_name` accepts, so a tarball of copied sysfs
    symlinks (`device/driver -> ../../../bus/pci/drivers/ena`) still works.
    """
    for member in tar.getmembers():
        if member.issym() or member.islnk():
            out = (dest / member.name.lstrip("/")).resolve()
            if not out.is_relative_to(dest.resolve()):
                continue  # `../..` names: not part of any snapshot
            out.parent.mkdir(parents=True, exist_ok=True)
            if not out.exists():
                out.write_text(member.linkname + "\n")
            continue
        if member.isfile() or member.isdir():
            tar.extract(member, dest, filter="data")


@contextlib.contextmanager
def open_root(root: str | Path | None) -> Iterator[HostView]:
    """A HostView over `root`: None or "/" for the live host, a directory, or a tarball.

    Raises:
        SnapshotError: `root` does not exist or is neither a directory nor a tar file.
    """
    if root is None or str(root) == "/":
        yield HostView("/", live=True)
        return
    path = Path(root)
    if path.is_dir():
        yield HostView(_find_root(path), live=False)
        return
    if not path.exists():
        raise SnapshotError(f"{root}: no such file or directory")
    if not path.is_file():
        raise SnapshotError(f"{root}: not a directory or a tar archive")
    with tempfile.TemporaryDirectory(prefix="netconsole-snapshot-") as tmp:
        try:
            with tarfile.open(path) as tar:
                _extract(tar, Path(tmp))
        except tarfile.ReadError as exc:
            # tarfile lists each compression it tried, one per line: say it once.
            if "could not be opened successfully" in str(exc):
                raise SnapshotError(f"{root}: not a directory or a tar archive") from exc
            raise SnapshotError(f"{root}: damaged tar archive ({_one_line(exc)})") from exc
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SnapshotError(f"{root}: unreadable tar archive ({_one_line(exc)})") from exc
        yield HostView(_find_root(Path(tmp)), live=False)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
