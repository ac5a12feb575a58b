"""Python inside the guest: Debian 12's CPython 3.11 and the project, as initramfs layers.

Two archives, appended to a scenario's image:

* `runtime` (cached by the Debian package versions): python3.11-minimal,
  libpython3.11-stdlib and the shared libraries they load, extracted with
  `dpkg-deb -x` into a staging root; the project's pure-Python dependencies
  installed with `pip install --target /usr/lib/python3/dist-packages` (on
  Debian's default `sys.path`); `.pyc` compiled by the staged interpreter.
* `project` (cached by a hash of `src/` and `pyproject.toml`): the netconsole
  wheel built from the work tree, installed the same way, compiled.

The `.pyc` files use `unchecked-hash` invalidation: the initramfs gives every
file mtime 0, so timestamp-checked caches would all look stale (and imports
under TCG cost three times as much without them).

Commands run in the guest go in a scenario's `/init` (see `python_steps` in
`lab.scenarios`); the interpreter is `/usr/bin/python3`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lab._apt import SYSTEM, Apt
from lab._errors import LabError
from lab._initramfs import CpioWriter, gzip_archive

PY = "python3.11"
# kernel-netconsole lab notes (qemu-lab.md): what Debian 12's CPython needs.
PACKAGES = (
    "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6",
    "libgcc-s1", "zlib1g", "libexpat1", "libffi8", "libssl3", "libsqlite3-0", "libbz2-1.0",
    "liblzma5", "libuuid1", "libncursesw6", "libtinfo6", "libreadline8", "libdb5.3",
    "libcrypt1",
)
# Not needed and pulling in Kerberos libraries.
DROP_GLOBS = ("usr/lib/python3.11/lib-dynload/nis.*.so",)
SITE = "usr/lib/python3/dist-packages"
PROJECT_NAMES = ("netconsole",)


@dataclass(frozen=True, slots=True)
class PythonImages:
    """The two archives, and what was measured building them."""

    runtime: Path
    project: Path
    download_bytes: int

    @property
    def parts(self) -> tuple[Path, Path]:
        return (self.runtime, self.project)


def build_python(cache: Path, project_root: Path, apt: Apt = SYSTEM) -> PythonImages:
    """Build (or reuse) the runtime and project layers."""
    if os.geteuid() != 0:
        raise LabError("staging Python for the guest needs root (chroot for compileall)")
    root = cache / "python"
    root.mkdir(parents=True, exist_ok=True)
    debs = apt.download(PACKAGES, cache / "debs")
    download = sum(p.stat().st_size for p in debs)
    runtime_key = _digest([p.name for p in debs] + _dependencies(project_root))
    project_key = _digest([_tree_digest(project_root), runtime_key])
    runtime = root / f"runtime-{runtime_key}.cpio.gz"
    project = root / f"project-{project_key}.cpio.gz"
    if runtime.exists() and project.exists():
        return PythonImages(runtime, project, download)
    wheel_dir = Path(tempfile.mkdtemp(dir=root, prefix="wheel-"))
    try:
        wheel = _build_wheel(project_root, wheel_dir)
        stage = root / "stage"
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir()
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(stage)])
        for pattern in DROP_GLOBS:
            for path in stage.glob(pattern):
                path.unlink()
        _link(stage / "usr/bin/python3", PY)
        _check_libraries(stage)
        _pip_target(stage / SITE, wheel)
        _compile(stage, "/usr/lib/python3.11", f"/{SITE}")
        project_tree = root / "project-stage"
        if project_tree.exists():
            shutil.rmtree(project_tree)
        (project_tree / SITE).mkdir(parents=True)
        for path in sorted((stage / SITE).iterdir()):
            name = path.name.split("-", 1)[0].lower()
            if name in PROJECT_NAMES:
                shutil.move(str(path), str(project_tree / SITE / path.name))
        if not runtime.exists():
            for old in root.glob("runtime-*.cpio.gz"):
                old.unlink()
            _archive(stage, runtime)
        for old in root.glob("project-*.cpio.gz"):
            old.unlink()
        _archive(project_tree, project)
        shutil.rmtree(stage)
        shutil.rmtree(project_tree)
        return PythonImages(runtime, project, download)
    finally:
        shutil.rmtree(wheel_dir, ignore_errors=True)


def _dependencies(project_root: Path) -> list[str]:
    """The project's declared dependencies: the runtime layer holds them."""
    data = tomllib.loads((project_root / "pyproject.toml").read_text())
    deps = data.get("project", {}).get("dependencies", [])
    return sorted(str(d) for d in deps)


def _build_wheel(project_root: Path, out: Path) -> Path:
    # Build from a copy: setuptools writes build/ and *.egg-info into its source tree.
    src = out / "src-copy"
    shutil.copytree(project_root / "src", src / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (project_root / name).exists():
            shutil.copy2(project_root / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)])
    wheels = sorted(out.glob("netconsole-*.whl"))
    if not wheels:
        raise LabError(f"pip wheel left no netconsole wheel in {out}")
    return wheels[0]


def _pip_target(site: Path, wheel: Path) -> None:
    site.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-compile", "--target", str(site),
          "--only-binary=:all:", "--python-version", "3.11", "--implementation", "py",
          "--platform", "any", "--no-warn-script-location", str(wheel)])


def _compile(stage: Path, *dirs: str) -> None:
    """Compile with the staged interpreter itself (chroot), hash-based `.pyc`."""
    _run(["chroot", str(stage), f"/usr/bin/{PY}", "-m", "compileall", "-q", "-j", "0",
          "--invalidation-mode", "unchecked-hash", "-x", r"(lib2to3|test|idlelib|tkinter)/",
          *dirs], ok=(0, 1))


def _check_libraries(stage: Path) -> None:
    """Every ELF file of the runtime resolves its libraries inside the staging root."""
    binaries = [f"/usr/bin/{PY}"] + [
        "/" + p.relative_to(stage).as_posix()
        for p in sorted((stage / "usr/lib/python3.11/lib-dynload").glob("*.so"))
    ]
    ldso = "/lib64/ld-linux-x86-64.so.2"
    missing = []
    for binary in binaries:
        out = _run(["chroot", str(stage), ldso, "--list", binary])
        missing += [f"{binary}: {line.strip()}" for line in out.splitlines() if "not found" in line]
    if missing:
        raise LabError("staged Python misses libraries:\n" + "\n".join(missing))


def _archive(tree: Path, out: Path) -> None:
    w = CpioWriter()
    w.tree(tree)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(gzip_archive(w))
    tmp.replace(out)


def _link(path: Path, target: str) -> None:
    if not path.exists():
        path.symlink_to(target)


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _tree_digest(project_root: Path) -> str:
    h = hashlib.sha256()
    files = [project_root / "pyproject.toml", *sorted((project_root / "src").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.relative_to(project_root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _run(cmd: list[str], ok: tuple[int, ...] = (0,)) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except FileNotFoundError as exc:
        raise LabError(f"{cmd[0]} is not installed") from exc
    if proc.returncode not in ok:
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}):\n"
                       f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc.stdout
