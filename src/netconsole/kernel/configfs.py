"""The configfs target model (`/sys/kernel/config/netconsole/<target>/`, §3).

A target directory is a set of small text files. `parse_target_dir` turns their
contents (as a mapping attribute -> text, None when the file is missing) into a
`ConfigfsTarget`; `check_target` lists what the kernel would refuse or what will
not do what the user expects. No I/O here: `host/` reads the files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from netconsole.kernel.addresses import BROADCAST_MAC, mac_pton, parse_ip
from netconsole.kernel.version import KernelVersion

CONFIGFS_ROOT = "sys/kernel/config/netconsole"
SYSDATA_TOGGLES = ("cpu_nr_enabled", "taskname_enabled", "release_enabled", "msgid_enabled")
# §3.4: 256-byte entry, 200-byte value buffer -> key <= 53, value <= 199 bytes.
MAX_USERDATA_KEY = 53
MAX_USERDATA_VALUE = 199
MAX_USERDATA_ITEMS_OLD = 16
MAX_USERDATA_ITEMS_NEW = 256


def _bool(text: str | None) -> bool | None:
    """`kstrtobool`-style reading of a `%d\\n` attribute."""
    if text is None:
        return None
    t = text.strip().lower()
    if t in ("1", "y", "yes", "on", "true"):
        return True
    if t in ("0", "n", "no", "off", "false"):
        return False
    return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _str(text: str | None) -> str | None:
    if text is None:
        return None
    return text.rstrip("\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigfsTarget:
    """One configfs target. Every field is None when its file was not readable."""

    name: str
    enabled: bool | None = None
    extended: bool | None = None
    release: bool | None = None
    dev_name: str | None = None
    local_port: int | None = None
    remote_port: int | None = None
    local_ip: str | None = None
    remote_ip: str | None = None
    local_mac: str | None = None
    remote_mac: str | None = None
    transmit_errors: int | None = None
    userdata: dict[str, str] = field(default_factory=dict)
    sysdata: dict[str, bool | None] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    """Each attribute's text as read, for evidence."""

    @property
    def is_cmdline(self) -> bool:
        """`cmdline<N>` directories attach to boot targets (6.7+, §3.2)."""
        return self.name.startswith("cmdline") and self.name[7:].isdigit()

    @property
    def ipv6(self) -> bool:
        return self.remote_ip is not None and ":" in self.remote_ip


def parse_target_dir(
    name: str,
    files: dict[str, str | None],
    userdata: dict[str, str | None] | None = None,
) -> ConfigfsTarget:
    """Build a target from its attribute files.

    Args:
        name: the directory name.
        files: attribute -> file text (None or absent: not readable). Sysdata
            toggles use their file names (`cpu_nr_enabled`, ...).
        userdata: user key -> the text of `userdata/<key>/value`.
    """
    raw = {k: v for k, v in files.items() if v is not None}
    return ConfigfsTarget(
        name=name,
        enabled=_bool(files.get("enabled")),
        extended=_bool(files.get("extended")),
        release=_bool(files.get("release")),
        dev_name=_str(files.get("dev_name")),
        local_port=_int(files.get("local_port")),
        remote_port=_int(files.get("remote_port")),
        local_ip=_str(files.get("local_ip")),
        remote_ip=_str(files.get("remote_ip")),
        local_mac=_str(files.get("local_mac")),
        remote_mac=_str(files.get("remote_mac")),
        transmit_errors=_int(files.get("transmit_errors")),
        userdata={k: (_str(v) or "") for k, v in (userdata or {}).items()},
        sysdata={k: _bool(files.get(k)) for k in SYSDATA_TOGGLES if k in files},
        raw=raw,
    )


class ProblemKind(enum.Enum):
    """What can be wrong with a configfs target. Values are finding codes."""

    DISABLED = "configfs-target-disabled"
    RELEASE_NEEDS_EXTENDED = "configfs-release-needs-extended"
    NO_REMOTE_IP = "configfs-no-remote-ip"
    BAD_IP = "configfs-bad-ip"
    FAMILY_MISMATCH = "configfs-family-mismatch"
    BAD_MAC = "configfs-bad-mac"
    TRANSMIT_ERRORS = "configfs-transmit-errors"
    USERDATA_KEY_TOO_LONG = "configfs-userdata-key-too-long"
    USERDATA_VALUE_TOO_LONG = "configfs-userdata-value-too-long"
    USERDATA_TOO_MANY = "configfs-userdata-too-many"
    EXTRADATA_ON_BASIC = "configfs-extradata-on-basic"
    RELEASE_ENABLED_UNRELIABLE = "configfs-release-enabled-unreliable"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    kind: ProblemKind
    attribute: str
    """The attribute file it is about (relative to the target directory)."""
    detail: str


