"""setup.apply against a configfs tree that behaves like the kernel's, and errno words."""

from __future__ import annotations

import errno as E
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netconsole.host.view import HostView
from netconsole.host.write import HostWriter
from netconsole.kernel.configfs import CONFIGFS_ROOT
from netconsole.setup.apply import (
    ApplyError,
    apply_configfs,
    apply_module,
    read_target,
    remove_target,
)
from netconsole.setup.caps import KernelFacts, Method
from netconsole.setup.errors import ENOTSUPP, errno_from_modprobe, explain
from netconsole.setup.plan import Plan, plan_target
from netconsole.setup.route import Receiver

from .fakefs import KernelConfigfs
from .test_plan import K7, K612, view


def _plan(dst: str = "192.0.2.10", kernel: KernelFacts = K7, **kw: Any) -> Plan:
    return plan_target(Receiver(ip=dst), view(dst), kernel, hostname="web1", **kw)


def _fresh(root: Path) -> Callable[[], HostView]:
    return lambda: HostView(root, live=False)


def _read(root: Path, rel: str) -> str:
    return (root / CONFIGFS_ROOT / rel).read_text().strip()


def test_apply_creates_target_and_enables(tmp_path: Path) -> None:
    fs = KernelConfigfs(tmp_path)
    got = apply_configfs(_plan(), fs, _fresh(tmp_path))
    assert got.method is Method.CONFIGFS
    assert _read(tmp_path, "netconsole/enabled") == "1"
    assert _read(tmp_path, "netconsole/remote_mac") == "52:54:00:00:00:01"
    assert _read(tmp_path, "netconsole/userdata/hostname/value") == "web1"
    assert _read(tmp_path, "netconsole/userdata/msgid_enabled") == "1"
    # Defaults equal to the plan (ports) are not rewritten: read before write.
    assert not any(line.startswith(("local_port", "remote_port")) for line in fs.log)
    assert fs.log[-1] == "enabled=1 (netconsole)"


def test_apply_is_idempotent(tmp_path: Path) -> None:
    fs = KernelConfigfs(tmp_path)
    apply_configfs(_plan(), fs, _fresh(tmp_path))
    n = len(fs.log)
    again = apply_configfs(_plan(), fs, _fresh(tmp_path))
    assert len(fs.log) == n and not again.changed
    assert "nothing to change" in again.notes[0]


def test_apply_updates_enabled_target_in_place(tmp_path: Path) -> None:
    fs = KernelConfigfs(tmp_path)
    apply_configfs(_plan(), fs, _fresh(tmp_path))
    fs.log.clear()
    apply_configfs(_plan(labels=(("rack", "r9"),)), fs, _fresh(tmp_path))
    # userdata can change while enabled: no disable/enable cycle.
    assert fs.log == ["mkdir netconsole/userdata/rack", "userdata/rack/value=r9 (netconsole)"]
    fs.log.clear()
    other = plan_target(Receiver(ip="10.0.0.7"), view("10.0.0.7"), K7, hostname="web1")
    apply_configfs(other, fs, _fresh(tmp_path))
    assert fs.log[0] == "enabled=0 (netconsole)" and fs.log[-1] == "enabled=1 (netconsole)"
    assert _read(tmp_path, "netconsole/remote_ip") == "10.0.0.7"
    assert not (tmp_path / CONFIGFS_ROOT / "netconsole/userdata/rack").exists()


def test_apply_several_named_targets(tmp_path: Path) -> None:
    fs = KernelConfigfs(tmp_path)
    apply_configfs(_plan(name="a"), fs, _fresh(tmp_path))
    apply_configfs(_plan("10.0.0.7", name="b"), fs, _fresh(tmp_path))
    assert _read(tmp_path, "a/remote_ip") == "192.0.2.10"
    assert _read(tmp_path, "b/remote_ip") == "10.0.0.7"


def test_apply_kernel_without_release_and_sysdata_files(tmp_path: Path) -> None:
    fs = KernelConfigfs(tmp_path, sysdata=False, release=False)
    apply_configfs(_plan(), fs, _fresh(tmp_path))
    assert _read(tmp_path, "netconsole/enabled") == "1"
    assert not any("release" in line or "_enabled" in line for line in fs.log)


@pytest.mark.parametrize(("errno", "words"), [
    (ENOTSUPP, "doesn't support polling"),
    (E.ENODEV, "doesn't exist"),
    (E.EBUSY, "slave device"),
    (E.EDESTADDRREQ, "no IP address"),
])
def test_apply_enable_failure_is_explained(tmp_path: Path, errno: int, words: str) -> None:
    fs = KernelConfigfs(tmp_path)
    fs.enable_errno = errno
    with pytest.raises(ApplyError) as exc:
        apply_configfs(_plan(), fs, _fresh(tmp_path))
    err = exc.value.error
    assert err.errno == errno and words in err.cause and "eth0" in err.cause
    assert exc.value.state == "disabled"
    assert exc.value.done[0].startswith("mkdir")
    assert "enabled" in err.operation


