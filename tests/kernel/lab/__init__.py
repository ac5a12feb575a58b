"""The real-kernel lab (issue 6): Debian kernels under QEMU (TCG) whose netconsole
module sends real datagrams to a receiver on the host.

Pure stdlib + subprocess. The pieces, each in its own module:

* `_apt`, `_kernel`: discover the newest kernels with apt-cache (the system's
  apt for Debian 12, a private configuration for sid), download, extract
  vmlinuz and the modules netconsole needs, decompressed.
* `_initramfs`: cpio newc archives in pure Python; busybox-static + modules,
  plus a per-scenario `/init` (`_guest.Script`), plus optional Python layers
  (`_python`).
* `_qemu`: the boot runner (timeout, killed by PID, serial logs to files).
* `_receiver`: UDP sockets on 127.0.0.1 recording every datagram, or the real
  `netconsole listen` with its store (`ListenReceiver`).
* `_console`: the guest console parsed into (ts_usec, text) lines.
* `_decode`: datagrams through the project's decoder, compared with the console.
* `scenarios`: what each boot does in the guest.
"""

from lab._console import Console, ConsoleLine, parse_console
from lab._decode import Comparison, Decoded, compare, decode, decode_port, record_lines
from lab._errors import LabError
from lab._guest import GATEWAY_MAC, GUEST_IP, HOST_IP, Script, lab_rcs
from lab._kernel import Kernel, KernelSpec, find_debian12_612, find_sid_7x, prepare_kernel
from lab._python import PythonImages, build_python
from lab._qemu import BootResult, Nic, boot
from lab._receiver import (
    Datagram,
    ListenReceiver,
    Receiver,
    UdpReceiver,
    check_nic_count,
    make_receiver,
    tx_packets,
)
from lab._run import KERNEL_LABELS, Lab, Run

__all__ = [
    "GATEWAY_MAC",
    "GUEST_IP",
    "HOST_IP",
    "KERNEL_LABELS",
    "BootResult",
    "Comparison",
    "Console",
    "ConsoleLine",
    "Datagram",
    "Decoded",
    "Kernel",
    "KernelSpec",
    "Lab",
    "LabError",
    "ListenReceiver",
    "Nic",
    "PythonImages",
    "Receiver",
    "Run",
    "Script",
    "UdpReceiver",
    "boot",
    "build_python",
    "check_nic_count",
    "compare",
    "decode",
    "decode_port",
    "find_debian12_612",
    "find_sid_7x",
    "lab_rcs",
    "make_receiver",
    "parse_console",
    "prepare_kernel",
    "record_lines",
    "tx_packets",
]
