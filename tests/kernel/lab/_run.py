"""One scenario, end to end: receiver up, initramfs built, kernel booted, results parsed."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab._apt import PrivateApt
from lab._console import Console, parse_console
from lab._errors import LabError
from lab._guest import Script, lab_rcs
from lab._initramfs import base_image, concatenate, init_image
from lab._kernel import Kernel, find_debian12_612, find_sid_7x, prepare_kernel
from lab._qemu import BootResult, Nic, boot, pcap_path
from lab._receiver import Datagram, ListenReceiver, Receiver, make_receiver, tx_packets

KERNEL_LABELS = ("debian12-6.12", "sid-7.x")


@dataclass(slots=True)
class Run:
    """What one boot produced."""

    name: str
    kernel: Kernel
    ports: list[int]
    boot: BootResult
    console: Console
    datagrams: list[Datagram]
    rcs: dict[str, int]
    # With a `netconsole listen` receiver: its SQLite store, and its stderr.
    store: Path | None = None
    listen_log: str = ""
    listen_rc: int | None = None
    listen_datagrams: int | None = None  # its /metrics count before SIGTERM

    @property
    def pcap(self) -> Path:
        """eth0's frames as QEMU saw them (Lab.run's `pcap`, on by default)."""
        return pcap_path(self.boot.workdir)

    def on_port(self, port: int) -> list[Datagram]:
        return [d for d in self.datagrams if d.local_port == port]

    def lab_lines(self, pattern: str) -> list[str]:
        return [line for line in self.boot.lab_text.splitlines() if re.search(pattern, line)]

    def describe(self) -> str:
        return (f"{self.name} on {self.kernel.release}: {self.boot.describe()}, "
                f"{len(self.console.lines)} console lines, {len(self.datagrams)} datagrams")


BOOT_ATTEMPTS = 2


def died_before_init(result: BootResult) -> bool:
    """The guest kernel crashed before the scenario's /init printed a line. Seen
    under TCG with 2 vCPUs on 7.x: `Oops: int3` in the scheduler while the
    kernel patches its own code at boot. Nothing of the scenario ran, so the
    lab boots again rather than fail every test of that boot."""
    return not result.lab_text.strip() and b"Kernel panic" in result.console


@dataclass(slots=True)
class Lab:
    """Kernels (built once) and runs (one boot each) under a cache and a work directory."""

    cache: Path
    work: Path
    _kernels: dict[str, Kernel] = field(default_factory=dict)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def kernel(self, label: str) -> Kernel:
        """The kernel for `label` (see KERNEL_LABELS), downloaded and extracted once."""
        if label not in self._kernels:
            if label == "debian12-6.12":
                spec = find_debian12_612()
            elif label == "sid-7.x":
                spec = find_sid_7x(PrivateApt(self.cache / "apt-sid"))
            else:
                raise LabError(f"unknown kernel {label!r}; known: {KERNEL_LABELS}")
            self._kernels[label] = prepare_kernel(spec, self.cache)
        return self._kernels[label]

    def run(self, kernel: Kernel, name: str, steps: Callable[[Script, list[int]], None], *,
            ports: int = 1, nics: Sequence[Nic] = (Nic(),), timeout: float = 120.0,
            extra_images: Sequence[Path] = (), extra_append: Sequence[str] = (),
            memory_mb: int = 512, listen: dict[str, Any] | None = None,
            pcap: bool = True) -> Run:
        """Boot `kernel` with a scenario whose steps `steps(script, ports)` adds.

        `listen` (keyword arguments of `ListenReceiver`, `{}` for the defaults): the
        receiver is a real `netconsole listen` instead of raw UDP sockets; the run's
        `store` is then its database and `datagrams` is empty. `pcap`: QEMU writes
        eth0's frames to `<workdir>/eth0.pcap` (`Run.pcap`)."""
        workdir = self.work / f"{name}-{kernel.release}"
        workdir.mkdir(parents=True, exist_ok=True)
        base = base_image(kernel, self.cache / "kernels" / kernel.release / "base.cpio.gz")
        for attempt in range(1, BOOT_ATTEMPTS + 1):
            receiver: Receiver = (make_receiver(ports) if listen is None
                                  else ListenReceiver(workdir, count=ports, **listen))
            receiver.start()
            try:
                script = Script(scenario=name, kernel=kernel)
                steps(script, receiver.ports)
                init = init_image(script.files(), workdir / "init.cpio.gz")
                initrd = concatenate([base, *extra_images, init],
                                     workdir / "initramfs.cpio.gz")
                result = boot(kernel.vmlinuz, initrd, workdir, nics=nics,
                              timeout=timeout, extra_append=(f"lab={name}", *extra_append),
                              memory_mb=memory_mb, pcap=pcap)
                if isinstance(receiver, ListenReceiver):
                    receiver.expect = tx_packets(result.lab_text)
            finally:
                receiver.stop()
            if not died_before_init(result) or attempt == BOOT_ATTEMPTS:
                break
            self.timings.append((f"{name} {kernel.release}: kernel died before /init, "
                                 "booted again", result.seconds))
        if os.environ.get("NETCONSOLE_LAB_KEEP") != "1":
            (workdir / "initramfs.cpio.gz").unlink(missing_ok=True)
        self.timings.append((f"{name} {kernel.release}", result.seconds))
        if result.timed_out:
            raise LabError(f"{name}: QEMU timed out after {timeout:.0f} s "
                           f"(console in {workdir})")
        run = Run(name=name, kernel=kernel, ports=list(receiver.ports), boot=result,
                  console=parse_console(result.console), datagrams=list(receiver.datagrams),
                  rcs=lab_rcs(result.lab_text))
        if isinstance(receiver, ListenReceiver):
            run.store, run.listen_log = receiver.db, receiver.stderr
            run.listen_rc, run.listen_datagrams = receiver.returncode, receiver.counted
        return run
