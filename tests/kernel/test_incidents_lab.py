"""Incidents from a real kernel, received by the real `netconsole listen`.

The guest (6.12 and 7.x) loads netconsole with an extended target, starts a
`sleep` for the OOM killer to take (init, the lab's shell, never is), then:
sysrq `w` (blocked tasks: an operator's dump, no incident), sysrq `f` (the
kernel's own OOM killer run: an `invoked oom-killer` report ending in `Out of
memory: Killed process N (sleep)`), sysrq `l` (backtraces of all CPUs: no
incident), and finally sysrq `c`. What a person counts: one OOM kill and, on
6.12, one panic (7.x sends nothing of its panic, see test_qemu_crash.py).
"""

from __future__ import annotations

import re

import pytest
from lab import Kernel, Lab, Run
from lab._guest import Script
from lab.scenarios import nc_param

from netconsole.store import open_reader

pytestmark = pytest.mark.kernel


def incidents_scenario(s: Script, ports: list[int]) -> None:
    s.setup()
    s.insmod_netconsole(nc_param(ports[0], "+"))
    s.sh("sleep 1000 &", "echo 1 > /proc/sys/kernel/sysrq")
    s.kmsg("lab: sysrq w next")
    s.sh("echo w > /proc/sysrq-trigger")
    s.kmsg("lab: sysrq f next")
    s.sh("echo f > /proc/sysrq-trigger", "sleep 1")
    s.kmsg("lab: sysrq l next")
    s.sh("echo l > /proc/sysrq-trigger", "sleep 1")
    s.settle()
    s.crash()


@pytest.fixture(scope="module")
def incidents_run(lab: Lab, kernel: Kernel) -> Run:
    return lab.run(kernel, "incidents", incidents_scenario, ports=1, timeout=180, listen={})


def test_lab_oom_and_panic_become_one_incident_each(incidents_run: Run) -> None:
    run = incidents_run
    assert run.store is not None
    with open_reader(run.store) as reader:
        found = reader.incidents()
    kinds = [i.kind for i in found]
    console = b"\n".join(line.text for line in run.console.lines)
    killed = re.search(rb"Out of memory: Killed process (\d+) \(sleep\)", console)
    assert killed is not None, "the guest's OOM killer did not run"
    oom = found[0]
    assert oom.kind == "oom" and oom.state == "closed" and not oom.truncated
    assert oom.title == f"Out of memory: Killed process {int(killed[1])} (sleep)"
    assert "invoked oom-killer" in oom.text and "Mem-Info:" in oom.text
    assert oom.release == run.kernel.release or oom.release is None
    if run.kernel.major < 7:
        assert kinds == ["oom", "panic"]
        panic = found[1]
        assert panic.title == "Kernel panic - not syncing: sysrq triggered crash"
        assert panic.culprit is not None and panic.culprit.startswith("sysrq_handle_crash+")
        assert not panic.truncated
    else:
        assert kinds[0] == "oom" and set(kinds[1:]) <= {"panic"}
