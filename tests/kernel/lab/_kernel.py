"""Debian kernels for the lab: discover, download, extract vmlinuz and the modules.

Two kernels are wanted (issue 6): the newest Debian 12 `6.12.*` image
(`linux-image-<rel>-unsigned`, one package) and the newest 7.x of Debian sid,
where the image is split into `linux-binary(-unsigned)-<rel>` and
`linux-modules-<rel>`. Each is extracted once into the cache, keyed by its
release, as `vmlinuz`, decompressed `*.ko` files and a `kernel.json` manifest
naming the module load order.
"""

from __future__ import annotations

import gzip
import json
import lzma
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lab._apt import SYSTEM, Apt, PrivateApt
from lab._errors import LabError

# What netconsole needs: itself (its modules.dep names configfs when that is
# modular) and the NIC driver chain for the QEMU devices the lab uses.
NETCONSOLE = "netconsole"
NIC_DRIVERS = ("virtio_pci", "virtio_net", "e1000")
# Modules a scenario loads by name (`Script.load_modules`), not part of `setup()`:
# HSR makes a device with IFF_DISABLE_NETPOLL, dummy devices are its two ports
# (issue 18). A kernel without one of them lacks only the scenarios that need it.
EXTRA_MODULES = ("hsr", "dummy")

_IMAGE_612 = re.compile(r"^linux-image-(6\.12\.(\d+)\+deb12-amd64)-unsigned$")
_MODULES_7 = re.compile(r"^linux-modules-(7\.(\d+)\.(\d+)\+deb\d+-amd64)$")


@dataclass(frozen=True, slots=True)
class KernelSpec:
    """A kernel found in an apt configuration, not yet downloaded."""

    label: str
    release: str
    version: str
    packages: tuple[str, ...]
    apt: Apt


@dataclass(frozen=True, slots=True)
class Kernel:
    """An extracted kernel: the image and the decompressed modules the lab loads.

    `load_order` maps a wanted module to the module names to `insmod`, in order
    (dependencies first); an empty list means the driver is built in.
    """

    label: str
    release: str
    version: str
    vmlinuz: Path
    modules: Path
    load_order: dict[str, list[str]]
    download_bytes: int

    def module(self, name: str) -> Path:
        return self.modules / f"{name}.ko"

    def insmod_chain(self, *wanted: str) -> list[str]:
        """Module names to load, deduplicated, dependencies first."""
        out: list[str] = []
        for want in wanted:
            if want not in self.load_order:
                raise LabError(f"{self.release}: module {want} is not in the kernel's packages")
            for name in self.load_order[want]:
                if name not in out:
                    out.append(name)
        return out

    @property
    def major(self) -> int:
        return int(self.release.split(".", 1)[0])


def find_debian12_612(apt: Apt = SYSTEM) -> KernelSpec:
    """The newest Debian 12 `linux-image-6.12.*+deb12-amd64-unsigned`."""
    found = []
    for name in apt.pkgnames("linux-image-6.12."):
        m = _IMAGE_612.match(name)
        if m is not None:
            found.append((int(m.group(2)), m.group(1), name))
    for _, release, name in sorted(found, reverse=True):
        version = apt.candidate(name)
        if version is not None:
            return KernelSpec("debian12-6.12", release, version, (name,), apt)
    raise LabError(
        "no linux-image-6.12.*+deb12-amd64-unsigned in the system's apt lists "
        "(run `apt-get update`; is a Debian 12 registry reachable?)"
    )


def find_sid_7x(private: PrivateApt) -> KernelSpec:
    """The newest 7.x `linux-modules-<rel>` of Debian sid, with its binary package."""
    apt = private.apt()
    found = []
    for name in apt.pkgnames("linux-modules-7."):
        m = _MODULES_7.match(name)
        if m is not None:
            found.append(((int(m.group(2)), int(m.group(3))), m.group(1), name))
    for _, release, modules in sorted(found, reverse=True):
        version = apt.candidate(modules)
        if version is None:
            continue
        known = set(apt.pkgnames(f"linux-binary-unsigned-{release}")) | set(
            apt.pkgnames(f"linux-binary-{release}")
        )
        for binary in (f"linux-binary-unsigned-{release}", f"linux-binary-{release}"):
            if binary in known and apt.candidate(binary) is not None:
                return KernelSpec("sid-7.x", release, version, (binary, modules), apt)
    raise LabError("no linux-modules-7.*-amd64 with a linux-binary package in Debian sid")


