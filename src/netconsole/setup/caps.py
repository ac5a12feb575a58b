"""What a target can carry on this kernel, and how it reaches the kernel, sans-IO.

Theory of operation (kernel-netconsole.md §1, §3, §4.1): the format depends on
the kernel: extended (4.2+), the release prefix (6.6+), userdata (6.9+,
configfs only), sysdata toggles (6.15-6.17+). When a configfs target directory
is at hand its files decide (a distribution kernel may carry backports);
otherwise the version does. The method is configfs when the kernel has it, else
the module parameter, else (built in) only the kernel command line.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from netconsole.kernel.configfs import (
    MAX_USERDATA_ITEMS_NEW,
    MAX_USERDATA_ITEMS_OLD,
    MAX_USERDATA_KEY,
    MAX_USERDATA_VALUE,
    SYSDATA_TOGGLES,
)
from netconsole.kernel.version import KernelVersion
from netconsole.setup.errors import PlanError

# The sysdata toggles a new target gets, in the kernel's order (§3.5). `release_enabled`
# is left out: the release prefix (`r`, 6.6+) already names the release on every
# datagram, fragments included, and 6.15-6.18 kernels read that toggle back wrong.
WANTED_SYSDATA = ("cpu_nr_enabled", "taskname_enabled", "msgid_enabled")
SYSDATA_SINCE = {"cpu_nr_enabled": (6, 15), "taskname_enabled": (6, 15),
                 "release_enabled": (6, 16), "msgid_enabled": (6, 17)}
_KEY = re.compile(r"^[A-Za-z0-9_.-]+$")


class Method(enum.Enum):
    """How the target reaches the running kernel."""

    CONFIGFS = "configfs"
    """CONFIG_NETCONSOLE_DYNAMIC: mkdir a target, write attributes, enable (§3)."""
    MODULE_PARAM = "module-parameter"
    """(Re)load the module with `netconsole=` (no configfs)."""
    BOOT_PARAM = "boot-parameter"
    """Built in without configfs: only the kernel command line can set a target."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelFacts:
    """What the running kernel offers netconsole, as read through host/."""

    version: KernelVersion | None = None
    builtin: bool | None = None
    """True built in, False a module, None unknown."""
    loaded: bool | None = None
    dynamic: bool | None = None
    """CONFIG_NETCONSOLE_DYNAMIC, None when the config is unknown."""
    configfs: bool = False
    """`/sys/kernel/config/netconsole` exists now."""
    target_files: frozenset[str] | None = None
    """The files of an existing configfs target, which show what this kernel has."""
    userdata_files: frozenset[str] | None = None
    """The entries of that target's `userdata/` (None: no userdata directory)."""
    ipv6: bool | None = None
    """CONFIG_IPV6."""
    available: bool | None = None
    """False when the kernel has no netconsole at all (CONFIG_NETCONSOLE not set)."""

    def at_least(self, major: int, minor: int) -> bool:
        """Version check where an unknown kernel counts as new (a missing file is
        caught when the target directory is created)."""
        return self.version is None or self.version.at_least(major, minor)

    @property
    def method(self) -> Method:
        if self.configfs or self.dynamic is True:
            return Method.CONFIGFS
        if self.builtin is True:
            return Method.BOOT_PARAM
        if self.dynamic is None and self.builtin is None:
            # Unknown config: loading the module may make configfs appear; the
            # apply step looks again after `modprobe netconsole`.
            return Method.CONFIGFS
        return Method.MODULE_PARAM

    @property
    def cmdline_key(self) -> str:
        """A module ignores a bare `netconsole=` on the kernel command line (§2.1)."""
        return "netconsole" if self.builtin else "netconsole.netconsole"


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What a target on this kernel can carry."""

    extended: bool
    release: bool
    userdata: bool
    sysdata: tuple[str, ...] = ()
    max_userdata: int = MAX_USERDATA_ITEMS_OLD
    source: str = "version"
    """`files` (an existing target's files) or `version` (the kernel release)."""


def capabilities(k: KernelFacts) -> Capabilities:
    """Decide from the configfs files when a target exists, else from the version."""
    many = MAX_USERDATA_ITEMS_NEW if k.version is None or k.version.at_least(6, 19) \
        else MAX_USERDATA_ITEMS_OLD
    if k.target_files is not None:
        ud = k.userdata_files
        return Capabilities(
            extended="extended" in k.target_files, release="release" in k.target_files,
            userdata=ud is not None,
            sysdata=tuple(t for t in WANTED_SYSDATA if ud is not None and t in ud),
            max_userdata=many, source="files")
    sysdata = tuple(t for t in WANTED_SYSDATA if k.at_least(*SYSDATA_SINCE[t]))
    return Capabilities(extended=k.at_least(4, 2), release=k.at_least(6, 6),
                        userdata=k.at_least(6, 9), sysdata=sysdata, max_userdata=many)


def userdata_entries(hostname: str | None, labels: tuple[tuple[str, str], ...] = (),
                     ) -> tuple[tuple[str, str], ...]:
    """`hostname=<hostname>` first, then `--label` entries; a label may override it.

    Raises:
        PlanError: a key the kernel would refuse (§3.4) or a value with a newline.
    """
    entries: dict[str, str] = {}
    if hostname:
        entries["hostname"] = hostname
    for key, value in labels:
        if not key or not _KEY.match(key):
            raise PlanError(f"label key {key!r} must be letters, digits, '_', '-' or '.'")
        if len(key) > MAX_USERDATA_KEY:
            raise PlanError(f"label key {key!r} is {len(key)} characters; netconsole allows "
                            f"{MAX_USERDATA_KEY} (mkdir fails with ENAMETOOLONG)")
        if key in SYSDATA_TOGGLES:
            raise PlanError(f"label key {key!r} is a sysdata toggle file of userdata/")
        if "\n" in value:
            raise PlanError(f"label {key}: a value cannot contain a newline (configfs "
                            "keeps only the last line)")
        if len(value.encode()) > MAX_USERDATA_VALUE:
            raise PlanError(f"label {key}: the value is {len(value.encode())} bytes; "
                            f"netconsole keeps at most {MAX_USERDATA_VALUE} (EMSGSIZE)")
        entries[key] = value
    return tuple(entries.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class Format:
    """How one target is set on this kernel and what it carries."""

    method: Method
    caps: Capabilities
    userdata: tuple[tuple[str, str], ...] = ()
    sysdata: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def target_format(kernel: KernelFacts, hostname: str | None,
                  labels: tuple[tuple[str, str], ...] = ()) -> Format:
    """The method, the format flags, and the userdata and sysdata that can be sent.

    Raises:
        PlanError: a bad label, or more userdata entries than the kernel allows.
    """
    notes: list[str] = []
    caps = capabilities(kernel)
    method = kernel.method
    if not caps.extended:
        notes.append("this kernel predates the extended format (4.2): records arrive as "
                     "plain console text")
    elif not caps.release:
        notes.append("this kernel predates the release prefix (6.6)")
    entries = userdata_entries(hostname, labels)
    ud: tuple[tuple[str, str], ...] = ()
    sysdata: tuple[str, ...] = ()
    if method is Method.CONFIGFS and caps.userdata and caps.extended:
        ud = entries
        sysdata = caps.sysdata
        if len(ud) > caps.max_userdata:
            raise PlanError(f"{len(ud)} userdata entries; this kernel allows "
                            f"{caps.max_userdata} (mkdir fails with ENOSPC)")
    elif entries:
        why = ("userdata needs configfs" if method is not Method.CONFIGFS
               else "userdata needs a 6.9+ kernel")
        notes.append(f"{why}: {', '.join(k + '=' + v for k, v in entries)} will not be sent; "
                     "the receiver names this host by its address"
                     + (" and release" if caps.release else ""))
    return Format(method=method, caps=caps, userdata=ud, sysdata=sysdata, notes=tuple(notes))
