"""Booting a kernel under QEMU (TCG): every run has a timeout and is killed by its PID.

The guest has two serial ports: ttyS0 is the kernel console (`console.log`,
the reference a decoder's output is compared with) and ttyS1 takes the init
script's own output (`lab.log`, the `LAB:` lines), so shell output never
interleaves with kernel lines. With `pcap`, QEMU's `filter-dump` also writes
every frame of each NIC to `eth<i>.pcap` (what the guest kernel put on the wire,
Ethernet headers included). The guest ends with `poweroff -f`, or with a
panic (`panic=1` and `-no-reboot` make QEMU exit).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab._errors import LabError

QEMU = "qemu-system-x86_64"
GUEST_MAC = "52:54:00:12:34:56"
BASE_APPEND = ("console=ttyS0,115200", "loglevel=8", "printk.devkmsg=on", "panic=1")
# Beyond the `timeout` wrapper, how long Python waits before it kills the group itself.
KILL_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class Nic:
    """One guest NIC on its own QEMU user network (guest 10.0.2.15, host 10.0.2.2)."""

    model: str = "virtio-net-pci"
    mac: str = GUEST_MAC


@dataclass(frozen=True, slots=True)
class BootResult:
    """What one boot left behind."""

    workdir: Path
    console: bytes
    lab: bytes
    returncode: int
    seconds: float
    timed_out: bool

    @property
    def lab_text(self) -> str:
        return self.lab.decode("utf-8", "replace")

    def describe(self) -> str:
        return (f"boot in {self.workdir}: rc={self.returncode} {self.seconds:.1f}s"
                f"{' TIMED OUT' if self.timed_out else ''}")


def pcap_path(workdir: Path, i: int = 0) -> Path:
    """Where `-object filter-dump` writes NIC `i`'s frames (both directions, Ethernet)."""
    return workdir / f"eth{i}.pcap"


def qemu_command(vmlinuz: Path, initrd: Path, append: str, workdir: Path,
                 nics: Sequence[Nic] = (Nic(),), memory_mb: int = 512,
                 pcap: bool = False) -> list[str]:
    cmd = [
        QEMU, "-accel", "tcg", "-machine", "q35", "-smp", "2", "-m", str(memory_mb),
        "-nographic", "-no-reboot", "-monitor", "none",
        "-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", append,
        "-serial", f"file:{workdir / 'console.log'}",
        "-serial", f"file:{workdir / 'lab.log'}",
    ]
    for i, nic in enumerate(nics):
        cmd += [
            "-netdev", f"user,id=n{i},ipv6=off",
            "-device", f"{nic.model},netdev=n{i},mac={nic.mac[:-2]}{0x56 + i:02x}",
        ]
        if pcap:
            cmd += ["-object", f"filter-dump,id=d{i},netdev=n{i},file={pcap_path(workdir, i)}"]
    return cmd


def boot(vmlinuz: Path, initrd: Path, workdir: Path, *, extra_append: Sequence[str] = (),
         nics: Sequence[Nic] = (Nic(),), timeout: float = 120.0,
         memory_mb: int = 512, pcap: bool = False) -> BootResult:
    """Boot once and wait for QEMU to exit (or kill it); the serial logs come back."""
    if shutil.which(QEMU) is None:
        raise LabError(f"{QEMU} is not installed (apt-get install qemu-system-x86)")
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("console.log", "lab.log", *(pcap_path(workdir, i).name
                                              for i in range(len(nics)))):
        (workdir / name).unlink(missing_ok=True)
    append = " ".join((*BASE_APPEND, *extra_append))
    # setpriv --pdeathsig: should the test process die (even by SIGKILL), `timeout`
    # gets SIGTERM and passes it on to QEMU, so no QEMU outlives its test.
    cmd = ["setpriv", "--pdeathsig", "TERM", "--",
           "timeout", "--kill-after=5", f"{timeout:.0f}",
           *qemu_command(vmlinuz, initrd, append, workdir, nics, memory_mb, pcap)]
    (workdir / "cmdline").write_text(" ".join(cmd) + "\n")
    started = time.monotonic()
    with (workdir / "qemu.out").open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout + KILL_GRACE)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            rc = proc.wait()
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
    seconds = time.monotonic() - started
    return BootResult(
        workdir=workdir,
        console=_read(workdir / "console.log"),
        lab=_read(workdir / "lab.log"),
        returncode=rc,
        seconds=seconds,
        timed_out=rc in (124, 137, -signal.SIGKILL),
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill `timeout` and the QEMU it started: the session (group) led by its PID."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
