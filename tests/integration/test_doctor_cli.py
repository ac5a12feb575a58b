"""`netconsole doctor` end to end: exit codes, --json, --collect on this machine,
and collect -> --root round trips."""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from netconsole.cli import main

SNAPSHOTS = Path(__file__).parents[1] / "data" / "snapshots"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["doctor", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("name", "code"),
    [("aws-4.4-ena-2.0.1K", 1), ("aws-ena-after-upgrade", 0), ("bond-slave", 1),
     ("gateway-no-mac", 1), ("low-loglevel", 0), ("bad-param", 1),
     ("healthy-6x-configfs", 0)],
)
def test_doctor_exit_code_per_snapshot(name: str, code: int) -> None:
    exit_code, output = invoke("--root", str(SNAPSHOTS / name), "--json")
    assert exit_code == code
    data = json.loads(output)
    assert data["exit_code"] == code and data["works"] == (code == 0)


def test_doctor_json_ena_case() -> None:
    exit_code, output = invoke("--root", str(SNAPSHOTS / "aws-4.4-ena-2.0.1K"), "--json")
    assert exit_code == 1
    data = json.loads(output)
    assert data["facts"]["kernel"] == "4.4.0-1072-aws"
    (f,) = [f for f in data["findings"] if f["code"] == "netpoll-unsupported"]
    assert f["severity"] == "error" and "Unknown error 524" in f["cause"]
    assert [r["recommended"] for r in f["remedies"]] == [True, True, False, True, True, True]


def test_doctor_text_output() -> None:
    exit_code, output = invoke("--root", str(SNAPSHOTS / "aws-4.4-ena-2.0.1K"))
    assert exit_code == 1
    assert "netpoll-unsupported" in output and "will NOT work" in output


def test_doctor_missing_root_exits_2(tmp_path: Path) -> None:
    exit_code, _ = invoke("--root", str(tmp_path / "nope"))
    assert exit_code == 2


def test_doctor_garbage_tarball_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a tarball")
    exit_code, _ = invoke("--root", str(bad))
    assert exit_code == 2


def test_doctor_help_ends_with_example() -> None:
    exit_code, output = CliRunner().invoke(main, ["doctor", "--help"]).exit_code, \
        CliRunner().invoke(main, ["doctor", "--help"]).output
    assert exit_code == 0 and "Example:" in output


def test_doctor_snapshot_directory_as_tarball(tmp_path: Path) -> None:
    archive = tmp_path / "ena.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(SNAPSHOTS / "aws-4.4-ena-2.0.1K", arcname="aws-4.4-ena-2.0.1K")
    exit_code, output = invoke("--root", str(archive), "--json")
    assert exit_code == 1
    assert "netpoll-unsupported" in {f["code"] for f in json.loads(output)["findings"]}


def test_doctor_live_does_not_crash() -> None:
    start = time.monotonic()
    exit_code, output = invoke("--json")
    assert time.monotonic() - start < 5
    assert exit_code in (0, 1)
    data = json.loads(output)
    assert "doctor-check-failed" not in {f["code"] for f in data["findings"]}
    assert data["facts"]["kernel"] != "unknown"


def test_doctor_collect_live_then_root_round_trip(tmp_path: Path) -> None:
    archive = tmp_path / "snap.tar.gz"
    exit_code, _ = invoke("--collect", str(archive))
    assert exit_code == 0 and archive.exists()
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        assert not any(m.issym() or m.islnk() for m in tar.getmembers())
    assert {"proc/cmdline", "ip/link.json", "ip/route.json", "netconsole-snapshot.txt"} <= names
    live_code, live = invoke("--json")
    snap_code, snap = invoke("--root", str(archive), "--json")
    assert snap_code == live_code
    live_data, snap_data = json.loads(live), json.loads(snap)
    assert snap_data["facts"]["kernel"] == live_data["facts"]["kernel"]
    assert snap_data["facts"]["netconsole"] == live_data["facts"]["netconsole"]
    assert {f["code"] for f in snap_data["findings"]} == \
        {f["code"] for f in live_data["findings"]}


def test_doctor_collect_from_snapshot_round_trip(tmp_path: Path) -> None:
    archive = tmp_path / "again.tar.gz"
    exit_code, _ = invoke("--root", str(SNAPSHOTS / "healthy-6x-configfs"),
                          "--collect", str(archive))
    assert exit_code == 0
    code, output = invoke("--root", str(archive), "--json")
    data = json.loads(output)
    assert code == 0 and data["facts"]["targets"][0]["name"] == "fleet"


