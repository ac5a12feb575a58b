"""The doctor over every shipped snapshot: exact codes, severities and verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from netconsole.doctor import Report, Severity, diagnose
from netconsole.host.view import HostView

SNAPSHOTS = Path(__file__).parents[2] / "data" / "snapshots"


def run(name: str) -> Report:
    return diagnose(HostView(SNAPSHOTS / name, live=False), source=name)


def significant(report: Report) -> dict[str, str]:
    """code -> severity for everything but OK/INFO."""
    return {f.code: f.severity.value for f in report.findings
            if f.severity not in (Severity.OK, Severity.INFO)}


EXPECTED = {
    "aws-4.4-ena-2.0.1K": (1, {"netpoll-unsupported": "error",
                               "console-loglevel-low": "warning"}),
    "aws-ena-after-upgrade": (0, {}),
    "bond-slave": (1, {"iface-enslaved": "error", "configfs-target-disabled": "error"}),
    "gateway-no-mac": (1, {"mac-broadcast-via-gateway": "error"}),
    "low-loglevel": (0, {"console-loglevel-low": "warning"}),
    "bad-param": (1, {"param-missing-slash": "error"}),
    "healthy-6x-configfs": (0, {}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_diagnose_snapshot_codes_and_exit(name: str) -> None:
    report = run(name)
    exit_code, codes = EXPECTED[name]
    assert significant(report) == codes
    assert report.exit_code == exit_code


def test_diagnose_every_snapshot_is_tested() -> None:
    assert sorted(p.name for p in SNAPSHOTS.iterdir() if p.is_dir()) == sorted(EXPECTED)


def test_diagnose_ena_names_enotsupp_kernel_and_driver() -> None:
    report = run("aws-4.4-ena-2.0.1K")
    (f,) = report.by_code("netpoll-unsupported")
    text = f.title + " " + f.cause
    for needle in ("ENOTSUPP", "524", "Unknown error 524", "4.19", "4.4.0-1072-aws",
                   "ena 2.0.1K", "ndo_poll_controller"):
        assert needle in text, needle
    paths = {(e.path, e.line) for e in f.evidence}
    assert ("dmesg.txt", 10) in paths and ("dmesg.txt", 11) in paths
    assert ("/sys/module/ena/version", 1) in paths
    assert ("commands.txt", 2) in paths
    assert f.target == "dmesg0"


def test_diagnose_ena_remedies_in_order() -> None:
    (f,) = run("aws-4.4-ena-2.0.1K").by_code("netpoll-unsupported")
    texts = [r.text for r in f.remedies]
    assert len(texts) == 6
    assert texts[0].startswith("Upgrade to a kernel ≥ 4.19")
    assert texts[1].startswith("Build a newer netconsole/netpoll")
    assert texts[2].startswith("Downgrade the driver") and "Not recommended" in texts[2]
    assert not f.remedies[2].recommended
    assert texts[3].startswith("Rebuild ena with an empty ndo_poll_controller")
    assert texts[4].startswith("Patch the running kernel with a small module")
    assert "netconsole forward" in texts[5]
    assert f.remedies[5].commands == ("sudo netconsole forward 172.31.20.15:6666",)
    assert any("do-release-upgrade" in c for c in f.remedies[0].commands)  # Ubuntu host


def test_diagnose_ena_dmesg_lines_folded_into_the_finding() -> None:
    codes = run("aws-4.4-ena-2.0.1K").codes()
    assert "dmesg-no-polling" not in codes and "dmesg-cleaning-up" not in codes
    assert "user-unknown-error-524" not in codes


def test_diagnose_after_upgrade_netpoll_ok() -> None:
    report = run("aws-ena-after-upgrade")
    assert report.works
    assert {"netpoll-ok", "mac-ok", "console-registered"} <= set(report.codes())


def test_diagnose_gateway_gives_the_gateway_mac() -> None:
    (f,) = run("gateway-no-mac").by_code("mac-broadcast-via-gateway")
    assert "00:1b:21:aa:bb:01" in f.remedies[0].text
    assert f.remedies[0].commands == (
        "# in /etc/modprobe.d/netconsole.conf: options netconsole "
        "netconsole=6665@/eno1,6666@192.168.50.10/00:1b:21:aa:bb:01",)


def test_diagnose_slave_points_at_master() -> None:
    (f,) = run("bond-slave").by_code("iface-enslaved")
    assert "bond0" in f.title and "EBUSY" in f.cause
    assert any(e.text.endswith("is a slave device, aborting") for e in f.evidence)


def test_diagnose_bad_param_quotes_the_kernel_message() -> None:
    (f,) = run("bad-param").by_code("param-missing-slash")
    assert "netpoll: netconsole: couldn't parse config at '10.0.0.2'!" in f.cause
    assert "Operation not permitted" in f.cause
    assert f.remedies[0].text == "Write the target as '6665@/eth0,6666@10.0.0.2/'"
    assert {e.line for e in f.evidence if e.path == "dmesg.txt"} == {1, 2}


def test_diagnose_low_loglevel_explains_quiet_and_loglevel() -> None:
    (f,) = run("low-loglevel").by_code("console-loglevel-low")
    assert "loglevel=3" in {e.text for e in f.evidence}
    assert f.remedies[0].commands == ("sudo dmesg -n 8",)


def test_diagnose_extra_target_argument() -> None:
    report = diagnose(HostView(SNAPSHOTS / "healthy-6x-configfs", live=False),
                      targets=["@/enp9s0,6666@10.10.0.5/"])
    assert report.by_code("iface-missing")[0].target == "argument0"
