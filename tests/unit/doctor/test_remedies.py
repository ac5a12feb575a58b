"""Remedies name the failing target's own values and the host's own distribution,
and `--target` strings are checked like the command line (issues 13 and 18)."""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import pytest

from netconsole.doctor import Finding, Report, diagnose
from netconsole.doctor.render import to_dict
from netconsole.host.view import HostView

SNAPSHOTS = Path(__file__).parents[2] / "data" / "snapshots"
ROOT = Path(__file__).parents[3]
ENA = "aws-4.4-ena-2.0.1K"
HEALTHY = "healthy-6x-configfs"
FLEET = "sys/kernel/config/netconsole/fleet"

OS = {
    "debian": 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n',
    "ubuntu": 'ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n',
    "rocky": 'ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.9"\n',
    "fedora": 'ID=fedora\nVERSION_ID=40\n',
    "amzn2": 'ID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2"\n',
    "unknown": None,
}

# The ENA case, but the failed attempt used other ports, a source IP and a MAC.
ENA_514 = {"dmesg.txt": (
    "[  812.338410] netpoll: netconsole: local port 7000\n"
    "[  812.338414] netpoll: netconsole: local IPv4 address 172.31.21.88\n"
    "[  812.338415] netpoll: netconsole: interface 'ens5'\n"
    "[  812.338416] netpoll: netconsole: remote port 514\n"
    "[  812.338417] netpoll: netconsole: remote IPv4 address 172.31.20.15\n"
    "[  812.338418] netpoll: netconsole: remote ethernet address 0a:11:22:33:44:55\n"
    "[  812.338421] netpoll: netconsole: ens5 doesn't support polling, aborting\n"
    "[  812.338422] netconsole: cleaning up\n")}


def variant(tmp_path: Path, base: str, edits: Mapping[str, str | None],
            targets: list[str] | None = None) -> Report:
    root = tmp_path / "snap"
    shutil.copytree(SNAPSHOTS / base, root)
    for rel, text in edits.items():
        path = root / rel
        if text is None:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return diagnose(HostView(root, live=False), targets=targets)


def commands(f: Finding) -> list[str]:
    return [c for r in f.remedies for c in r.commands]


def all_text(f: Finding) -> str:
    return "\n".join([r.text for r in f.remedies] + commands(f))


# --- `--target` strings that do not parse ------------------------------------------


def test_target_argument_that_does_not_parse_is_reported(tmp_path: Path) -> None:
    report = variant(tmp_path, HEALTHY, {}, targets=["@/enp1s0,6666@10.10.0.5"])
    (f,) = report.by_code("param-missing-slash")
    assert f.target == "@/enp1s0,6666@10.10.0.5"
    assert [e.path for e in f.evidence] == ["--target"]
    assert "--target" in f.title
    assert f.remedies[0].text == "Write the target as '@/enp1s0,6666@10.10.0.5/'"
    assert f.remedies[0].commands == ("netconsole doctor --target '@/enp1s0,6666@10.10.0.5/'",)
    assert not report.works


def test_target_argument_that_does_not_parse_does_not_fall_back_to_dmesg(
        tmp_path: Path) -> None:
    report = variant(tmp_path, ENA, {}, targets=["junk"])
    assert any(c.startswith("param-") and f.target == "junk"
               for c, f in ((f.code, f) for f in report.findings))
    assert "dmesg0" not in {f.target for f in report.findings}
    assert "no-target" not in report.codes()


def test_target_argument_too_long_is_reported(tmp_path: Path) -> None:
    value = ";".join(["@/enp1s0,6666@10.10.0.5/"] * 12)
    report = variant(tmp_path, HEALTHY, {}, targets=[value])
    (f,) = report.by_code("param-too-long")
    assert f.evidence[0].path == "--target"


def test_valid_target_argument_keeps_its_name(tmp_path: Path) -> None:
    report = variant(tmp_path, HEALTHY, {}, targets=["junk", "@/enp9s0,6666@10.10.0.5/"])
    assert report.by_code("iface-missing")[0].target == "argument1"
    assert not [f for f in report.findings if f.code.startswith("param-")
                and f.target != "junk"]


# --- the target's own values ---------------------------------------------------------


def test_netpoll_remedies_use_the_failing_targets_ports_address_and_mac(
        tmp_path: Path) -> None:
    report = variant(tmp_path, ENA, ENA_514)
    (f,) = report.by_code("netpoll-unsupported")
    cmds = commands(f)
    assert not any("6666" in c or "RECEIVER" in c for c in cmds), cmds
    params = [c for c in cmds if "netconsole=" in c]
    assert params, cmds
    for c in params:
        assert "netconsole=7000@172.31.21.88/ens5,514@172.31.20.15/0a:11:22:33:44:55" in c
    assert "sudo netconsole forward --local-port 7000 172.31.20.15:514" in cmds


