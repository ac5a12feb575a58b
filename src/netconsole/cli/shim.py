"""`netconsole shim write`: remedy 5 of the netpoll case (and remedy 4's ENA patch) as
files, built and loaded on request.

The decision and the files are `netconsole.kernel.shim`; this module reads the host
(the doctor's own facts: kernel, the device's kind and driver, kallsyms), writes,
runs `make` and `insmod`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import click

EXIT_OK, EXIT_REFUSED = 0, 1
BUILD_TIMEOUT = 600.0


def _fail(message: str) -> NoReturn:
    click.secho(f"shim: {' '.join(message.split())}", err=True, fg="red")
    sys.exit(EXIT_REFUSED)


def _kdir_facts(kdir: Path) -> tuple[str | None, bool | None]:
    """The release the headers in `kdir` are for, and CONFIG_NET_POLL_CONTROLLER=y."""
    try:
        release = (kdir / "include/config/kernel.release").read_text().strip() or None
    except OSError:
        release = None
    try:
        config = (kdir / ".config").read_text()
    except OSError:
        return release, None
    return release, "\nCONFIG_NET_POLL_CONTROLLER=y\n" in f"\n{config}"


def _write(directory: Path, files: dict[str, str]) -> list[str]:
    """Write `files`; a file that already has this content is left alone (its mtime too,
    so `make` does not rebuild for nothing). What happened to each, for the report."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in files.items():
        path = directory / name
        try:
            same = path.read_text() == text
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            path.write_text(text)
        out.append(f"{path} ({'unchanged' if same else 'written'})")
    return out


def _run(argv: list[str], what: str) -> str:
    """Run a build or load step; its output, or one line naming what failed."""
    if shutil.which(argv[0]) is None:
        _fail(f"{what}: {argv[0]} is not installed")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired:
        _fail(f"{what}: {' '.join(argv)} timed out")
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        if what == "build" and output:
            click.echo(output[-4000:], err=True)
        last = output.splitlines()[-1] if output else f"exit status {proc.returncode}"
        _fail(f"{what} failed ({' '.join(argv)}): {last}")
    return output


@click.group("shim")
def shim() -> None:
    """np_shim: give one device an empty ndo_poll_controller (the netpoll case).

    Kernels before 4.19 refuse a device whose driver has no ndo_poll_controller
    (`doesn't support polling, aborting`, "Unknown error 524"). np_shim is a
    small module that gives the device one, without a reboot or a driver
    rebuild. `netconsole doctor` names this command when it applies.
    """


@shim.command("write")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("-d", "--device", required=True, metavar="IFACE",
              help="The interface netconsole should use (the module's ifname=).")
@click.option("--build", is_flag=True,
              help="Build np_shim.ko against the kernel headers (make KDIR=...).")
@click.option("--kdir", type=click.Path(file_okay=False, path_type=Path),
              help="Kernel build directory for --build (default "
              "/lib/modules/<release>/build of the kernel in question).")
@click.option("--load", is_flag=True,
              help="Load DIRECTORY/np_shim.ko for the device (insmod; root), after saying "
              "what it will do.")
@click.option("--force", is_flag=True,
              help="Write, build and load even where the shim does not apply.")
@click.option("--ena-patch", is_flag=True,
              help="Also write ena_netpoll.patch and ENA-REBUILD.md: remedy 4, an empty "
              "hook in amzn-drivers' ena_netdev.c.")
@click.option("--root", "root", metavar="DIR|FILE.tar.gz",
              help="Judge the host of a doctor snapshot instead of this one (not with --load).")
def write(directory: Path, device: str, build: bool, kdir: Path | None, load: bool,
          force: bool, ena_patch: bool, root: str | None) -> None:
    """Write np_shim.c, its Makefile and a README of caveats into DIRECTORY.

    First says whether the shim applies: only on a kernel that needs
    ndo_poll_controller (< 4.19, without the backport), for a device whose
    driver lacks it. Where it does not (a newer kernel, a device that has the
    hook, an HSR/netkit device that sets IFF_DISABLE_NETPOLL) it refuses and
    says why, unless --force.

    Example:

        netconsole shim write ~/np_shim --device ens5 --build --load
    """
    from netconsole.doctor.checks.interface import inspect
    from netconsole.doctor.facts import gather
    from netconsole.doctor.remedies import distro_of, load_commands
    from netconsole.host.view import SnapshotError, open_root
    from netconsole.kernel import netpoll
    from netconsole.kernel import shim as model

    if load and root:
        _fail("--load acts on this host; it cannot load into the host of --root")
    try:
        with open_root(root) as view:
            facts = gather(view)
            iface = inspect(facts, device)
            loaded = view.is_dir(f"sys/module/{model.MODULE}")
    except (SnapshotError, OSError) as exc:
        _fail(str(exc))
    release = facts.version.release if facts.version else None
    if build and kdir is None:
        if release is None:
            _fail("the kernel release is unknown: pass --kdir")
        kdir = Path(f"/lib/modules/{release}/build")
    build_release, poll_controller = _kdir_facts(kdir) if kdir is not None else (None, None)
    case = model.ShimCase(
        device=iface.name, kernel=facts.version, exists=iface.exists, kind=iface.kind,
        driver=iface.driver, driver_version=iface.driver_version,
        symbols=None if facts.kallsyms is None else netpoll.scan_kallsyms(
            facts.kallsyms, iface.driver),
        build_release=build_release, build_has_poll_controller=poll_controller,
        loaded=loaded)
    verdict = model.assess(case)
    for note in verdict.notes:
        click.echo(f"shim: {note}")
    if not verdict.applies:
        why = "; ".join(r.text for r in verdict.reasons)
        if not force:
            _fail(f"np_shim does not apply: {why}. (--force writes it anyway)")
        click.secho(f"shim: does not apply ({why}); going on because of --force", err=True,
                    fg="yellow")
    files = model.bundle(case, verdict, model.shipped(), ena=ena_patch)
    for line in _write(directory, files):
        click.echo(f"shim: {line}")
    ko = directory / f"{model.MODULE}.ko"
    if build:
        assert kdir is not None
        if not (kdir / "Makefile").exists():
            headers = distro_of(facts.os_release).headers(release or "$(uname -r)")
            _fail(f"no kernel headers in {kdir} (install them: {headers}; or pass --kdir)")
        _run(["make", "-C", str(directory), f"KDIR={kdir}"], "build")
        click.echo(f"shim: built {ko} against {kdir}")
    if not load:
        if ko.exists():
            click.echo(f"shim: next: sudo insmod {ko} ifname={iface.name}")
        else:
            click.echo(f"shim: next: make -C {directory} && sudo insmod {ko} "
                       f"ifname={iface.name}")
        return
    if not ko.exists():
        _fail(f"there is no {ko} to load: build it first (--build)")
    drv = model.describe_driver(case)
    click.echo(f"shim: loading {ko}: {iface.name} ({drv}) gets a copy of its "
               "net_device_ops with an empty ndo_poll_controller; the kernel is tainted "
               "(out-of-tree module); undo with `rmmod np_shim` after disabling the "
               f"netconsole targets on {iface.name}")
    _run(["insmod", str(ko), f"ifname={iface.name}"], "insmod")
    click.echo(f"shim: loaded: {iface.name} has an empty ndo_poll_controller now")
    targets = [t for t in facts.targets if t.dev == iface.name]
    for command in load_commands(targets, iface.name, loaded=facts.loaded):
        click.echo(f"shim: next: {command}")
