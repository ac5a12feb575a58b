"""`netconsole shim write` through click, judging doctor snapshots (`--root`): it writes
where np_shim applies, refuses with its reasons where it does not, and never loads
anything into the machine running the tests (issue 18)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from netconsole.cli import main

DATA = Path(__file__).parents[2] / "data"
ENA = DATA / "snapshots" / "aws-4.4-ena-2.0.1K"
HSR = DATA / "lab-snapshots" / "6.12-hsr-configfs.tar.gz"


def shim(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["shim", "write", *args])
    return result.exit_code, result.stdout, result.stderr


def test_writes_the_module_for_the_seed_case(tmp_path: Path) -> None:
    out = tmp_path / "np_shim"
    code, stdout, stderr = shim(str(out), "--device", "ens5", "--root", str(ENA),
                                "--ena-patch")
    assert code == 0, stdout + stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "ENA-REBUILD.md", "Makefile", "README", "ena_netpoll.patch", "np_shim.c"]
    assert "older than 4.19" in stdout and "ena 2.0.1K" in stdout
    assert f"next: make -C {out} && sudo insmod {out}/np_shim.ko ifname=ens5" in stdout
    assert "ifname=ens5" in (out / "README").read_text()
    # written again: nothing changes, so make would not rebuild
    before = (out / "np_shim.c").stat().st_mtime_ns
    code, stdout, _ = shim(str(out), "--device", "ens5", "--root", str(ENA))
    assert code == 0 and f"{out}/np_shim.c (unchanged)" in stdout
    assert (out / "np_shim.c").stat().st_mtime_ns == before


def test_refuses_an_hsr_device_on_a_new_kernel_and_says_why(tmp_path: Path) -> None:
    out = tmp_path / "np_shim"
    code, _, stderr = shim(str(out), "--device", "hsr0", "--root", str(HSR))
    assert code == 1 and not out.exists()
    (line,) = stderr.splitlines()
    assert line.startswith("shim: np_shim does not apply: ")
    assert "IFF_DISABLE_NETPOLL" in line and "4.19 or newer" in line
    assert line.endswith("(--force writes it anyway)")


def test_force_writes_anyway(tmp_path: Path) -> None:
    out = tmp_path / "np_shim"
    code, stdout, stderr = shim(str(out), "--device", "eth0", "--root", str(HSR), "--force")
    assert code == 0, stdout + stderr
    assert "going on because of --force" in stderr
    assert "DOES NOT APPLY: kernel 6.12.117+deb12-amd64 is 4.19 or newer" in (
        out / "README").read_text()


def test_load_is_for_this_host_only(tmp_path: Path) -> None:
    code, _, stderr = shim(str(tmp_path / "x"), "--device", "ens5", "--root", str(ENA),
                           "--load")
    assert code == 1
    assert stderr.strip() == ("shim: --load acts on this host; it cannot load into the host "
                              "of --root")


def test_build_without_headers_is_one_line(tmp_path: Path) -> None:
    code, _, stderr = shim(str(tmp_path / "x"), "--device", "ens5", "--root", str(ENA),
                           "--build", "--kdir", str(tmp_path / "no-headers"))
    assert code == 1
    (line,) = stderr.splitlines()
    assert line.startswith(f"shim: no kernel headers in {tmp_path / 'no-headers'}")
    assert "Traceback" not in stderr