def test_dmesg_target_is_the_last_attempt(tmp_path: Path) -> None:
    """Two attempts to the same receiver: the later one is what the user runs now."""
    first = ENA_514["dmesg.txt"].replace("7000", "6665").replace("514", "6666")
    report = variant(tmp_path, ENA, {"dmesg.txt": first + ENA_514["dmesg.txt"]})
    (f,) = report.by_code("netpoll-unsupported")
    assert "sudo netconsole forward --local-port 7000 172.31.20.15:514" in commands(f)


def test_netpoll_unknown_try_command_uses_the_target(tmp_path: Path) -> None:
    report = variant(tmp_path, HEALTHY, {
        "proc/sys/kernel/osrelease": "4.9.0-8-amd64\n", "proc/version": None,
        "sys/class/net/enp1s0/device/driver": "mlx5_core\n", FLEET: None,
        "proc/cmdline": "ro netconsole.netconsole=+@10.10.0.21/enp1s0,514@10.10.0.5/\n"})
    (f,) = report.by_code("netpoll-unknown")
    assert "sudo modprobe -r netconsole; sudo modprobe netconsole "\
        "netconsole=+@10.10.0.21/enp1s0,514@10.10.0.5/" in commands(f), commands(f)
    assert not any("6666" in c for c in commands(f))


def test_enslaved_remedy_keeps_ports_and_flags(tmp_path: Path) -> None:
    report = variant(tmp_path, "bond-slave", {
        "proc/cmdline": "ro netconsole.netconsole=+7000@/eth0,514@10.20.0.5/\n"})
    (f,) = [f for f in report.by_code("iface-enslaved") if "cmdline0" in (f.target or "")]
    text = all_text(f)
    assert "netconsole.netconsole=+7000@/bond0,514@10.20.0.5/" in text, text
    assert "6666" not in text


def test_configfs_bad_mac_remedy_writes_remote_mac(tmp_path: Path) -> None:
    report = variant(tmp_path, HEALTHY, {f"{FLEET}/remote_mac": "zz:zz\n"})
    (f,) = report.by_code("configfs-bad-mac")
    cmds = commands(f)
    assert f"echo 52:54:00:ab:cd:ef | sudo tee /{FLEET}/remote_mac" in cmds, cmds
    assert not any("remote_ip" in c for c in cmds)


def test_configfs_family_mismatch_remedy_writes_local_ip(tmp_path: Path) -> None:
    report = variant(tmp_path, HEALTHY, {f"{FLEET}/local_ip": "fd00::21\n"})
    (f,) = report.by_code("configfs-family-mismatch")
    assert f"echo 10.10.0.21 | sudo tee /{FLEET}/local_ip" in commands(f), commands(f)


def test_logging_stopped_remedy_names_the_configfs_target(tmp_path: Path) -> None:
    report = variant(tmp_path, HEALTHY, {"dmesg.txt": (
        "[ 9.0] netconsole: network logging stopped on interface enp1s0 as it "
        "unregistered\n")})
    (f,) = report.by_code("dmesg-logging-stopped")
    assert commands(f) == [f"echo 1 | sudo tee /{FLEET}/enabled"]


# --- the distribution's own commands ----------------------------------------------------


BARE = {"proc/cmdline": "ro netconsole=@/enp1s0,514@10.10.0.5/\n",
        FLEET: None}


@pytest.mark.parametrize(("os_id", "must", "must_not"), [
    ("debian", ["sudo update-grub"], ["grubby", "grub2-mkconfig"]),
    ("ubuntu", ["sudo update-grub"], ["grubby"]),
    ("rocky", ["sudo grubby --update-kernel=ALL --remove-args=netconsole",
               "sudo grubby --update-kernel=ALL "
               "--args='netconsole.netconsole=@/enp1s0,514@10.10.0.5/'"],
     ["update-grub", "/etc/default/grub"]),
    ("amzn2", ["sudo grubby --update-kernel=ALL "
               "--args='netconsole.netconsole=@/enp1s0,514@10.10.0.5/'"], ["update-grub"]),
    ("unknown", ["/etc/default/grub", "grub2-mkconfig -o /boot/grub2/grub.cfg"], ["grubby"]),
])
def test_cmdline_fix_uses_the_distributions_boot_loader_tool(
        tmp_path: Path, os_id: str, must: list[str], must_not: list[str]) -> None:
    report = variant(tmp_path, HEALTHY, {**BARE, "etc/os-release": OS[os_id]})
    (f,) = report.by_code("param-bare-on-module")
    text = "\n".join(f.remedies[0].commands)
    for needle in must:
        assert needle in text, (needle, text)
    for needle in must_not:
        assert needle not in text, (needle, text)


