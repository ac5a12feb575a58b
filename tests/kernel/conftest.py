"""Fixtures of the real-kernel suite: the lab, the kernels, and one boot per scenario.

A boot costs seconds, so each scenario boots once per kernel (session scope)
and several tests read what it left. A kernel that cannot be fetched makes its
tests ERROR, never skip: `LabError` propagates out of the fixture.

Environment:
    NETCONSOLE_LAB_CACHE  cache directory (default tests/kernel/.cache)
    NETCONSOLE_LAB_KERNELS  comma-separated subset of KERNEL_LABELS
    NETCONSOLE_LAB_KEEP=1  keep each run's initramfs next to its logs
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lab import KERNEL_LABELS, Kernel, Lab, Nic, Run, build_python
from lab._build import BUILDABLE, ShimBuild, kernel_headers, write_shim
from lab.scenarios import SCENARIOS, netpoll

KERNEL_DIR = Path(__file__).parent
PROJECT_ROOT = KERNEL_DIR.parents[1]
PYTHON_KERNEL = "debian12-6.12"

_MEASURED: list[tuple[str, float]] = []


def _cache() -> Path:
    return Path(os.environ.get("NETCONSOLE_LAB_CACHE", KERNEL_DIR / ".cache")).resolve()


def _labels() -> list[str]:
    wanted = os.environ.get("NETCONSOLE_LAB_KERNELS")
    if not wanted:
        return list(KERNEL_LABELS)
    return [label.strip() for label in wanted.split(",") if label.strip()]


def _timed(what: str, started: float) -> None:
    _MEASURED.append((what, time.monotonic() - started))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    the_lab = Lab(cache=_cache(), work=tmp_path_factory.mktemp("kernel-lab"))
    yield the_lab
    _MEASURED.extend(("boot " + name, s) for name, s in the_lab.timings)


@pytest.fixture(scope="session", params=_labels())
def kernel(request: pytest.FixtureRequest, lab: Lab) -> Kernel:
    started = time.monotonic()
    k = lab.kernel(request.param)
    _timed(f"kernel {k.release} ready ({k.download_bytes / 1e6:.0f} MB of .deb)", started)
    return k


def _scenario(lab: Lab, kernel: Kernel, name: str, *, timeout: float = 120.0,
              extra_images: Sequence[Path] = ()) -> Run:
    steps, ports = SCENARIOS[name]
    return lab.run(kernel, name, steps, ports=ports, timeout=timeout, extra_images=extra_images)


@pytest.fixture(scope="session")
def modparam_run(lab: Lab, kernel: Kernel) -> Run:
    return _scenario(lab, kernel, "modparam")


@pytest.fixture(scope="session")
def configfs_run(lab: Lab, kernel: Kernel) -> Run:
    return _scenario(lab, kernel, "configfs")


@pytest.fixture(scope="session")
def burst_run(lab: Lab, kernel: Kernel) -> Run:
    return _scenario(lab, kernel, "burst", timeout=240.0)


@pytest.fixture(scope="session")
def python_run(lab: Lab) -> Run:
    k = lab.kernel(PYTHON_KERNEL)
    started = time.monotonic()
    images = build_python(lab.cache, PROJECT_ROOT)
    _timed(f"python layers ready ({images.download_bytes / 1e6:.0f} MB of .deb)", started)
    return _scenario(lab, k, "python", extra_images=images.parts, timeout=300.0)


@pytest.fixture(scope="session")
def kernel_612(lab: Lab) -> Kernel:
    """Debian 12's 6.12 for the scenarios that need module builds (its headers build
    here; 7.x's need gcc-16): only when NETCONSOLE_LAB_KERNELS selects it."""
    if PYTHON_KERNEL not in _labels():
        pytest.skip(f"NETCONSOLE_LAB_KERNELS leaves out {PYTHON_KERNEL}")
    return lab.kernel(PYTHON_KERNEL)


@pytest.fixture(scope="session")
def shim_build(lab: Lab, kernel_612: Kernel) -> ShimBuild:
    """np_shim written and built on the host by `netconsole shim write --build`,
    against Debian's headers of the lab's exact 6.12 kernel."""
    started = time.monotonic()
    kdir = kernel_headers(kernel_612, lab.cache)
    built = write_shim(kdir, lab.work / "np_shim")
    _timed(f"np_shim built against {kdir.name}", started)
    return built


_NETPOLL_RUNS: dict[str, Run] = {}


def _netpoll_boot(request: pytest.FixtureRequest, lab: Lab, kernel: Kernel) -> Run:
    """The `netpoll` scenario, once per kernel (HSR; on 6.12 np_shim too, with an e1000
    as eth1), shared by test_qemu_netpoll.py and test_qemu_np_shim.py."""
    if kernel.release in _NETPOLL_RUNS:
        return _NETPOLL_RUNS[kernel.release]
    images = build_python(lab.cache, PROJECT_ROOT)
    shim: dict[str, bytes] | None = None
    nics: tuple[Nic, ...] = (Nic(),)
    if kernel.label in BUILDABLE:
        built = request.getfixturevalue("shim_build")
        assert isinstance(built, ShimBuild)
        shim = built.files
        nics = (Nic(), Nic(model="e1000"))
    _, ports = SCENARIOS["netpoll"]
    run = lab.run(kernel, "netpoll", functools.partial(netpoll, shim=shim), ports=ports,
                  nics=nics, extra_images=images.parts, timeout=360.0)
    _NETPOLL_RUNS[kernel.release] = run
    return run


@pytest.fixture(scope="session")
def netpoll_run(request: pytest.FixtureRequest, lab: Lab, kernel: Kernel) -> Run:
    return _netpoll_boot(request, lab, kernel)


@pytest.fixture(scope="session")
def shim_run(request: pytest.FixtureRequest, lab: Lab, kernel_612: Kernel) -> Run:
    """The 6.12 `netpoll` boot, for the np_shim tests (7.x headers cannot be built here)."""
    return _netpoll_boot(request, lab, kernel_612)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MEASURED:
        terminalreporter.section("kernel lab timings")
        for what, seconds in _MEASURED:
            terminalreporter.write_line(f"{seconds:7.1f} s  {what}")