def check_target(t: ConfigfsTarget, version: KernelVersion | None = None) -> list[Problem]:
    """What the kernel will refuse about a target, or what will surprise the user."""
    out: list[Problem] = []
    if t.enabled is False:
        out.append(Problem(kind=ProblemKind.DISABLED, attribute="enabled",
                           detail=f"target {t.name} exists but enabled is 0: nothing is sent"))
    if t.release and t.extended is False:
        out.append(Problem(
            kind=ProblemKind.RELEASE_NEEDS_EXTENDED, attribute="release",
            detail="release=1 without extended=1: enabling fails with EINVAL and "
            "'netconsole: Not enabling netconsole. Release feature requires extended "
            "log message'"))
    fams: dict[str, int] = {}
    for attr in ("local_ip", "remote_ip"):
        value = getattr(t, attr)
        if value is None or value == "":
            continue
        fam = parse_ip(value)
        if fam < 0:
            out.append(Problem(kind=ProblemKind.BAD_IP, attribute=attr,
                               detail=f"{attr} '{value}' is not an IP address"))
        else:
            fams[attr] = fam
    if t.remote_ip is not None and t.remote_ip in ("", "0.0.0.0", "::"):
        out.append(Problem(kind=ProblemKind.NO_REMOTE_IP, attribute="remote_ip",
                           detail="remote_ip is not set: there is nowhere to send to"))
    elif (len(fams) == 2 and fams["local_ip"] != fams["remote_ip"]
          and t.local_ip not in ("0.0.0.0", "::")):
        out.append(Problem(kind=ProblemKind.FAMILY_MISMATCH, attribute="local_ip",
                           detail=f"local_ip {t.local_ip} and remote_ip {t.remote_ip} are "
                           "of different families"))
    for attr in ("remote_mac",):
        value = getattr(t, attr)
        if value is not None and mac_pton(value) is None:
            out.append(Problem(kind=ProblemKind.BAD_MAC, attribute=attr,
                               detail=f"{attr} '{value}' is not a MAC address"))
    if t.transmit_errors:
        out.append(Problem(
            kind=ProblemKind.TRANSMIT_ERRORS, attribute="transmit_errors",
            detail=f"{t.transmit_errors} messages were dropped at the sender (skb "
            "allocation failures or NET_XMIT_DROP)"))
    for key, value in t.userdata.items():
        if len(key) > MAX_USERDATA_KEY:
            out.append(Problem(kind=ProblemKind.USERDATA_KEY_TOO_LONG,
                               attribute=f"userdata/{key}",
                               detail=f"key is {len(key)} characters, the limit is 53"))
        if len(value.encode("utf-8", "surrogateescape")) > MAX_USERDATA_VALUE:
            out.append(Problem(kind=ProblemKind.USERDATA_VALUE_TOO_LONG,
                               attribute=f"userdata/{key}/value",
                               detail="value is longer than 199 bytes (EMSGSIZE)"))
    limit = MAX_USERDATA_ITEMS_OLD
    if version is None or version.at_least(6, 19):
        limit = MAX_USERDATA_ITEMS_NEW
    if len(t.userdata) > limit:
        out.append(Problem(kind=ProblemKind.USERDATA_TOO_MANY, attribute="userdata",
                           detail=f"{len(t.userdata)} keys, this kernel allows {limit}"))
    active = [k for k, v in t.sysdata.items() if v] + [k for k, v in t.userdata.items() if v]
    if active and t.extended is False:
        out.append(Problem(
            kind=ProblemKind.EXTRADATA_ON_BASIC, attribute="extended",
            detail="userdata/sysdata is set but the target is basic (extended=0): "
            "it is only sent by extended targets"))
    if t.sysdata.get("release_enabled") is not None and t.sysdata.get("taskname_enabled") \
            == t.sysdata.get("release_enabled") and version is not None \
            and version.at_least(6, 15) and not version.at_least(6, 19):
        out.append(Problem(
            kind=ProblemKind.RELEASE_ENABLED_UNRELIABLE, attribute="userdata/release_enabled",
            detail="on some 6.15-6.18 kernels release_enabled reads back the taskname bit; "
            "the value shown may not be the real one"))
    return out


def is_broadcast(mac: str | None) -> bool:
    return mac is None or mac.lower() == BROADCAST_MAC
