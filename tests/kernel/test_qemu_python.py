"""Our own tools inside the guest: Debian 12's CPython with the project installed.

The `python` scenario runs `python3 -m netconsole --version` and a small script
that writes `<5>hello from python` to /dev/kmsg; the kernel's netconsole
carries it to the host receiver. (`netconsole setup`, `send --via kmsg` and
`doctor --collect` in the guest come with those commands: add them as
`python_command` steps in lab.scenarios.python.)
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from lab import Run, compare, decode_port
from lab.scenarios import END_MARK, PY_HELLO

pytestmark = pytest.mark.kernel

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _project_version() -> str:
    data = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    version = data["project"]["version"]
    assert isinstance(version, str)
    return version


def test_python_runs_the_project_in_the_guest(python_run: Run) -> None:
    assert python_run.rcs["py.version"] == 0, python_run.boot.lab_text
    assert f"netconsole, version {_project_version()}" in python_run.boot.lab_text


def test_python_kmsg_record_reaches_the_host(python_run: Run) -> None:
    assert python_run.rcs["py.kmsg"] == 0, python_run.boot.lab_text
    decoded = decode_port(python_run.datagrams, python_run.ports[0])
    assert decoded.unexpected == []
    hello = [r for r in decoded.records if r.text == PY_HELLO]
    assert len(hello) == 1
    # `<5>` without a facility: /dev/kmsg makes it user.notice (prefix 13)
    assert (hello[0].facility, hello[0].level) == (1, 5)
    line = python_run.console.first(PY_HELLO)
    assert line.text == PY_HELLO and line.ts_usec == hello[0].ts_usec
    tail = [x for x in python_run.console.lines if x.ts_usec >= line.ts_usec
            and x.ts_usec <= python_run.console.first(END_MARK.encode()).ts_usec]
    result = compare(tail, decoded.records)
    assert not result.missing, result.report()
