"""Out-of-tree modules for a lab kernel: Debian's headers for it, and `make M=`.

Only the Debian 12 6.12 kernel can have them here: its headers are in the
system's apt (`linux-headers-<rel>`, `linux-headers-<base>-common`,
`linux-kbuild-<base>`, all of the kernel's exact version) and it was built with
gcc-12, which Debian 12 has. The sid 7.x kernel was built with gcc-16, which
Debian 12 lacks: asking for its headers is an error, not a skip.

The three packages are extracted (`dpkg-deb -x`, no root) into
`<cache>/headers/<release>/`. Their tree is relocatable but for one line: the
flavour's `Makefile` includes the common one by its absolute
`/usr/src/...` path, which is rewritten to the cache. Building needs gcc-12,
make and pahole (BTF for modules); ci-prepare.sh installs them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lab._apt import SYSTEM, Apt
from lab._errors import LabError
from lab._kernel import Kernel

BUILDABLE = ("debian12-6.12",)
BUILD_TIMEOUT = 300.0
TOOLS = {"make": "make", "x86_64-linux-gnu-gcc-12": "gcc-12", "pahole": "dwarves"}


def header_packages(kernel: Kernel) -> tuple[str, ...]:
    """`linux-headers-6.12.117+deb12-amd64` and the two packages it needs."""
    flavour = kernel.release.rsplit("-", 1)[1]
    base = kernel.release.removesuffix(f"-{flavour}")
    return (f"linux-headers-{kernel.release}", f"linux-headers-{base}-common",
            f"linux-kbuild-{base}")


def kernel_headers(kernel: Kernel, cache: Path, apt: Apt = SYSTEM) -> Path:
    """The build directory (`KDIR`) of `kernel`'s headers, downloaded and extracted once."""
    if kernel.label not in BUILDABLE:
        raise LabError(f"{kernel.release}: no module builds here (its compiler is not in "
                       f"Debian 12); only {', '.join(BUILDABLE)}")
    packages = header_packages(kernel)
    for package in packages:
        version = apt.candidate(package)
        if version != kernel.version:
            raise LabError(f"{package}: candidate {version}, the lab's kernel is "
                           f"{kernel.version} (apt-get update?)")
    root = cache / "headers" / kernel.release
    kdir = root / "usr" / "src" / f"linux-headers-{kernel.release}"
    stamp = root / "stamp"
    if stamp.exists() and stamp.read_text() == kernel.version:
        return kdir
    debs = apt.download(packages, cache / "debs")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{kernel.release}."))
    try:
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(tmp)])
        common = f"/usr/src/{packages[1]}"  # the package is named like its directory
        makefile = tmp / kdir.relative_to(root) / "Makefile"
        text = makefile.read_text()
        if f"include {common}/" not in text:
            raise LabError(f"{makefile}: no `include {common}/Makefile` to relocate:\n{text}")
        # the final location, not tmp: the tree is renamed into place below
        makefile.write_text(text.replace(f"include {common}/", f"include {root}{common}/"))
        (tmp / "stamp").write_text(kernel.version)
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return kdir


def check_tools() -> None:
    missing = [f"{tool} ({package})" for tool, package in TOOLS.items()
               if shutil.which(tool) is None]
    if missing:
        raise LabError(f"cannot build kernel modules, missing: {', '.join(missing)} "
                       "(sudo sh tests/kernel/ci-prepare.sh)")


def build_module(kdir: Path, name: str, sources: Mapping[str, bytes], cache: Path) -> Path:
    """`make -C KDIR M=...` of `sources` (file name -> content; a Kbuild file among
    them); the `<name>.ko`, cached by the sources and the headers' path."""
    digest = hashlib.sha256(str(kdir).encode())
    for fname, data in sorted(sources.items()):
        digest.update(fname.encode() + b"\0" + data + b"\0")
    out = cache / "built" / kdir.name / f"{name}-{digest.hexdigest()[:16]}"
    ko = out / f"{name}.ko"
    if ko.exists():
        return ko
    check_tools()
    out.mkdir(parents=True, exist_ok=True)
    for fname, data in sources.items():
        (out / fname).write_bytes(data)
    _run(["make", "-C", str(kdir), f"M={out}", "modules"])
    if not ko.exists():
        raise LabError(f"make left no {ko}")
    return ko


def _run(cmd: list[str]) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(cmd)} timed out") from exc
    if proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                       f"{(proc.stdout + proc.stderr).strip()[-3000:]}")


@dataclass(frozen=True, slots=True)
class ShimBuild:
    """What `netconsole shim write DIR --device eth0 --build --kdir KDIR --force` did."""

    directory: Path
    argv: tuple[str, ...]
    returncode: int
    output: str
    files: dict[str, bytes]
    """np_shim.c, Makefile, README and np_shim.ko, for the guest."""


SHIM_FILES = ("np_shim.c", "Makefile", "README", "np_shim.ko")


def write_shim(kdir: Path, directory: Path, device: str = "eth0") -> ShimBuild:
    """The project's own command writes and builds np_shim against `kdir` (forced:
    the lab's kernels are >= 4.19, where the shim is not needed)."""
    check_tools()
    if directory.exists():
        shutil.rmtree(directory)
    argv = (sys.executable, "-m", "netconsole", "shim", "write", str(directory),
            "--device", device, "--build", "--kdir", str(kdir), "--force")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                          check=False)
    output = proc.stdout + proc.stderr
    (directory.parent / f"{directory.name}.out").write_text(" ".join(argv) + "\n" + output)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}):\n{output[-3000:]}")
    files = {name: (directory / name).read_bytes() for name in SHIM_FILES}
    return ShimBuild(directory=directory, argv=argv, returncode=proc.returncode,
                     output=output, files=files)
