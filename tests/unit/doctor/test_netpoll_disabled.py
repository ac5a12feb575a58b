"""The seed's failure made by a real kernel (issue 18): netconsole pointed at an HSR
device, which sets IFF_DISABLE_NETPOLL. The snapshots were collected by
`netconsole doctor --collect` inside the kernel lab's guests (tests/data/lab-snapshots);
the doctor must name the cause, cite the kernel's lines, and give only the remedies
that apply to such a device: none of the < 4.19 ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from netconsole.doctor import Finding, Report, Severity, diagnose
from netconsole.host.view import open_root

LAB = Path(__file__).parents[2] / "data" / "lab-snapshots"
POLLING = "netpoll: netconsole: hsr0 doesn't support polling, aborting"


def run(name: str) -> Report:
    with open_root(LAB / name) as view:
        return diagnose(view, source=name)


def netpoll_finding(report: Report) -> Finding:
    (f,) = report.by_code("netpoll-disabled")
    return f


def words(f: Finding) -> str:
    return "\n".join([r.text for r in f.remedies] + [c for r in f.remedies for c in r.commands])


@pytest.mark.parametrize(("name", "target", "port"), [
    ("6.12-hsr-param.tar.gz", "dmesg0", 50136),
    ("6.12-hsr-configfs.tar.gz", "hsr", 56710),
    ("7.2-hsr-configfs.tar.gz", "hsr", 59243),
])
def test_hsr_names_the_cause_and_cites_the_kernel(name: str, target: str, port: int) -> None:
    report = run(name)
    f = netpoll_finding(report)
    assert f.severity is Severity.ERROR and f.target == target
    assert not report.works and report.exit_code == 1
    assert "IFF_DISABLE_NETPOLL" in f.title and "524" in f.title
    assert "HSR" in f.cause and "Unknown error 524" in f.cause
    cited = [e.text for e in f.evidence if e.path == "dmesg.txt"]
    assert POLLING in cited, f.evidence
    assert any(e.text.startswith("hsr0: <UP") for e in f.evidence)
    # no other finding claims the netpoll question
    assert "netpoll-unsupported" not in report.codes() and "netpoll-ok" not in report.codes()
    # the first remedy works over this very device: the real receiver, from userspace
    assert f.remedies[0].commands == (f"sudo netconsole forward 10.0.9.2:{port}",)


@pytest.mark.parametrize("name", ["6.12-hsr-param.tar.gz", "6.12-hsr-configfs.tar.gz",
                                  "7.2-hsr-configfs.tar.gz"])
def test_hsr_remedies_are_not_the_old_kernel_ones(name: str) -> None:
    f = netpoll_finding(run(name))
    text = words(f)
    for wrong in ("4.19 or", "upgrade", "Upgrade", "np_shim", "shim write", "insmod",
                  "ndo_poll_controller =", "amzn-drivers", "linux-headers", "bond/bridge master"):
        assert wrong not in text, (wrong, text)
    # the cause says why those do not apply
    assert "np_shim cannot help" in f.cause
    # the ports are named as what not to use, the other interface as what to use
    second = f.remedies[1]
    assert "dummy0, dummy1" in second.text and "EBUSY" in second.text
    assert "eth0" in second.text


def test_hsr_configfs_remedy_moves_the_target_in_configfs() -> None:
    f = netpoll_finding(run("6.12-hsr-configfs.tar.gz"))
    assert f.remedies[1].commands == (
        "echo eth0 | sudo tee /sys/kernel/config/netconsole/hsr/dev_name",
        "echo 1 | sudo tee /sys/kernel/config/netconsole/hsr/enabled")


def test_hsr_param_remedy_reloads_without_hsr0s_source_address() -> None:
    # the module is loaded (the failed target left it so): modprobe alone would do
    # nothing; 10.0.9.1 is hsr0's address, not eth0's
    f = netpoll_finding(run("6.12-hsr-param.tar.gz"))
    (cmd,) = f.remedies[1].commands
    assert cmd.startswith("sudo modprobe -r netconsole; sudo modprobe netconsole netconsole=")
    assert "/eth0,50136@10.0.9.2/" in cmd and "10.0.9.1" not in cmd
