"""np_shim (remedy 5 of the netpoll case) built, loaded and unloaded in a real 6.12
kernel (issue 18).

What this proves: `netconsole shim write --build` builds the shipped np_shim.c against
Debian's headers of the lab's exact 6.12 kernel; the module loads in the guest on its
virtio_net NIC (through `netconsole shim write --load --force`: 6.12 does not need it),
netconsole on that NIC still sends every record while it is loaded, after it is
unloaded and after it is loaded again, and unloading restores the device (the second
insmod succeeds: np_shim refuses a device whose ops already have the hook). It also
refuses a NIC that has the hook (e1000, `e1000_netpoll`), and loads on an HSR device
without changing anything (IFF_DISABLE_NETPOLL is checked before the hook).

What it cannot prove: that np_shim makes netconsole work on a < 4.19 kernel with a
driver lacking the hook (the ENA 2.x case): no such kernel boots here, and on 6.12
netpoll never required the hook. See docs/np_shim.md.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from lab import Kernel, Run, compare, decode_port
from lab._build import ShimBuild
from lab.scenarios import END_MARK, RESHIM_RECORDS, SHIM_RECORDS, UNSHIM_RECORDS

pytestmark = pytest.mark.kernel

OK = 2
LOADED = b"np_shim: eth0 has an empty ndo_poll_controller now"


def test_np_shim_builds_against_debians_612_headers(shim_build: ShimBuild,
                                                    kernel_612: Kernel) -> None:
    assert shim_build.returncode == 0
    assert re.search(rf"built .*np_shim\.ko against .*linux-headers-"
                     rf"{re.escape(kernel_612.release)}", shim_build.output), shim_build.output
    ko = shim_build.files["np_shim.ko"]
    assert ko.startswith(b"\x7fELF")
    # insmod checks vermagic against the running kernel
    assert f"\0vermagic={kernel_612.release} ".encode() in ko
    assert b"\0parm=ifname:" in ko
    readme = shim_build.files["README"].decode()
    assert "ifname=eth0" in readme and "DOES NOT APPLY" in readme


def test_np_shim_command_refuses_on_a_new_kernel_without_force(shim_build: ShimBuild) -> None:
    """The same command without --force: the host and the headers are >= 4.19."""
    argv = [a for a in shim_build.argv if a not in ("--force", "--build")]
    argv[argv.index(str(shim_build.directory))] = str(shim_build.directory) + "-refused"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("shim: np_shim does not apply: kernel ") and "4.19 or newer" in line
    assert "Traceback" not in proc.stderr and sys.executable


def test_np_shim_loads_on_the_guests_nic(shim_run: Run) -> None:
    run = shim_run
    assert run.rcs["py.shim.load"] == 0, run.boot.lab_text[-4000:]
    said = run.lab_lines(r"^shim: loading /lab/np_shim/np_shim\.ko: eth0 \(virtio_net\) gets "
                         r"a copy of its net_device_ops with an empty ndo_poll_controller")
    done = run.lab_lines(r"^shim: loaded: eth0 has an empty ndo_poll_controller now")
    text = run.boot.lab_text
    assert said and done and text.index(said[0]) < text.index(done[0])
    assert run.lab_lines(r"^shim: eth0 \(virtio_net\) has no ndo_poll_controller")
    assert LOADED in [line.text for line in run.console.lines]
    assert run.lab_lines(r"^LAB: with np_shim: [1-9]\d* in kallsyms")


def test_netconsole_sends_every_record_with_and_after_np_shim(shim_run: Run) -> None:
    run = shim_run
    assert run.rcs["ok.enabled=1"] == 0
    decoded = decode_port(run.datagrams, run.ports[OK])
    assert decoded.unexpected == []
    got = [r.text for r in decoded.records]
    for text in (*SHIM_RECORDS, *UNSHIM_RECORDS, *RESHIM_RECORDS):
        assert got.count(text.encode()) == 1, (text, got)
    # everything the kernel printed while the target was enabled, np_shim loaded,
    # unloaded and loaded again (then the target is disabled for the last rmmod)
    console = run.console
    start = console.first(SHIM_RECORDS[0].encode()).ts_usec
    end = console.first(RESHIM_RECORDS[-1].encode()).ts_usec
    window = [line for line in console.lines if start <= line.ts_usec <= end]
    assert LOADED in [line.text for line in window]
    result = compare(window, decoded.records)
    assert not result.missing, result.report()
    assert got[-1] == END_MARK.encode()  # enabled again after the last rmmod


def test_unloading_np_shim_restores_the_device(shim_run: Run) -> None:
    run = shim_run
    assert run.rcs["shim.rmmod"] == 0
    assert run.lab_lines(r"^LAB: after rmmod: 0$")
    # np_shim refuses a device whose net_device_ops have a poll controller (EEXIST):
    # loading it again works only because unloading put the original ops back
    assert run.rcs["shim.again"] == 0
    assert [line.text for line in run.console.lines].count(LOADED) == 2
    assert run.rcs["shim.rmmod2"] == 0


def test_np_shim_refuses_a_nic_that_has_the_hook(shim_run: Run) -> None:
    run = shim_run
    assert run.rcs["py.shim.eth1"] == 1
    assert run.lab_lines(r"eth1 \(e1000\) already has ndo_poll_controller: kallsyms lists "
                         r"e1000_netpoll")
    assert run.rcs["shim.eth1.insmod"] != 0
    assert run.lab_lines(r"insmod: can't insert '/lab/np_shim/np_shim\.ko': File exists")
    assert b"np_shim: eth1 already has ndo_poll_controller" in [
        line.text for line in run.console.lines]


def test_np_shim_cannot_help_an_hsr_device(shim_run: Run) -> None:
    run = shim_run
    assert run.rcs["shim.hsr0"] == 0  # HSR has no poll controller: the module loads ...
    assert run.rcs["hsr.enabled.shim"] == 1  # ... and netpoll still refuses hsr0
    assert run.lab_lines(r"^LAB: enable with np_shim stderr: sh: write error: "
                         r"Unknown error 524$")
    assert run.rcs["shim.hsr0.rmmod"] == 0
