"""Partial, empty and garbage snapshots: unknown findings, never a crash."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from netconsole.doctor import Severity, diagnose
from netconsole.host.view import HostView

FILES = ("proc/version", "proc/sys/kernel/osrelease", "proc/cmdline", "proc/config.gz",
         "boot/config-4.4.0", "proc/modules", "proc/consoles", "proc/sys/kernel/printk",
         "proc/kallsyms", "dmesg.txt", "commands.txt", "ip/link.json", "ip/addr.json",
         "ip/route.json", "ip/neigh.json", "ip/link.txt", "ip/route.txt", "ip/neigh.txt",
         "ethtool/eth0.txt", "etc/modprobe.d/x.conf", "sys/class/net/eth0/flags",
         "sys/class/net/eth0/device/driver", "sys/class/net/eth0/master",
         "sys/module/netconsole/parameters/oops_only",
         "sys/kernel/config/netconsole/t/enabled", "sys/kernel/config/netconsole/t/remote_ip",
         "sys/kernel/config/netconsole/t/dev_name", "sys/kernel/config/netconsole/t/remote_mac")


def test_diagnose_empty_directory(tmp_path: Path) -> None:
    report = diagnose(HostView(tmp_path, live=False))
    sev = {f.code: f.severity for f in report.findings}
    assert sev["kernel-version-unknown"] is Severity.UNKNOWN
    assert sev["kernel-config-unknown"] is Severity.UNKNOWN
    assert sev["dmesg-unknown"] is Severity.UNKNOWN
    assert "doctor-check-failed" not in sev


def test_diagnose_only_dmesg(tmp_path: Path) -> None:
    (tmp_path / "dmesg.txt").write_text(
        "netpoll: netconsole: local port 6665\n"
        "netpoll: netconsole: interface 'ens5'\n"
        "netpoll: netconsole: remote IPv4 address 10.0.0.5\n"
        "netpoll: netconsole: ens5 doesn't support polling, aborting\n"
        "netconsole: cleaning up\n")
    report = diagnose(HostView(tmp_path, live=False))
    assert not report.works
    assert "netpoll-unsupported" in report.codes()
    assert "doctor-check-failed" not in report.codes()


def test_diagnose_text_ip_output(tmp_path: Path) -> None:
    (tmp_path / "ip").mkdir()
    (tmp_path / "ip" / "addr.txt").write_text(
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n"
        "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
        "    inet 127.0.0.1/8 scope host lo\n"
        "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP\n"
        "    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff\n"
        "    inet 10.0.0.2/24 brd 10.0.0.255 scope global eth0\n")
    (tmp_path / "ip" / "route.txt").write_text(
        "default via 10.0.0.1 dev eth0 proto dhcp metric 100\n"
        "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2\n")
    (tmp_path / "ip" / "neigh.txt").write_text(
        "10.0.0.1 dev eth0 lladdr 52:54:00:00:00:01 REACHABLE\n")
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cmdline").write_text("ro netconsole=@/eth0,6666@192.168.9.9/\n")
    report = diagnose(HostView(tmp_path, live=False))
    (f,) = report.by_code("mac-broadcast-via-gateway")
    assert "52:54:00:00:00:01" in f.remedies[0].text


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.sampled_from(FILES), st.binary(max_size=200), max_size=12))
def test_diagnose_garbage_never_crashes(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for rel, data in files.items():
            path = Path(tmp, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        report = diagnose(HostView(tmp, live=False))
        assert "doctor-check-failed" not in report.codes(), [
            f.cause for f in report.findings if f.code == "doctor-check-failed"]
        assert report.exit_code in (0, 1)


def test_diagnose_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    target = tmp_path / "proc" / "cmdline"
    target.mkdir()  # a directory where a file is expected
    os.symlink("/nonexistent", tmp_path / "dmesg.txt")
    report = diagnose(HostView(tmp_path, live=False))
    assert "doctor-check-failed" not in report.codes()


def test_diagnose_minimal_hand_written_snapshot_from_docs(tmp_path: Path) -> None:
    """The five-file example of docs/doctor.md, written the way a person would."""
    files = {
        "proc/sys/kernel/osrelease": "4.4.0-1072-aws\n",
        "sys/class/net/ens5/device/driver": "ena\n",
        "sys/module/ena/version": "2.0.1K\n",
        "ip/link.txt": "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n"
                       "    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n"
                       "2: ens5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq state UP\n"
                       "    link/ether 0a:3c:8e:12:5b:7e brd ff:ff:ff:ff:ff:ff\n",
        "dmesg.txt": "[  812.338410] netpoll: netconsole: local port 6665\n"
                     "[  812.338415] netpoll: netconsole: interface 'ens5'\n"
                     "[  812.338417] netpoll: netconsole: remote IPv4 address 172.31.20.15\n"
                     "[  812.338421] netpoll: netconsole: ens5 doesn't support polling, "
                     "aborting\n[  812.338422] netconsole: cleaning up\n",
    }
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    report = diagnose(HostView(tmp_path, live=False))
    (f,) = report.by_code("netpoll-unsupported")
    assert "ena 2.0.1K" in f.title and "4.4.0-1072-aws" in f.title
    assert report.exit_code == 1


def test_diagnose_modprobe_without_dmesg_uses_default_route_interface(tmp_path: Path) -> None:
    """No target anywhere: the default route's interface is still checked for netpoll."""
    (tmp_path / "proc" / "sys" / "kernel").mkdir(parents=True)
    (tmp_path / "proc" / "sys" / "kernel" / "osrelease").write_text("4.4.0-1072-aws\n")
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / "config-4.4.0-1072-aws").write_text("CONFIG_NETCONSOLE=m\n")
    drv = tmp_path / "sys" / "class" / "net" / "ens5" / "device"
    drv.mkdir(parents=True)
    (drv / "driver").write_text("../../../../bus/pci/drivers/ena\n")
    (tmp_path / "sys" / "module" / "ena").mkdir(parents=True)
    (tmp_path / "sys" / "module" / "ena" / "version").write_text("2.0.1K\n")
    (tmp_path / "ip").mkdir()
    (tmp_path / "ip" / "route.txt").write_text("default via 172.31.16.1 dev ens5\n")
    report = diagnose(HostView(tmp_path, live=False))
    assert {"no-target", "netpoll-unsupported"} <= set(report.codes())


def test_an_interface_name_with_a_nul_byte_is_an_unknown_interface(tmp_path: Path) -> None:
    """Found by the property above: a NUL in configfs's dev_name reached a path."""
    target = tmp_path / "sys" / "kernel" / "config" / "netconsole" / "t"
    target.mkdir(parents=True)
    (target / "dev_name").write_bytes(b"\x00")
    (target / "remote_ip").write_bytes(b"")
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "version").write_bytes(b"")
    report = diagnose(HostView(tmp_path, live=False))
    assert "doctor-check-failed" not in report.codes()
