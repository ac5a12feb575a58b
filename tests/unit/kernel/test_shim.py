"""np_shim (remedy 5) and the ENA patch (remedy 4) as files: when they apply, what is
written (issue 18)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from netconsole.kernel import netpoll
from netconsole.kernel.shim import (
    ENA_PATCH,
    ShimCase,
    assess,
    bundle,
    ena_tag,
    shipped,
)
from netconsole.kernel.version import parse_release

OLD = parse_release("4.4.0-1072-aws")
NEW = parse_release("6.12.117+deb12-amd64")
NO_EXPORT = netpoll.Symbols(netpoll_poll_dev_exported=False, netpoll_poll_dev_seen=False,
                            driver_hooks=(), driver_has_symbols=True)


def ena(**kw: object) -> ShimCase:
    base: dict[str, object] = dict(device="ens5", kernel=OLD, exists=True, driver="ena",
                                   driver_version="2.0.1K", symbols=NO_EXPORT)
    base.update(kw)
    return ShimCase(**base)  # type: ignore[arg-type]


def codes(case: ShimCase) -> list[str]:
    return [r.code for r in assess(case).reasons]


def test_the_seed_case_applies() -> None:
    verdict = assess(ena())
    assert verdict.applies and verdict.reasons == ()
    assert any("older than 4.19" in n for n in verdict.notes)
    assert any("ena 2.0.1K" in n and "no ndo_poll_controller" in n for n in verdict.notes)


def test_a_new_kernel_needs_no_shim() -> None:
    verdict = assess(ena(kernel=NEW))
    assert not verdict.applies and codes(ena(kernel=NEW)) == ["kernel-optional-hook"]
    assert "4.19" in verdict.reasons[0].text


def test_an_old_kernel_with_the_backport_needs_no_shim() -> None:
    sym = netpoll.Symbols(netpoll_poll_dev_exported=True, netpoll_poll_dev_seen=True)
    assert codes(ena(symbols=sym)) == ["kernel-optional-hook"]


def test_a_driver_with_the_hook_needs_no_shim() -> None:
    sym = netpoll.Symbols(netpoll_poll_dev_exported=False, driver_hooks=("e1000_netpoll",),
                          driver_has_symbols=True)
    case = ena(device="eth1", driver="e1000", driver_version=None, symbols=sym)
    assert codes(case) == ["device-has-hook"]
    assert "e1000_netpoll" in assess(case).reasons[0].text


def test_hsr_is_refused_whatever_the_kernel() -> None:
    for kernel in (OLD, NEW):
        case = ena(device="hsr0", kind="hsr", driver=None, driver_version=None, kernel=kernel)
        assert "device-disables-netpoll" in codes(case)
        assert "IFF_DISABLE_NETPOLL" in assess(case).reasons[0].text


@pytest.mark.parametrize(("kw", "code"), [
    ({"exists": False}, "device-missing"),
    ({"loaded": True}, "already-loaded"),
    ({"build_release": "4.4.0-1071-aws"}, "release-mismatch"),
    ({"build_has_poll_controller": False}, "no-poll-controller-config"),
])
def test_other_reasons(kw: dict[str, object], code: str) -> None:
    assert codes(ena(**kw)) == [code]


def test_bundle_has_the_shipped_sources_and_a_readme_for_the_device() -> None:
    case = ena()
    files = bundle(case, assess(case), shipped())
    assert set(files) == {"np_shim.c", "Makefile", "README"}
    assert "ndo_poll_controller = np_shim_poll_controller" in files["np_shim.c"]
    assert "obj-m := np_shim.o" in files["Makefile"]
    readme = files["README"]
    assert "sudo insmod np_shim.ko ifname=ens5" in readme and "taints the kernel" in readme
    assert "IFF_DISABLE_NETPOLL" in readme and "rmmod np_shim" in readme
    with_ena = bundle(case, assess(case), shipped(), ena=True)
    assert "git checkout ena_linux_2.0.1" in with_ena["ENA-REBUILD.md"]
    assert "patch -p1 < ena_netpoll.patch" in with_ena["ENA-REBUILD.md"]


@pytest.mark.parametrize(("version", "tag"), [("2.0.1K", "ena_linux_2.0.1"),
                                              ("2.8", "ena_linux_2.8.0"),
                                              (None, "ena_linux_2.0.2")])
def test_ena_tag(version: str | None, tag: str) -> None:
    assert ena_tag(version) == tag


@pytest.mark.skipif(shutil.which("patch") is None, reason="no patch(1)")
def test_ena_patch_applies_and_adds_an_empty_hook(tmp_path: Path) -> None:
    """The real `patch -p1` against a file with ena_netdev_ops where 2.x has it (any
    line: the hunk is found by its context)."""
    src = tmp_path / "kernel" / "linux" / "ena" / "ena_netdev.c"
    src.parent.mkdir(parents=True)
    head = [f"/* line {i} */" for i in range(40)]
    src.write_text("\n".join([
        *head, "static void ena_get_stats64(struct net_device *netdev)", "{", "}", "",
        "static const struct net_device_ops ena_netdev_ops = {",
        "\t.ndo_open\t\t= ena_open,", "\t.ndo_stop\t\t= ena_close,",
        "\t.ndo_start_xmit\t\t= ena_start_xmit,", "};", ""]))
    (tmp_path / ENA_PATCH).write_text(shipped()[ENA_PATCH])
    proc = subprocess.run(["patch", "-p1", "-i", ENA_PATCH], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = src.read_text()
    assert "static void ena_netpoll(struct net_device *netdev)\n{\n}" in text
    ops = text[text.index("ena_netdev_ops = {"):]
    assert ops.index(".ndo_poll_controller\t= ena_netpoll,") < ops.index(".ndo_stop")
