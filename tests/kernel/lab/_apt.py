"""Finding and downloading Debian packages: the system's apt, and a private one for sid.

The system's own sources give Debian 12's kernels and Python. Debian unstable
(sid) is reached through a private apt configuration kept under the lab cache:
its own `sources.list` naming the same mirror as the system's sources (read from
`/etc/apt/sources.list` and `/etc/apt/sources.list.d/`), the suite `sid`, its own
lists and cache directories. The system's apt sources are never touched.

Nothing here hard-codes a kernel version: versions are discovered with
`apt-cache pkgnames` and the newest one is taken.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lab._errors import LabError

SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_PARTS = Path("/etc/apt/sources.list.d")
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# A private sid list older than this is refreshed (sid moves daily; a vanished
# version makes `apt-get download` fail).
SID_LISTS_MAX_AGE = 6 * 3600.0

APT_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True)
class AptSource:
    """One `deb` entry of the system's sources."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None


@dataclass(frozen=True, slots=True)
class Apt:
    """An apt configuration: the system's (no options) or a private one."""

    name: str
    options: tuple[str, ...] = ()

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        """Run `apt-get`/`apt-cache` with this configuration; stdout, or LabError."""
        cmd = [tool, *self.options, *args]
        try:
            proc = subprocess.run(
                cmd, cwd=cwd, capture_output=True, text=True, timeout=APT_TIMEOUT, check=False
            )
        except FileNotFoundError as exc:
            raise LabError(f"{tool} is not installed: {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{' '.join(cmd)} timed out after {APT_TIMEOUT:.0f} s") from exc
        if proc.returncode != 0:
            raise LabError(
                f"{' '.join(cmd)} failed ({proc.returncode}) [{self.name} apt]:\n"
                f"{proc.stderr.strip()[-2000:]}"
            )
        return proc.stdout

    def pkgnames(self, prefix: str) -> list[str]:
        return sorted(set(self.run("apt-cache", "pkgnames", prefix).split()))

    def candidate(self, package: str) -> str | None:
        """The version `apt-get download` would fetch, or None."""
        out = self.run("apt-cache", "policy", package)
        m = re.search(r"^\s*Candidate:\s*(\S+)", out, re.M)
        if m is None or m.group(1) == "(none)":
            return None
        return m.group(1)

    def download(self, packages: Sequence[str], dest: Path) -> list[Path]:
        """`apt-get download` the candidates into `dest`; files already there are reused."""
        dest.mkdir(parents=True, exist_ok=True)
        wanted: dict[str, str] = {}
        for package in packages:
            version = self.candidate(package)
            if version is None:
                raise LabError(f"{package}: no installable candidate in the {self.name} apt")
            wanted[package] = version
        missing = [p for p, v in wanted.items() if _deb_path(dest, p, v) is None]
        if missing:
            self.run("apt-get", "download", "-q", *missing, cwd=dest)
        paths = []
        for package, version in wanted.items():
            path = _deb_path(dest, package, version)
            if path is None:
                raise LabError(f"apt-get download left no .deb for {package} {version} in {dest}")
            paths.append(path)
        return paths


def _deb_path(dest: Path, package: str, version: str) -> Path | None:
    # apt-get download names files <pkg>_<version with ':' as %3a>_<arch>.deb
    quoted = version.replace(":", "%3a")
    for path in dest.glob(f"{package}_*.deb"):
        if path.name.split("_")[1] in (quoted, version):
            return path
    return None


SYSTEM = Apt("system")


def system_sources() -> list[AptSource]:
    """Every `deb` entry of the system's sources (one-line and deb822 formats)."""
    sources: list[AptSource] = []
    files = [SOURCES_LIST] if SOURCES_LIST.exists() else []
    if SOURCES_PARTS.is_dir():
        files += sorted(SOURCES_PARTS.iterdir())
    for path in files:
        if path.suffix == ".list" or path == SOURCES_LIST:
            sources += _parse_one_line(path.read_text(errors="replace"))
        elif path.suffix == ".sources":
            sources += _parse_deb822(path.read_text(errors="replace"))
    return sources


