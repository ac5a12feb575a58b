"""`netconsole setup` / `send` over a directory tree (`--root`): plain files standing
in for configfs, /proc and /etc, and `ip -j` JSON for netlink. Nothing live is touched:
the only socket is the loopback receiver API of the verification test."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from netconsole.cli import main

HEALTHY = Path(__file__).parents[2] / "data" / "snapshots" / "healthy-6x-configfs"
CFS = "sys/kernel/config/netconsole"
# A closed loopback port: the delivery check finds no API and says what to look for.
NO_API = ["--receiver-api", "127.0.0.1:1", "--verify-timeout", "0"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "host"
    shutil.copytree(HEALTHY, r)
    (r / "proc/sys/kernel/hostname").write_text("web1\n")
    return r


def run(*args: str) -> tuple[int, Any, str]:
    res = CliRunner().invoke(main, list(args))
    try:
        data = json.loads(res.stdout)
    except ValueError:
        data = None
    return res.exit_code, data, res.output


def test_dry_run_json_changes_nothing(root: Path) -> None:
    before = sorted(p.name for p in (root / CFS).iterdir())
    code, data, _ = run("setup", "192.0.2.50:7000", "--root", str(root), "--dry-run",
                        "--json", "--name", "n2", "--label", "rack=r42")
    assert code == 0
    plan = data["plan"]
    assert plan["interface"] == "enp1s0" and plan["next_hop"] == "10.10.0.1"
    assert plan["next_hop_mac"] == "52:54:00:00:00:01" and plan["next_hop_kind"] == "gateway"
    assert plan["param"] == "+r@10.10.0.21/enp1s0,7000@192.0.2.50/52:54:00:00:00:01"
    assert plan["userdata"] == {"hostname": "web1", "rack": "r42"}
    assert data["boot_param"] == "netconsole.netconsole=" + plan["param"]
    assert data["configfs_steps"][0] == f"mkdir /{CFS}/n2"
    assert data["configfs_steps"][-1] == f"echo 1 > /{CFS}/n2/enabled"
    assert data["applied"] is None and data["verification"] is None
    assert sorted(p.name for p in (root / CFS).iterdir()) == before


def test_apply_status_rerun_remove(root: Path) -> None:
    code, data, out = run("setup", "192.0.2.50", "--root", str(root), "--name", "n2",
                          "--json", *NO_API)
    assert code == 4, out  # applied; no receiver API answered: delivery unproven
    t = root / CFS / "n2"
    assert (t / "enabled").read_text() == "1\n"
    assert (t / "remote_mac").read_text() == "52:54:00:00:00:01\n"
    assert (t / "userdata/hostname/value").read_text() == "web1\n"
    v = data["verification"]
    assert v["outcome"] == "no-api" and f"nonce={v['nonce']}" in v["detail"]
    assert (root / "dev/kmsg").read_text().startswith("<5>netconsole-setup nonce=")

    code, again, _ = run("setup", "192.0.2.50", "--root", str(root), "--name", "n2",
                         "--json", "--no-verify")
    assert code == 0 and again["applied"]["done"] == [] and not again["applied"]["changed"]

    code, rows, _ = run("setup", "--status", "--root", str(root), "--json")
    by = {r["name"]: r for r in rows}
    assert by["n2"]["enabled"] is True and by["n2"]["mac_ok"] is True
    assert by["n2"]["next_hop"] == "10.10.0.1"
    assert by["fleet"]["origin"] == "configfs"

    code, gone, _ = run("setup", "--remove", "n2", "--root", str(root), "--json")
    assert code == 0 and gone["done"][-1] == f"rmdir /{CFS}/n2"
    assert not t.exists()
    code, _, out = run("setup", "--remove", "n2", "--root", str(root))
    assert code == 1 and "no configfs target n2" in out


def test_status_flags_a_stale_mac(root: Path) -> None:
    (root / CFS / "fleet/remote_mac").write_text("52:54:00:99:99:99\n")
    code, rows, _ = run("setup", "--status", "--root", str(root), "--json")
    assert code == 0
    fleet = next(r for r in rows if r["name"] == "fleet")
    # fleet sends to 10.10.0.5 on the link: the receiver's own MAC is expected.
    assert fleet["mac_ok"] is False and fleet["expected_mac"] == "52:54:00:ab:cd:ef"
    assert "52:54:00:99:99:99" in fleet["note"]


def test_persist_and_loglevel_files(root: Path) -> None:
    code, data, out = run("setup", "192.0.2.50", "--root", str(root), "--persist",
                          "--boot-param", "--loglevel", "8", "--no-verify", "--json")
    assert code == 0, out
    unit = (root / "etc/systemd/system/netconsole-netconsole.service").read_text()
    assert "setup 192.0.2.50 --name netconsole --no-verify" in unit
    assert (root / "proc/sys/kernel/printk").read_text() == "8\n"
    assert (root / "etc/sysctl.d/90-netconsole-loglevel.conf").read_text().endswith(
        "kernel.printk = 8 4 1 7\n")
    grub = (root / "etc/default/grub.d/netconsole.cfg").read_text()
    assert "netconsole.netconsole=+r@10.10.0.21/enp1s0,6666@192.0.2.50/" in grub
    assert data["persisted"]["commands"] == ["systemctl daemon-reload",
                                             "systemctl enable netconsole-netconsole.service"]


def test_boot_param_alone_prints_only_the_parameter(root: Path) -> None:
    res = CliRunner().invoke(main, ["setup", "192.0.2.50", "--root", str(root),
                                    "--boot-param"])
    assert res.exit_code == 0
    assert res.stdout == ("netconsole.netconsole=+r@10.10.0.21/enp1s0,6666@192.0.2.50/"
                          "52:54:00:00:00:01\n")
    assert not (root / CFS / "netconsole").exists()


def test_module_parameter_without_configfs(root: Path) -> None:
    shutil.rmtree(root / "sys/kernel/config")
    cfg = next((root / "boot").glob("config-*"))
    cfg.write_text(cfg.read_text().replace("CONFIG_NETCONSOLE_DYNAMIC=y",
                                           "# CONFIG_NETCONSOLE_DYNAMIC is not set"))
    code, data, out = run("setup", "192.0.2.50", "--root", str(root), "--persist",
                          "--no-verify", "--json")
    assert code == 0, out
    assert data["plan"]["method"] == "module-parameter"
    assert "userdata needs configfs" in " ".join(data["notes"])
    param = data["plan"]["param"]
    assert data["skipped"][-3:] == ["modprobe netconsole netconsole=" + param,
                                    "systemctl daemon-reload",
                                    "systemctl enable netconsole-netconsole.service"]
    conf = (root / "etc/modprobe.d/netconsole.conf").read_text()
    assert conf.splitlines()[-1] == f"options netconsole netconsole={param}"
    assert (root / "etc/modules-load.d/netconsole.conf").exists()
    # A second named target joins the first in the one options line.
    code, data, _ = run("setup", "10.10.0.5", "--name", "two", "--root", str(root),
                        "--persist", "--no-verify", "--json")
    assert data["module_param"] == param + ";" + data["plan"]["param"]


def test_slave_interface_error_points_at_master(root: Path) -> None:
    links = json.loads((root / "ip/link.json").read_text())
    links[1]["master"] = "bond0"
    links.append({"ifindex": 3, "ifname": "bond0", "flags": ["UP", "LOWER_UP", "MASTER"],
                  "address": "52:54:00:12:34:56", "linkinfo": {"info_kind": "bond"}})
    (root / "ip/link.json").write_text(json.dumps(links))
    code, data, _ = run("setup", "192.0.2.50", "--root", str(root), "--dry-run", "--json")
    assert code == 1
    assert "enp1s0 is a slave of bond0" in data["error"] and "bond0" in data["hint"]


def test_missing_mac_on_a_snapshot_exits_1(root: Path) -> None:
    (root / "ip/neigh.json").write_text("[]")
    code, data, _ = run("setup", "192.0.2.50", "--root", str(root), "--json", "--no-verify")
    assert code == 1 and data["plan"]["next_hop_mac"] is None
    assert data["applied"] is None
    assert not (root / CFS / "netconsole").exists()


def test_usage_errors() -> None:
    assert run("setup")[0] == 2
    assert run("setup", "10.0.0.1", "--label", "novalue")[0] == 2
    assert run("send", "--via", "udp", "x")[0] == 2


def test_help_ends_with_example() -> None:
    for cmd in ("setup", "send"):
        res = CliRunner().invoke(main, [cmd, "--help"])
        assert res.exit_code == 0 and "Example:" in res.output


def test_send_kmsg_to_tree(tmp_path: Path) -> None:
    code, data, _ = run("send", "--root", str(tmp_path), "--level", "4", "--json", "hi there")
    assert code == 0 and data["via"] == "kmsg"
    assert (tmp_path / "dev/kmsg").read_bytes() == b"<4>hi there\n"
    code, _, out = run("send", "--root", str(tmp_path), "x" * 1100)
    assert code == 1 and "1024" in out


def test_kernel_without_netconsole_offers_forward(root: Path) -> None:
    shutil.rmtree(root / "sys/kernel/config")
    shutil.rmtree(root / "sys/module/netconsole")
    (root / "proc/modules").write_text("")
    cfg = next((root / "boot").glob("config-*"))
    cfg.write_text(cfg.read_text().replace("CONFIG_NETCONSOLE=m",
                                           "# CONFIG_NETCONSOLE is not set"))
    code, data, _ = run("setup", "192.0.2.50", "--root", str(root), "--json")
    assert code == 1 and "has no netconsole" in data["kernel_problem"]
    assert data["applied"] is None
    res = CliRunner().invoke(main, ["setup", "192.0.2.50", "--root", str(root)])
    assert "netconsole forward 192.0.2.50:6666" in res.output


def test_unset_hostname_gives_no_label(root: Path) -> None:
    (root / "proc/sys/kernel/hostname").write_text("(none)\n")
    code, data, _ = run("setup", "192.0.2.50", "--root", str(root), "--dry-run", "--json")
    assert code == 0 and data["plan"]["userdata"] == {}


def test_unconfirmed_delivery_exits_4(root: Path) -> None:
    """Issue 13: no answer from the receiver API is no proof: `setup && …` must not go on."""
    code, data, out = run("setup", "192.0.2.50", "--root", str(root), "--json", *NO_API)
    assert (code, data["exit_code"], data["verification"]["outcome"]) == (4, 4, "no-api"), out
    res = CliRunner().invoke(main, ["setup", "192.0.2.50", "--root", str(root), *NO_API])
    assert res.exit_code == 4 and "verify: UNCONFIRMED" in res.output


def test_nonce_not_sent_exits_4(root: Path) -> None:
    (root / "proc/sys/kernel/printk").write_text("2\t4\t1\t7\n")  # only emerg and alert
    code, data, out = run("setup", "192.0.2.50", "--root", str(root), "--json", *NO_API)
    assert (code, data["verification"]["outcome"]) == (4, "not-sent"), out


def test_no_verify_still_exits_0(root: Path) -> None:
    assert run("setup", "192.0.2.50", "--root", str(root), "--no-verify")[0] == 0


def test_help_documents_every_exit_status() -> None:
    res = CliRunner().invoke(main, ["setup", "--help"])
    assert "4 applied but delivery is unproven" in " ".join(res.output.split())


def test_remove_undoes_everything_persist_wrote(root: Path) -> None:
    """Issue 13: the GRUB drop-in outlived `--remove` and brought the target back."""
    code, _, out = run("setup", "192.0.2.50", "--root", str(root), "--persist",
                       "--boot-param", "--loglevel", "8", "--no-verify")
    assert code == 0, out
    grub = root / "etc/default/grub.d/netconsole.cfg"
    sysctl = root / "etc/sysctl.d/90-netconsole-loglevel.conf"
    assert grub.exists() and sysctl.exists()
    code, gone, out = run("setup", "--remove", "netconsole", "--root", str(root), "--json")
    assert code == 0, out
    assert not grub.exists()
    assert not (root / "etc/systemd/system/netconsole-netconsole.service").exists()
    assert "/etc/default/grub.d/netconsole.cfg" in gone["files"]
    assert any("update-grub" in n for n in gone["notes"])
    # fleet is still a target: the console loglevel it needs stays.
    assert sysctl.exists()
    res = CliRunner().invoke(main, ["setup", "--remove", "fleet", "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert not sysctl.exists() and "removed /etc/sysctl.d/90-netconsole-loglevel.conf" in \
        res.output


def test_remove_text_says_to_run_update_grub(root: Path) -> None:
    run("setup", "192.0.2.50", "--root", str(root), "--persist", "--boot-param",
        "--no-verify")
    res = CliRunner().invoke(main, ["setup", "--remove", "netconsole", "--root", str(root)])
    assert res.exit_code == 0
    assert "removed /etc/default/grub.d/netconsole.cfg" in res.output
    assert "update-grub" in res.output
