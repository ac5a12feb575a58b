"""Why `setup` stops: `PlanError` (netconsole cannot work this way), and kernel
errors of netconsole in words (kernel-netconsole.md §3.2, §5.1, §2.2).

The kernel answers a configfs write or a `modprobe` with a bare errno; the
reason is in dmesg, if anywhere. `explain` turns (errno, what was being done)
into the cause and the way out, so `setup` never prints "Unknown error 524"
alone. Pure: the caller supplies the context.
"""

from __future__ import annotations

import errno as E
import os
from dataclasses import dataclass

ENOTSUPP = 524
"""Kernel-internal; glibc has no text for it ("Unknown error 524")."""

# `modprobe: ERROR: could not insert 'netconsole': <strerror>` -> errno
_STRERROR = {os.strerror(n): n for n in (E.EPERM, E.ENODEV, E.EBUSY, E.EINVAL,
                                         E.EDESTADDRREQ, E.ENOMEM, E.ENOENT, E.EEXIST)}
_STRERROR["Unknown error 524"] = ENOTSUPP


class PlanError(Exception):
    """netconsole cannot be set up this way; `hint` says what to do instead."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelError:
    """A failed operation, explained."""

    errno: int
    name: str
    operation: str
    """What was being done (`echo 1 > .../enabled`, `modprobe netconsole ...`)."""
    cause: str
    remedy: str = ""

    def __str__(self) -> str:
        out = f"{self.operation}: {self.name} ({self.errno}): {self.cause}"
        return out + (f"\n  -> {self.remedy}" if self.remedy else "")


def errno_name(n: int) -> str:
    if n == ENOTSUPP:
        return "ENOTSUPP"
    return E.errorcode.get(n, f"errno {n}")


def errno_from_modprobe(stderr: str) -> int | None:
    """The errno in modprobe's `could not insert` line, if any."""
    for text, n in _STRERROR.items():
        if text in stderr:
            return n
    if "not found" in stderr:  # `modprobe: FATAL: Module netconsole not found in directory`
        return E.ENOENT
    return None


def explain(n: int, *, operation: str, attribute: str | None = None, dev: str = "the interface",
            family: int = 4, enabled: bool | None = None) -> KernelError:
    """Explain errno `n` from `operation`.

    Args:
        attribute: the configfs file written (`enabled`, `remote_mac`, `userdata/k/value`),
            None for modprobe.
        dev: the target's interface, for the netpoll_setup errors.
        family: 4 or 6, for the address errors.
        enabled: the target's `enabled` before the write, when known.
    """
    name = errno_name(n)
    fam = "IPv6" if family == 6 else "IPv4"
    cause, remedy = "", ""
    is_enable = attribute == "enabled"
    if n == ENOTSUPP:
        cause = (f"netpoll cannot drive {dev}: '{dev} doesn't support polling, aborting'. "
                 "The device sets IFF_DISABLE_NETPOLL, or the kernel is older than 4.19 and "
                 "the driver has no ndo_poll_controller.")
        remedy = ("Use another interface (a bond or bridge master rather than a port), or "
                  "send from userspace with `netconsole forward`. `netconsole doctor` says "
                  "which.")
    elif n == E.EINVAL and is_enable:
        cause = ("the kernel refused to enable the target: it was already in that state "
                 "('network logging has already started/stopped'), or release is set without "
                 "extended, or the addresses are of another family than the kernel supports")
        remedy = "Read enabled before writing it; `netconsole setup --status` shows it."
    elif n == E.EINVAL and attribute is not None and enabled:
        cause = ("the target is enabled, and this attribute can only change while it is "
                 "disabled ('target (...) is enabled, disable to update parameters')")
        remedy = "Write 0 to enabled first; `setup` does this itself when it re-applies."
    elif n == E.EINVAL and attribute is not None:
        cause = f"the kernel rejected the value written to {attribute} (bad address, port or MAC)"
    elif n == E.EINVAL:
        cause = "the kernel rejected the netconsole= parameter (release without extended?)"
    elif n == E.ENODEV:
        cause = (f"'{dev} doesn't exist, aborting': no interface of that name in the initial "
                 "network namespace, which is where netconsole looks")
        remedy = "Check `ip link`; a driver loaded later (initramfs) makes boot targets miss it."
    elif n == E.EBUSY:
        cause = f"'{dev} is a slave device, aborting': it is enslaved to a bond, bridge or VRF"
        remedy = f"Point netconsole at the master: `ip -o link show {dev}` names it."
    elif n == E.EDESTADDRREQ:
        cause = f"'no IP address for {dev}, aborting': {dev} has no {fam} address"
        remedy = f"Add an {fam} address to {dev}, or set local_ip explicitly."
    elif n == E.EPERM and attribute is None:
        cause = ("the netconsole= value did not parse ('couldn't parse config at ...'), "
                 "so module init failed with -1 = EPERM")
        remedy = "`netconsole doctor --target VALUE` shows where the kernel stopped."
    elif n in (E.EPERM, E.EACCES):
        cause = "permission denied: configfs, /proc/sys and /dev/kmsg need root"
        remedy = "Run with sudo."
    elif n == E.ENOENT and attribute is None:
        cause = ("modprobe found no netconsole module for this kernel (CONFIG_NETCONSOLE "
                 "not set, or the kernel's modules are not installed)")
        remedy = "Send from userspace instead: `netconsole forward`."
    elif n == E.ENOENT:
        cause = ("no such file: configfs is not mounted, the netconsole module is not loaded, "
                 "or this kernel lacks that attribute")
        remedy = "mount -t configfs none /sys/kernel/config; modprobe netconsole"
    elif n == E.EEXIST:
        cause = "it already exists"
    elif n == E.EMSGSIZE:
        cause = "a userdata value is longer than 199 bytes"
    elif n == E.ENAMETOOLONG:
        cause = "a userdata key is longer than 53 characters, or an interface name than 15"
    elif n == E.ENOSPC:
        cause = "too many userdata keys for this kernel (16 before ~6.19, 256 after)"
    elif n == E.ENOTEMPTY:
        cause = "the target still has userdata keys; remove them first"
    elif n == E.ENOMEM:
        cause = "the kernel could not allocate memory for netpoll"
    else:
        cause = os.strerror(n)
    return KernelError(errno=n, name=name, operation=operation, cause=cause, remedy=remedy)