def _parse_one_line(text: str) -> list[AptSource]:
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        signed_by = None
        m = re.match(r"deb\s+\[([^\]]*)\]\s+(.*)", line)
        rest = line[4:].strip()
        if m is not None:
            for opt in m.group(1).split():
                if opt.startswith("signed-by="):
                    signed_by = opt.split("=", 1)[1]
            rest = m.group(2)
        parts = rest.split()
        if len(parts) >= 2:
            out.append(AptSource(parts[0], (parts[1],), tuple(parts[2:]), signed_by))
    return out


def _parse_deb822(text: str) -> list[AptSource]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for raw in stanza.splitlines():
            if raw.startswith("#") or ":" not in raw or raw[:1].isspace():
                continue
            key, value = raw.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or "uris" not in fields:
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        signed_by = fields.get("signed-by")
        if signed_by is not None and not signed_by.startswith("/"):
            signed_by = None  # an inline key block: fall back to the archive keyring
        for uri in fields["uris"].split():
            out.append(
                AptSource(
                    uri,
                    tuple(fields.get("suites", "").split()),
                    tuple(fields.get("components", "").split()),
                    signed_by,
                )
            )
    return out


def debian_mirror(sources: Sequence[AptSource] | None = None) -> AptSource:
    """The system's main Debian archive entry (not -security, not third-party)."""
    sources = system_sources() if sources is None else sources
    codename = _os_codename()
    ranked = []
    for src in sources:
        if "security" in src.uri or any(s.endswith("-security") for s in src.suites):
            continue
        score = 2 if codename in src.suites else 1 if "debian" in src.uri else 0
        if score:
            ranked.append((score, src))
    if not ranked:
        raise LabError(
            "no Debian archive found in /etc/apt/sources.list(.d); cannot reach Debian sid"
        )
    ranked.sort(key=lambda item: -item[0])
    return ranked[0][1]


def _os_codename() -> str:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return ""
    m = re.search(r"^VERSION_CODENAME=\"?([^\"\n]*)", text, re.M)
    return m.group(1) if m else ""


@dataclass(slots=True)
class PrivateApt:
    """A private apt configuration for one suite of the system's Debian mirror."""

    root: Path
    suite: str = "sid"
    mirror: AptSource | None = None
    _apt: Apt | None = field(default=None, init=False)

    def apt(self) -> Apt:
        """The configuration, with its lists refreshed when missing or old."""
        if self._apt is not None:
            return self._apt
        mirror = self.mirror or debian_mirror()
        lists = self.root / "lists"
        cache = self.root / "cache"
        (lists / "partial").mkdir(parents=True, exist_ok=True)
        (cache / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        source_list = self.root / "sources.list"
        keyring = mirror.signed_by or DEFAULT_KEYRING
        line = f"deb [signed-by={keyring}] {mirror.uri} {self.suite} main\n"
        if not source_list.exists() or source_list.read_text() != line:
            source_list.write_text(line)
            for old in lists.glob("*_Packages*"):
                old.unlink()
        apt = Apt(
            f"private {self.suite}",
            (
                f"-o=Dir::Etc::SourceList={source_list}",
                "-o=Dir::Etc::SourceParts=/nonexistent",
                f"-o=Dir::State::Lists={lists}",
                f"-o=Dir::Cache={cache}",
                "-o=Acquire::Languages=none",
                "-o=APT::Architectures=amd64",
            ),
        )
        packages = list(lists.glob("*_Packages"))
        fresh = packages and time.time() - max(p.stat().st_mtime for p in packages) < (
            SID_LISTS_MAX_AGE
        )
        if not fresh and os.environ.get("NETCONSOLE_LAB_OFFLINE") != "1":
            apt.run("apt-get", "update", "-q")
            for p in lists.glob("*_Packages"):
                p.touch()
        self._apt = apt
        return apt
