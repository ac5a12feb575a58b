"""Each check, one variation of the healthy 6.x snapshot at a time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from netconsole.doctor import Report, Severity, diagnose
from netconsole.host.view import HostView

HEALTHY = Path(__file__).parents[2] / "data" / "snapshots" / "healthy-6x-configfs"
T = "sys/kernel/config/netconsole/fleet"
LINKS = [{"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"]},
         {"ifindex": 2, "ifname": "enp1s0", "flags": ["BROADCAST", "MULTICAST", "UP",
                                                      "LOWER_UP"],
          "address": "52:54:00:12:34:56"}]


def variant(tmp_path: Path, edits: dict[str, str | None]) -> Report:
    root = tmp_path / "snap"
    shutil.copytree(HEALTHY, root)
    for rel, text in edits.items():
        path = root / rel
        if text is None:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return diagnose(HostView(root, live=False))


def severity(report: Report, code: str) -> Severity:
    found = report.by_code(code)
    assert found, f"{code} not in {report.codes()}"
    return found[0].severity


CMDLINE = "proc/cmdline"


@pytest.mark.parametrize(
    ("edits", "code", "sev"),
    [
        ({CMDLINE: "ro netconsole=@/enp1s0,6666@10.10.0.5/\n"}, "param-bare-on-module",
         Severity.ERROR),
        ({CMDLINE: "ro netconsole.netconsole=" + ";".join(["@/enp1s0,6666@10.10.0.5/"] * 12)
          + "\n"}, "param-too-long", Severity.ERROR),
        ({CMDLINE: "ro netconsole.netconsole=r@/enp1s0,6666@10.10.0.5/\n"},
         "param-release-needs-extended", Severity.ERROR),
        ({CMDLINE: "ro netconsole.netconsole=@10.10.0.21/enp1s0,6666@fd00::5/\n"},
         "param-family-mismatch", Severity.ERROR),
        ({"sys/module/netconsole/parameters/oops_only": "Y\n"}, "oops-only", Severity.WARNING),
        ({f"{T}/remote_mac": "52:54:00:00:00:99\n"}, "mac-mismatch", Severity.ERROR),
        ({f"{T}/dev_name": "enp9s0\n"}, "iface-missing", Severity.ERROR),
        ({f"{T}/enabled": "0\n"}, "configfs-target-disabled", Severity.ERROR),
        ({f"{T}/extended": "0\n"}, "configfs-extradata-on-basic", Severity.WARNING),
        ({f"{T}/extended": "0\n", f"{T}/release": "1\n"}, "configfs-release-needs-extended",
         Severity.ERROR),
        ({f"{T}/transmit_errors": "5\n"}, "configfs-transmit-errors", Severity.WARNING),
        ({f"{T}/local_ip": "0.0.0.0\n", "ip/addr.json": "[]\n"}, "iface-no-address",
         Severity.ERROR),
        ({f"{T}/local_ip": "10.10.0.99\n"}, "local-ip-not-on-iface", Severity.WARNING),
        ({"etc/modprobe.d/off.conf": "install netconsole /bin/true\n"},
         "modprobe-install-disabled", Severity.ERROR),
        ({"etc/modprobe.d/bl.conf": "blacklist netconsole\n"}, "modprobe-blacklist",
         Severity.INFO),
        ({"proc/consoles": "ttyS0                -W- (EC   a)    4:64\n"},
         "console-not-registered", Severity.ERROR),
        ({"proc/consoles": "netcon_ext0          -W- (       )\n"}, "console-not-enabled",
         Severity.ERROR),
        ({"proc/sys/kernel/printk": None}, "console-loglevel-unknown", Severity.UNKNOWN),
        ({CMDLINE: "ro ignore_loglevel\n", "proc/sys/kernel/printk": "1 4 1 7\n"},
         "console-ignore-loglevel", Severity.INFO),
        ({"boot/config-6.12.117+deb12-amd64": "# CONFIG_NETCONSOLE is not set\n",
          "proc/modules": "", "sys/module/netconsole": None},
         "kernel-no-netconsole", Severity.ERROR),
        ({"boot/config-6.12.117+deb12-amd64": "CONFIG_NETCONSOLE=m\n"}, "kernel-no-dynamic",
         Severity.INFO),
        ({"ip/link.json": json.dumps([LINKS[0], {**LINKS[1], "flags": ["BROADCAST"]}])},
         "iface-down", Severity.ERROR),
        ({"ip/link.json": json.dumps([LINKS[0], {**LINKS[1], "flags": ["UP", "NO-CARRIER"]}])},
         "iface-no-carrier", Severity.ERROR),
        ({"ip/link.json": json.dumps([LINKS[0], {**LINKS[1],
                                                 "linkinfo": {"info_kind": "netkit"}}])},
         "netpoll-disabled", Severity.ERROR),
        ({"ip/neigh.json": "[]\n"}, "mac-unverified", Severity.UNKNOWN),
        ({"ip/route.json": "[]\n"}, "route-none", Severity.WARNING),
        ({"ip/route.json": None}, "route-unknown", Severity.UNKNOWN),
        ({"dmesg.txt": "[ 9.0] netconsole: network logging stopped on interface enp1s0 as it "
          "unregistered\n"}, "dmesg-logging-stopped", Severity.WARNING),
        ({"dmesg.txt": "netpoll: netconsole: timeout waiting for carrier\n"},
         "dmesg-carrier-timeout", Severity.WARNING),
        ({"dmesg.txt": None}, "dmesg-unknown", Severity.UNKNOWN),
    ],
)
def test_check_variant(tmp_path: Path, edits: dict[str, str | None], code: str,
                       sev: Severity) -> None:
    report = variant(tmp_path, edits)
    assert severity(report, code) is sev
    assert "doctor-check-failed" not in report.codes()
    assert report.works == (sev is not Severity.ERROR and not any(
        f.severity is Severity.ERROR for f in report.findings))


def test_check_mac_mismatch_gives_configfs_commands(tmp_path: Path) -> None:
    report = variant(tmp_path, {f"{T}/remote_mac": "52:54:00:00:00:99\n"})
    (f,) = report.by_code("mac-mismatch")
    assert f.remedies[0].commands == (
        "echo 0 | sudo tee /sys/kernel/config/netconsole/fleet/enabled",
        "echo 52:54:00:ab:cd:ef | sudo tee /sys/kernel/config/netconsole/fleet/remote_mac",
        "echo 1 | sudo tee /sys/kernel/config/netconsole/fleet/enabled",
    )


def test_check_netpoll_unknown_for_in_tree_driver_on_old_kernel(tmp_path: Path) -> None:
    report = variant(tmp_path, {
        "proc/sys/kernel/osrelease": "4.9.0-8-amd64\n", "proc/version": None,
        "sys/class/net/enp1s0/device/driver": "mlx5_core\n"})
    assert severity(report, "netpoll-unknown") is Severity.UNKNOWN


def test_check_netpoll_backport_detected(tmp_path: Path) -> None:
    report = variant(tmp_path, {
        "proc/sys/kernel/osrelease": "4.12.14-122-default\n", "proc/version": None,
        "sys/class/net/enp1s0/device/driver": "ena\n", "sys/module/ena/version": "2.0.2K\n",
        "proc/kallsyms": "ffffffff8231a0b8 r __ksymtab_netpoll_poll_dev\n"})
    assert severity(report, "netpoll-ok") is Severity.OK


def test_check_superseded_failure_is_a_warning(tmp_path: Path) -> None:
    report = variant(tmp_path, {"dmesg.txt": (
        "[1.0] netpoll: netconsole: no IP address for enp1s0, aborting\n"
        "[1.1] netconsole: cleaning up\n"
        "[9.0] netconsole: network logging started\n")})
    assert severity(report, "dmesg-no-ip") is Severity.WARNING
    assert report.works