def test_doctor_tarball_with_sysfs_symlinks(tmp_path: Path) -> None:
    """A person tars copied sysfs: relative symlinks become their target text."""
    snap = tmp_path / "snap"
    (snap / "sys/class/net/ens5/device").mkdir(parents=True)
    (snap / "sys/module/ena").mkdir(parents=True)
    (snap / "proc/sys/kernel").mkdir(parents=True)
    (snap / "sys/class/net/ens5/device/driver").symlink_to("../../../../bus/pci/drivers/ena")
    (snap / "escape").symlink_to("/etc/passwd")
    (snap / "sys/module/ena/version").write_text("2.0.1K\n")
    (snap / "proc/sys/kernel/osrelease").write_text("4.4.0-1072-aws\n")
    (snap / "dmesg.txt").write_text("netpoll: netconsole: ens5 doesn't support polling, "
                                    "aborting\n")
    archive = tmp_path / "snap.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(snap, arcname="snap")
    exit_code, output = invoke("--root", str(archive), "--json")
    assert exit_code == 1
    (f,) = [f for f in json.loads(output)["findings"] if f["code"] == "netpoll-unsupported"]
    assert "ena 2.0.1K" in f["title"]


def test_doctor_target_option(tmp_path: Path) -> None:
    exit_code, output = invoke("--root", str(SNAPSHOTS / "aws-ena-after-upgrade"), "--json",
                               "--target", "@/ens9,6666@172.31.20.15/")
    assert exit_code == 1
    codes = {f["code"]: f["target"] for f in json.loads(output)["findings"]}
    assert codes["iface-missing"] == "argument0"


def test_doctor_json_is_terminal_safe_and_exact() -> None:
    """A target (or dmesg text, an interface name) may carry a bidi override or a
    C1 control: `--json` escapes them, and parses back to the same text."""
    target = "@/ens9\u202e\x9b31m,6666@172.31.20.15/"
    exit_code, output = invoke("--root", str(SNAPSHOTS / "aws-ena-after-upgrade"), "--json",
                               "--target", target)
    assert exit_code == 1
    assert "\u202e" not in output and "\x9b" not in output
    assert "\\u202e" in output  # it was there, escaped
    assert target in json.dumps(json.loads(output), ensure_ascii=False)


def test_doctor_target_that_does_not_parse_is_reported() -> None:
    exit_code, output = invoke("--root", str(SNAPSHOTS / "healthy-6x-configfs"), "--json",
                               "--target", "@/enp1s0,6666@10.10.0.5")
    assert exit_code == 1
    found = {f["code"]: f for f in json.loads(output)["findings"]}
    assert found["param-missing-slash"]["target"] == "@/enp1s0,6666@10.10.0.5"
    assert found["param-missing-slash"]["evidence"][0]["path"] == "--target"


@pytest.mark.parametrize("content", [b"hello\n", bytes(range(256)) * 12],
                         ids=["text", "binary"])
def test_doctor_root_neither_directory_nor_tar_is_one_line(tmp_path: Path,
                                                           content: bytes) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_bytes(content)
    result = CliRunner().invoke(main, ["doctor", "--root", str(bad)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr == f"doctor: {bad}: not a directory or a tar archive\n"


def test_doctor_root_device_file_is_not_called_missing() -> None:
    result = CliRunner().invoke(main, ["doctor", "--root", "/dev/null"])
    assert result.exit_code == 2
    assert result.stderr == "doctor: /dev/null: not a directory or a tar archive\n"


def test_doctor_root_error_is_not_rich_markup(tmp_path: Path) -> None:
    bad = tmp_path / "[bold]x[/bold]-" / ("long-name-" * 12)
    result = CliRunner().invoke(main, ["doctor", "--root", str(bad)])
    assert result.exit_code == 2
    assert result.stderr == f"doctor: {bad}: no such file or directory\n"


def test_doctor_json_targets_are_structured() -> None:
    exit_code, output = invoke("--root", str(SNAPSHOTS / "healthy-6x-configfs"), "--json")
    assert exit_code == 0
    (t,) = json.loads(output)["facts"]["targets"]
    assert t == {"name": "fleet", "origin": "configfs", "dev": "enp1s0",
                 "local_ip": "10.10.0.21", "local_port": 6665, "remote_ip": "10.10.0.5",
                 "remote_port": 6666, "remote_mac": "52:54:00:ab:cd:ef", "extended": True,
                 "release": True, "enabled": True,
                 "evidence": {"path": "/sys/kernel/config/netconsole/fleet", "line": None,
                              "text": "enabled=1"}}


def test_doctor_text_shows_targets_in_one_line() -> None:
    exit_code, output = invoke("--root", str(SNAPSHOTS / "healthy-6x-configfs"))
    assert exit_code == 0
    assert "fleet (configfs) enp1s0 -> 10.10.0.5:6666" in output
