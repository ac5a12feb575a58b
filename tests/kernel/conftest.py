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

import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lab import KERNEL_LABELS, Kernel, Lab, Run, build_python
from lab.scenarios import SCENARIOS

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _MEASURED:
        terminalreporter.section("kernel lab timings")
        for what, seconds in _MEASURED:
            terminalreporter.write_line(f"{seconds:7.1f} s  {what}")