@pytest.mark.parametrize(("os_id", "headers", "initramfs"), [
    ("ubuntu", "sudo apt-get install linux-headers-4.4.0-1072-aws", "sudo update-initramfs -u"),
    ("rocky", "sudo dnf install kernel-devel-4.4.0-1072-aws", "sudo dracut -f"),
    ("fedora", "sudo dnf install kernel-devel-4.4.0-1072-aws", "sudo dracut -f"),
    ("amzn2", "sudo yum install kernel-devel-4.4.0-1072-aws", "sudo dracut -f"),
])
def test_netpoll_remedies_use_the_distributions_packages(
        tmp_path: Path, os_id: str, headers: str, initramfs: str) -> None:
    report = variant(tmp_path, ENA, {"etc/os-release": OS[os_id]})
    (f,) = report.by_code("netpoll-unsupported")
    rebuild, shim = f.remedies[3], f.remedies[4]
    assert headers in rebuild.commands and headers in shim.commands, shim.commands
    assert any(initramfs in c for c in rebuild.commands), rebuild.commands
    other = "dracut" if initramfs.startswith("sudo update") else "update-initramfs"
    assert not any(other in c for c in commands(f))
    if os_id != "ubuntu":
        assert not any("apt-get" in c or "dpkg" in c for c in commands(f)), commands(f)


def test_netpoll_remedies_without_os_release_are_generic(tmp_path: Path) -> None:
    report = variant(tmp_path, ENA, {"etc/os-release": None})
    (f,) = report.by_code("netpoll-unsupported")
    cmds = commands(f)
    assert not any(re.search(r"\b(apt-get|dnf|yum|dpkg|update-initramfs|dracut)\b", c)
                   and not c.startswith("#") for c in cmds), cmds


# --- the np_shim module ships with the package -----------------------------------------


def test_np_shim_remedy_points_at_the_installed_source(tmp_path: Path) -> None:
    shim_dir = resources.files("netconsole") / "data" / "np_shim"
    assert (shim_dir / "np_shim.c").is_file() and (shim_dir / "Makefile").is_file()
    report = variant(tmp_path, ENA, {})
    (f,) = report.by_code("netpoll-unsupported")
    shim = f.remedies[4]
    assert "docs/doctor.md" not in shim.text
    assert str(shim_dir) in shim.text
    assert any(str(shim_dir) in c for c in shim.commands)
    # issue 18: the command that writes, builds (and loads) it for this device
    assert "netconsole shim write ~/np_shim --device ens5 --build" in shim.commands
    assert any(c.startswith("cd ~/np_shim && sudo insmod np_shim.ko ifname=ens5")
               for c in shim.commands), shim.commands
    rebuild = f.remedies[3]
    assert any("--ena-patch" in c for c in rebuild.commands), rebuild.commands
    assert "git checkout ena_linux_2.0.1   # the release this host runs" in rebuild.commands


def _doc_block(doc: str, lang: str, after: str) -> str:
    start = doc.index(after)
    m = re.compile(rf"```{lang}\n(.*?)```", re.S).search(doc, start)
    assert m is not None
    return m.group(1)


def test_np_shim_files_match_the_docs() -> None:
    doc = (ROOT / "docs" / "doctor.md").read_text()
    shim_dir = resources.files("netconsole") / "data" / "np_shim"
    assert _doc_block(doc, "c", "`np_shim.c`:") == (shim_dir / "np_shim.c").read_text()
    assert _doc_block(doc, "make", "`Makefile`:") == (shim_dir / "Makefile").read_text()


def test_np_shim_is_package_data() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r"^netconsole = \[(.*?)\]", text, re.M | re.S)
    assert m is not None and '"data/np_shim/*"' in m.group(1)


# --- facts -------------------------------------------------------------------------------


def test_summary_targets_are_structured() -> None:
    report = diagnose(HostView(SNAPSHOTS / "aws-ena-after-upgrade", live=False))
    data = to_dict(report)
    (t,) = data["facts"]["targets"]
    assert t["name"] == "modprobe.d#0" and t["origin"] == "modprobe.d"
    assert isinstance(t["remote_port"], int) and isinstance(t["local_port"], int)
    assert {"dev", "remote_ip", "local_ip", "remote_mac", "extended", "enabled"} <= set(t)
    assert dataclasses.is_dataclass(report.facts)