def test_apply_write_while_enabled_is_explained(tmp_path: Path) -> None:
    """A step list computed against a stale read: the kernel's EINVAL, in words."""
    fs = KernelConfigfs(tmp_path)
    apply_configfs(_plan(), fs, _fresh(tmp_path))
    with pytest.raises(OSError) as raw:
        fs.write_attr(f"{CONFIGFS_ROOT}/netconsole/remote_port", "7000")
    assert raw.value.errno == E.EINVAL
    err = explain(E.EINVAL, operation="echo 7000 > remote_port", attribute="remote_port",
                  enabled=True)
    assert "disable to update parameters" in err.cause


def test_writing_current_enabled_value_is_einval_and_explained(tmp_path: Path) -> None:
    fs = KernelConfigfs(tmp_path)
    apply_configfs(_plan(), fs, _fresh(tmp_path))
    with pytest.raises(OSError) as raw:
        fs.write_attr(f"{CONFIGFS_ROOT}/netconsole/enabled", "1")
    err = explain(raw.value.errno, operation="echo 1 > enabled", attribute="enabled")
    assert "already" in err.cause


def test_remove_target(tmp_path: Path) -> None:
    fs = KernelConfigfs(tmp_path)
    apply_configfs(_plan(labels=(("rack", "r1"),)), fs, _fresh(tmp_path))
    done = remove_target("netconsole", fs, _fresh(tmp_path))
    assert done[0].startswith("echo 0 >") and done[-1].startswith("rmdir")
    assert not (tmp_path / CONFIGFS_ROOT / "netconsole").exists()
    with pytest.raises(ApplyError, match="no configfs target"):
        remove_target("netconsole", fs, _fresh(tmp_path))


def test_read_target_plain_tree_has_unknown_files(tmp_path: Path) -> None:
    (tmp_path / CONFIGFS_ROOT / "t").mkdir(parents=True)
    got = read_target(HostView(tmp_path, live=False), "t")
    assert got is not None and got.files is None


def test_apply_on_plain_tree_writes_everything(tmp_path: Path) -> None:
    (tmp_path / CONFIGFS_ROOT).mkdir(parents=True)
    writer = HostWriter.for_root(tmp_path)
    apply_configfs(_plan(), writer, _fresh(tmp_path))
    assert _read(tmp_path, "netconsole/local_port") == "6665"
    assert _read(tmp_path, "netconsole/enabled") == "1"


def test_apply_module_on_test_root_lists_commands(tmp_path: Path) -> None:
    (tmp_path / "sys/module/netconsole").mkdir(parents=True)
    writer = HostWriter.for_root(tmp_path)
    p = _plan(kernel=K612)
    got = apply_module(p, writer, HostView(tmp_path, live=False), ("@/eth1,@10.9.9.9/",))
    assert writer.skipped == ["modprobe -r netconsole",
                              f"modprobe netconsole netconsole=@/eth1,@10.9.9.9/;{p.param}"]
    assert got.method is Method.MODULE_PARAM


@pytest.mark.parametrize(("stderr", "errno"), [
    ("modprobe: ERROR: could not insert 'netconsole': Unknown error 524\n", ENOTSUPP),
    ("modprobe: ERROR: could not insert 'netconsole': Operation not permitted\n", E.EPERM),
    ("modprobe: ERROR: could not insert 'netconsole': No such device\n", E.ENODEV),
    ("modprobe: FATAL: Module netconsole not found in directory /lib/modules/6.1\n",
     E.ENOENT),
    ("modprobe: ERROR: something else\n", None),
])
def test_errno_from_modprobe(stderr: str, errno: int | None) -> None:
    assert errno_from_modprobe(stderr) == errno


def test_explain_every_errno_has_words() -> None:
    assert explain(ENOTSUPP, operation="x").name == "ENOTSUPP"
    assert "netconsole forward" in explain(ENOTSUPP, operation="x").remedy
    perm = explain(E.EPERM, operation="modprobe netconsole ...", attribute=None)
    assert "couldn't parse config" in perm.cause
    assert "root" in explain(E.EACCES, operation="x", attribute="enabled").cause
    assert "IPv6" in explain(E.EDESTADDRREQ, operation="x", dev="eth0", family=6).cause
    assert "199" in explain(E.EMSGSIZE, operation="x", attribute="userdata/k/value").cause
    text = str(explain(E.EBUSY, operation="echo 1 > enabled", attribute="enabled", dev="eth1"))
    assert text.startswith("echo 1 > enabled: EBUSY (16):") and "master" in text