def prepare_kernel(spec: KernelSpec, cache: Path) -> Kernel:
    """Download (cached) and extract (cached) one kernel."""
    debs = spec.apt.download(spec.packages, cache / "debs")
    download_bytes = sum(p.stat().st_size for p in debs)
    root = cache / "kernels" / spec.release
    manifest = root / "kernel.json"
    if manifest.exists():
        data = json.loads(manifest.read_text())
        if data.get("version") == spec.version and data.get("extra") == list(EXTRA_MODULES):
            return _kernel(spec, root, data, download_bytes)
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        tree = Path(tmp)
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(tree)])
        data = _extract(spec.release, tree, root)
    data["version"] = spec.version
    data["extra"] = list(EXTRA_MODULES)
    manifest.write_text(json.dumps(data, indent=1, sort_keys=True))
    return _kernel(spec, root, data, download_bytes)


def _kernel(spec: KernelSpec, root: Path, data: dict[str, object], size: int) -> Kernel:
    order = data["load_order"]
    assert isinstance(order, dict)
    return Kernel(
        label=spec.label,
        release=spec.release,
        version=spec.version,
        vmlinuz=root / "vmlinuz",
        modules=root / "modules",
        load_order={k: list(v) for k, v in order.items()},
        download_bytes=size,
    )


def _extract(release: str, tree: Path, root: Path) -> dict[str, object]:
    images = [
        *sorted(tree.glob(f"boot/vmlinuz-{release}")),
        *sorted(tree.glob("boot/vmlinuz-*")),
        # 7.x split packages: linux-binary ships usr/lib/modules/<rel>/vmlinuz[.unsigned]
        *sorted(tree.glob(f"usr/lib/modules/{release}/vmlinuz*")),
    ]
    if not images:
        raise LabError(f"no boot/vmlinuz-{release} in the kernel packages")
    shutil.copyfile(images[0], root / "vmlinuz")
    moddirs = [d for d in (tree / "lib/modules" / release, tree / "usr/lib/modules" / release)
               if d.is_dir()]
    if not moddirs:
        raise LabError(f"no lib/modules/{release} in the kernel packages")
    moddir = moddirs[0]
    # modules.dep is made by depmod at install time, so it is not in the package:
    # dependencies come from each module's own `.modinfo` `depends=` field.
    index = {_modname(p.name): p for p in moddir.rglob("*.ko*")}
    builtin = _builtin_names(moddir)
    out = root / "modules"
    out.mkdir(exist_ok=True)
    load_order: dict[str, list[str]] = {}
    for want in (NETCONSOLE, *NIC_DRIVERS):
        if want in index:
            load_order[want] = _resolve(want, index, builtin, out)
        elif want in builtin:
            load_order[want] = []
        elif want in (NETCONSOLE, "virtio_net"):
            raise LabError(f"{release}: module {want} is neither modular nor built in")
        else:  # not shipped as a module: built in (7.x packages have no modules.builtin)
            load_order[want] = []
    for want in EXTRA_MODULES:
        if want in index:
            load_order[want] = _resolve(want, index, builtin, out)
        elif want in builtin:
            load_order[want] = []
    return {"load_order": load_order, "builtin_configfs": "configfs" in builtin}


def _modname(path: str) -> str:
    return Path(path).name.split(".ko", 1)[0].replace("-", "_")


def _builtin_names(moddir: Path) -> set[str]:
    path = moddir / "modules.builtin"
    if not path.exists():
        return set()
    return {_modname(line) for line in path.read_text().split()}


def _depends(ko: bytes) -> list[str]:
    m = re.search(rb"\0depends=([^\0]*)\0", ko)
    if m is None or not m.group(1):
        return []
    return [d.decode().replace("-", "_") for d in m.group(1).split(b",")]


def _resolve(name: str, index: dict[str, Path], builtin: set[str], out: Path) -> list[str]:
    """Decompress `name` and its dependencies into `out`; the load order."""
    order: list[str] = []

    def visit(n: str, stack: tuple[str, ...]) -> None:
        if n in order or n in builtin:
            return
        if n in stack:
            raise LabError(f"module dependency loop: {' -> '.join((*stack, n))}")
        if n not in index:
            raise LabError(f"module {n} (needed by {stack[-1] if stack else '-'}) not found")
        dst = out / f"{n}.ko"
        _decompress(index[n], dst)
        for d in _depends(dst.read_bytes()):
            visit(d, (*stack, n))
        order.append(n)

    visit(name, ())
    return order


def _decompress(src: Path, dst: Path) -> None:
    """busybox insmod loads only plain ELF modules."""
    if src.name.endswith(".ko.xz"):
        dst.write_bytes(lzma.decompress(src.read_bytes()))
    elif src.name.endswith(".ko.gz"):
        dst.write_bytes(gzip.decompress(src.read_bytes()))
    elif src.name.endswith(".ko.zst"):
        _run(["zstd", "-q", "-d", "-f", "-o", str(dst), str(src)])
    else:
        shutil.copyfile(src, dst)


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]} is not installed") from exc
    if proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed: {proc.stderr.strip()[-1000:]}")
