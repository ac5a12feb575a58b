"""A WARNING followed ~80 ms later by a NULL-pointer Oops that panics, from a real 6.12
kernel, received by the real `netconsole listen` on a basic and an extended target.

labtrig.ko (tests/kernel/lab/modules, built against Debian's 6.12 headers) does, in
its init with `mode=warn_oops`: WARN(), msleep(80), a write through NULL. With
kernel.panic_on_oops=1 the Oops ends in `Kernel panic - not syncing: Fatal
exception`. A person counts two incidents: the WARNING, then the Oops (fatal). Both
receivers must say so: the basic target (plain text lines) and the extended one
(seq, timestamps, continuation flags) see the same two reports.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from lab import Kernel, Lab, Nic, Run
from lab._build import build_module, kernel_headers
from lab.scenarios import LABTRIG_DELAY_MS, warn_oops

from netconsole.store import StoredIncident, open_reader

pytestmark = pytest.mark.kernel

MODULES = Path(__file__).parent / "lab" / "modules"
BASIC, EXTENDED = 0, 1
WARN_TITLE_PART = "labtrig"


@pytest.fixture(scope="module")
def warn_oops_run(lab: Lab, kernel_612: Kernel) -> Run:
    kdir = kernel_headers(kernel_612, lab.cache)
    sources = {name: (MODULES / name).read_bytes() for name in ("labtrig.c", "Kbuild")}
    ko = build_module(kdir, "labtrig", sources, lab.cache)
    return lab.run(kernel_612, "warn_oops",
                   functools.partial(warn_oops, labtrig=ko.read_bytes()),
                   ports=2, timeout=180, listen={}, nics=(Nic(model="e1000"),))


def _by_port(run: Run) -> dict[int, list[StoredIncident]]:
    assert run.store is not None
    with open_reader(run.store) as reader:
        found = reader.incidents()
    out: dict[int, list[StoredIncident]] = {p: [] for p in run.ports}
    for inc in found:
        out[inc.sender.local_port].append(inc)
    return out


def _summary(incidents: list[StoredIncident]) -> list[tuple[str, str, bool]]:
    return [(i.kind, i.title, i.fatal) for i in incidents]


def test_guest_warned_then_oopsed_then_panicked(warn_oops_run: Run) -> None:
    run = warn_oops_run
    assert run.rcs["panic_on_oops"] == 0
    text = [line.text for line in run.console.lines]
    warn = next(i for i, t in enumerate(text) if t.startswith(b"WARNING: CPU:")
                and b"labtrig" in t)
    null = next(i for i, t in enumerate(text)
                if t.startswith(b"BUG: kernel NULL pointer dereference"))
    panic = next(i for i, t in enumerate(text)
                 if t.startswith(b"Kernel panic - not syncing: Fatal exception"))
    assert warn < null < panic
    gap = run.console.lines[null].ts_usec - run.console.lines[warn].ts_usec
    assert gap >= LABTRIG_DELAY_MS * 1000 * 0.9, gap
    assert b"labtrig: warning before the oops (delay_ms=80)" in text


def test_extended_target_two_incidents_warning_then_fatal_oops(warn_oops_run: Run) -> None:
    incidents = _by_port(warn_oops_run)[warn_oops_run.ports[EXTENDED]]
    kinds = [(i.kind, i.fatal) for i in incidents]
    assert kinds == [("warning", False), ("oops", True)], _summary(incidents)
    assert WARN_TITLE_PART in incidents[0].title
    assert "NULL pointer dereference" in incidents[1].title


def test_basic_target_same_incidents_as_extended(warn_oops_run: Run) -> None:
    """Basic mode has no seq and no continuation flags: one datagram per console line
    (`[    2.992928] ---[ end trace 0000000000000000 ]---`, then 85 ms later
    `[    3.077869] labtrig: writing through a NULL pointer now`, `[    3.078838] BUG:
    kernel NULL pointer dereference, ...`). The WARN's end-of-trace line must close it:
    the Oops is a report of its own, not folded into the WARNING."""
    by_port = _by_port(warn_oops_run)
    basic = by_port[warn_oops_run.ports[BASIC]]
    extended = by_port[warn_oops_run.ports[EXTENDED]]
    assert [(i.kind, i.fatal) for i in basic] == [("warning", False), ("oops", True)], \
        _summary(basic)
    assert [i.title for i in basic] == [i.title for i in extended]
