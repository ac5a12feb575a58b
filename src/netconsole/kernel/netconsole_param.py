"""The `netconsole=` parameter grammar, parsed exactly as the kernel parses it.

Theory of operation (kernel-netconsole.md §2.1-§2.3):

    netconsole=[+][r][src-port]@[src-ip]/[<dev>],[tgt-port]@<tgt-ip>/[tgt-macaddr]

Targets are separated by `;` (`strsep`), and the whole value lives in a
256-byte buffer (`MAX_PARAM_LENGTH`), so at most 255 bytes survive. netconsole
strips a leading `+` (4.2+) and then `r` (6.6+); the rest goes to
`netpoll_parse_options()` (3.x-6.15) or `netconsole_parser_cmdline()` (6.16+),
which walk the string delimiter by delimiter. Whatever the failure, the parser
prints `couldn't parse config at '<rest>'!`, where `<rest>` is the text at the
cursor: the whole remaining string when a delimiter is missing, only the field
when the field itself is bad (the parser has already cut the string at the
delimiter by then). It returns -1, which module init hands back as -EPERM.

`parse_param` reproduces that walk, the exact message of the era, and the errno,
so the doctor can print the line the kernel printed (or would print) and say
why. `format_param` is its inverse for canonical values.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from netconsole.kernel.addresses import BROADCAST_MAC, canonical_ip, in6_pton, mac_pton, parse_ip
from netconsole.kernel.version import KernelVersion

# §2.1: `static char config[MAX_PARAM_LENGTH]`; strscpy keeps 255 bytes + NUL.
MAX_PARAM_LENGTH = 256
# §2.1: dev_name[IFNAMSIZ]; longer names are silently cut to 15 characters.
IFNAMSIZ = 16
DEFAULT_LOCAL_PORT = 6665
DEFAULT_REMOTE_PORT = 6666
DEFAULT_DEV = "eth0"

EPERM = 1
EINVAL = 22
ENOSPC = 28


class ParseEra(enum.Enum):
    """Which code parses the string, which decides the message prefix (§2.2)."""

    V2_6 = "2.6"
    """~2.6.2x: `netconsole: couldn't parse config at <rest>!` (no quotes)."""
    NETPOLL = "netpoll"
    """3.x-6.15: `netpoll: netconsole: couldn't parse config at '<rest>'!`."""
    NETCONSOLE = "netconsole"
    """6.16+: `netconsole: netconsole: couldn't parse config at '<rest>'!`."""


def era_for(version: KernelVersion | None) -> ParseEra:
    """The parser era of a kernel; unknown kernels are treated as the newest."""
    if version is None or version.at_least(6, 16):
        return ParseEra.NETCONSOLE
    if version.at_least(3, 0):
        return ParseEra.NETPOLL
    return ParseEra.V2_6


def message_prefix(era: ParseEra) -> str:
    """The prefix of every netpoll/netconsole per-target message of an era."""
    return {
        ParseEra.V2_6: "netconsole: ",
        ParseEra.NETPOLL: "netpoll: netconsole: ",
        ParseEra.NETCONSOLE: "netconsole: netconsole: ",
    }[era]


class ErrorKind(enum.Enum):
    """Where the kernel's parser gave up. Values are stable finding codes."""

    EMPTY_TARGET = "param-empty-target"
    MISSING_AT = "param-missing-at"
    BAD_LOCAL_PORT = "param-bad-local-port"
    MISSING_SLASH_AFTER_LOCAL_IP = "param-missing-slash-after-local-ip"
    BAD_LOCAL_IP = "param-bad-local-ip"
    MISSING_COMMA = "param-missing-comma"
    BAD_DEV_MAC = "param-bad-dev-mac"
    MISSING_AT_REMOTE = "param-missing-at-remote"
    BAD_REMOTE_PORT = "param-bad-remote-port"
    MISSING_SLASH_AFTER_REMOTE_IP = "param-missing-slash"
    MISSING_REMOTE_IP = "param-missing-remote-ip"
    BAD_REMOTE_IP = "param-bad-remote-ip"
    IPV6_UNSUPPORTED = "param-ipv6-unsupported"
    FAMILY_MISMATCH = "param-family-mismatch"
    BAD_REMOTE_MAC = "param-bad-remote-mac"
    RELEASE_NEEDS_EXTENDED = "param-release-needs-extended"


_EXPLAIN: dict[ErrorKind, str] = {
    ErrorKind.EMPTY_TARGET: "an empty target (a stray or trailing ';' between targets)",
    ErrorKind.MISSING_AT: "no '@' after the source port: every target needs "
    "'[src-port]@[src-ip]/[dev],'",
    ErrorKind.BAD_LOCAL_PORT: "the source port is not a decimal number from 0 to 65535",
    ErrorKind.MISSING_SLASH_AFTER_LOCAL_IP: "no '/' after the source IP",
    ErrorKind.BAD_LOCAL_IP: "the source IP is not a valid IPv4 or IPv6 address",
    ErrorKind.MISSING_COMMA: "no ',' after the interface: the local and remote halves "
    "are separated by a comma",
    ErrorKind.BAD_DEV_MAC: "the interface field contains ':' so it is read as a MAC "
    "address (6.15+), and it is not one",
    ErrorKind.MISSING_AT_REMOTE: "no '@' between the target port and the target IP",
    ErrorKind.BAD_REMOTE_PORT: "the target port is not a decimal number from 0 to 65535",
    ErrorKind.MISSING_SLASH_AFTER_REMOTE_IP: "the '/' after the target IP is missing; it "
    "is mandatory even without a MAC address (write '@10.0.0.2/')",
    ErrorKind.MISSING_REMOTE_IP: "the target IP is empty; it is the one mandatory field",
    ErrorKind.BAD_REMOTE_IP: "the target IP is not a valid IPv4 or IPv6 address",
    ErrorKind.IPV6_UNSUPPORTED: "an IPv6 address, but this kernel has no IPv6 "
    "(CONFIG_IPV6 off, or older than 3.9)",
    ErrorKind.FAMILY_MISMATCH: "the source and target IPs are of different families "
    "(one IPv4, one IPv6)",
    ErrorKind.BAD_REMOTE_MAC: "the text after the target IP's '/' must be a MAC address "
    "xx:xx:xx:xx:xx:xx",
    ErrorKind.RELEASE_NEEDS_EXTENDED: "'r' (prepend the release) needs the extended "
    "format: write '+r', with '+' first",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetParams:
    """One parsed target. None means "field left empty, kernel default applies"."""

    extended: bool = False
    release: bool = False
    local_port: int | None = None
    local_ip: str | None = None
    dev_name: str | None = None
    dev_mac: str | None = None
    """6.15+: the egress device chosen by MAC (the dev field contained ':')."""
    remote_port: int | None = None
    remote_ip: str
    remote_mac: str | None = None

    @property
    def ipv6(self) -> bool:
        """True for an IPv6 target (the kernel keeps one family per target)."""
        return ":" in self.remote_ip

    @property
    def effective_local_port(self) -> int:
        return DEFAULT_LOCAL_PORT if self.local_port is None else self.local_port

    @property
    def effective_remote_port(self) -> int:
        return DEFAULT_REMOTE_PORT if self.remote_port is None else self.remote_port

    @property
    def effective_dev(self) -> str:
        """The interface name netpoll will look up (`eth0` when empty)."""
        if self.dev_mac is not None:
            return self.dev_mac
        return DEFAULT_DEV if self.dev_name is None else self.dev_name

    @property
    def effective_remote_mac(self) -> str:
        return BROADCAST_MAC if self.remote_mac is None else self.remote_mac


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseError:
    """Why the kernel refuses one target, and exactly what it prints."""

    kind: ErrorKind
    rest: str
    """The `<rest>` in `couldn't parse config at '<rest>'!`."""
    message: str
    """The exact kernel line (without a trailing newline)."""
    errno: int
    """What module init returns: EPERM (1) for a parse failure, EINVAL (22) for `r`."""

    @property
    def explanation(self) -> str:
        """The cause in plain words."""
        return _EXPLAIN[self.kind]


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedTarget:
    """The outcome for one `;`-separated target."""

    text: str
    params: TargetParams | None = None
    error: ParseError | None = None
    warnings: tuple[str, ...] = ()
    """Exact kernel lines that do not stop parsing (`warning: whitespace ...`)."""
    notes: tuple[str, ...] = ()
    """Things the kernel accepts silently but that probably are not what was meant."""
    messages: tuple[str, ...] = ()
    """Every line the kernel prints for this target, in order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedParam:
    """The outcome for a whole `netconsole=` value."""

    value: str
    targets: tuple[ParsedTarget, ...] = ()
    too_long: bool = False
    """True when the value does not fit the 256-byte buffer (255 bytes + NUL)."""
    kept: str = ""
    """What the kernel keeps of the value (the first 255 bytes when too long)."""

    @property
    def ok(self) -> bool:
        """True when every target parses (and the value fits)."""
        return not self.too_long and all(t.error is None for t in self.targets)

    @property
    def errors(self) -> tuple[ParseError, ...]:
        return tuple(t.error for t in self.targets if t.error is not None)


def _kstrtou16(text: str) -> int | None:
    """`kstrtou16(s, 10, ...)`: optional '+', decimal digits, optional one '\\n'."""
    m = re.fullmatch(r"\+?([0-9]+)\n?", text)
    if m is None:
        return None
    value = int(m.group(1))
    return value if value <= 0xFFFF else None


def _simple_strtol(text: str) -> int:
    """Pre-3.9 ports: `simple_strtol` takes leading digits and ignores junk (§2.1)."""
    m = re.match(r"\s*([+-]?[0-9]+)", text)
    return int(m.group(1)) & 0xFFFF if m else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Features:
    """What the parser of a given kernel knows (§1, §2)."""

    extended_flag: bool = True
    """'+' is stripped (4.2+); before that it is read as part of the port."""
    release_flag: bool = True
    """'r' is stripped (6.6+); before that it breaks the source port."""
    strict_ports: bool = True
    """kstrtou16 (3.9+) instead of simple_strtol."""
    ipv6: bool = True
    """IPv6 targets parse (3.9+ and CONFIG_IPV6)."""
    dev_by_mac: bool = True
    """A dev field with ':' is a MAC (6.15+)."""
    interface_name_banner: bool = True
    """6.15+ banner: `interface name '%s'` + `local ethernet address`."""
    extended_default: bool = False
    """CONFIG_NETCONSOLE_EXTENDED_LOG=y: targets are extended without '+'."""
    release_default: bool = False
    """CONFIG_NETCONSOLE_PREPEND_RELEASE=y."""

    @classmethod
    def for_kernel(
        cls,
        version: KernelVersion | None,
        *,
        config_ipv6: bool | None = None,
        extended_default: bool = False,
        release_default: bool = False,
    ) -> Features:
        """Features of a kernel version (None: the newest) and its config."""

        def at(major: int, minor: int) -> bool:
            return version is None or version.at_least(major, minor)

        return cls(
            extended_flag=at(4, 2),
            release_flag=at(6, 6),
            strict_ports=at(3, 9),
            ipv6=at(3, 9) and config_ipv6 is not False,
            dev_by_mac=at(6, 15),
            interface_name_banner=at(6, 15),
            extended_default=extended_default,
            release_default=release_default,
        )


def _fail(kind: ErrorKind, rest: str, era: ParseEra, errno: int = EPERM) -> ParseError:
    if era is ParseEra.V2_6:
        msg = f"netconsole: couldn't parse config at {rest}!"
    else:
        msg = f"{message_prefix(era)}couldn't parse config at '{rest}'!"
    return ParseError(kind=kind, rest=rest, message=msg, errno=errno)


def banner(params: TargetParams, era: ParseEra, features: Features) -> tuple[str, ...]:
    """The lines printed after a successful parse (§2.4), in order."""
    p = message_prefix(era)
    fam = "IPv6" if params.ipv6 else "IPv4"
    zero = "::" if params.ipv6 else "0.0.0.0"
    local_ip = canonical_ip(params.local_ip) if params.local_ip else zero
    lines = [f"{p}local port {params.effective_local_port}"]
    if features.strict_ports:  # 3.9+ wording; before: `local IP %pI4`
        lines.append(f"{p}local {fam} address {local_ip}")
    else:
        lines.append(f"{p}local IP {local_ip}")
    dev = "" if params.dev_mac is not None else (params.dev_name or DEFAULT_DEV)
    if features.interface_name_banner:
        lines.append(f"{p}interface name '{dev}'")
        lines.append(f"{p}local ethernet address '{params.dev_mac or BROADCAST_MAC}'")
    else:
        lines.append(f"{p}interface '{dev}'")
    lines.append(f"{p}remote port {params.effective_remote_port}")
    remote_ip = canonical_ip(params.remote_ip)
    if features.strict_ports:
        lines.append(f"{p}remote {fam} address {remote_ip}")
    else:
        lines.append(f"{p}remote IP {remote_ip}")
    lines.append(f"{p}remote ethernet address {params.effective_remote_mac}")
    return tuple(lines)


def parse_target(
    text: str, version: KernelVersion | None = None, *, features: Features | None = None
) -> ParsedTarget:
    """Parse one target the way `alloc_param_target` + the option parser do.

    Args:
        text: one target, without `;`.
        version: the kernel that will parse it (None: the newest).
        features: overrides what `version` implies (config-dependent defaults).

    Returns:
        A ParsedTarget carrying either `params` or `error`, never both.
    """
    era = era_for(version)
    feat = features or Features.for_kernel(version)
    cur = text
    extended = feat.extended_default
    release = feat.release_default
    if feat.extended_flag and cur.startswith("+"):
        extended = True
        cur = cur[1:]
    if feat.release_flag and cur.startswith("r"):
        if not extended:
            msg = (
                "netconsole: Netconsole configuration error. "
                "Release feature requires extended log message"
            )
            err = ParseError(
                kind=ErrorKind.RELEASE_NEEDS_EXTENDED, rest=cur, message=msg, errno=EINVAL
            )
            return ParsedTarget(text=text, error=err, messages=(msg,))
        release = True
        cur = cur[1:]
    notes: list[str] = []
    if not feat.extended_flag and text.startswith("+"):
        notes.append("'+' is not understood before 4.2: it is read as part of the port "
                     "and the target is not extended")
    warnings: list[str] = []

    def failed(kind: ErrorKind, rest: str) -> ParsedTarget:
        if kind is ErrorKind.BAD_LOCAL_PORT and rest == "" and text == "":
            kind = ErrorKind.EMPTY_TARGET
        err = _fail(kind, rest, era)
        return ParsedTarget(
            text=text, error=err, warnings=tuple(warnings), notes=tuple(notes),
            messages=(*warnings, err.message),
        )

    def port(field_text: str) -> int | None:
        if feat.strict_ports:
            return _kstrtou16(field_text)
        return _simple_strtol(field_text)

    local_port: int | None = None
    if not cur.startswith("@"):
        at = cur.find("@")
        if at < 0:
            return failed(ErrorKind.EMPTY_TARGET if cur == "" else ErrorKind.MISSING_AT, cur)
        local_port = port(cur[:at])
        if local_port is None:
            return failed(ErrorKind.BAD_LOCAL_PORT, cur[:at])
        cur = cur[at:]
    cur = cur[1:]

    local_ip: str | None = None
    local_family: int | None = None
    if not cur.startswith("/"):
        slash = cur.find("/")
        if slash < 0:
            return failed(ErrorKind.MISSING_SLASH_AFTER_LOCAL_IP, cur)
        fam = parse_ip(cur[:slash], ipv6_supported=feat.ipv6)
        if fam < 0:
            bad = ErrorKind.IPV6_UNSUPPORTED if in6_pton(cur[:slash]) else ErrorKind.BAD_LOCAL_IP
            return failed(bad, cur[:slash])
        local_ip, local_family = cur[:slash], fam
        cur = cur[slash:]
    cur = cur[1:]

    dev_name: str | None = None
    dev_mac: str | None = None
    if not cur.startswith(","):
        comma = cur.find(",")
        if comma < 0:
            return failed(ErrorKind.MISSING_COMMA, cur)
        dev = cur[:comma]
        if feat.dev_by_mac and ":" in dev:
            dev_mac = mac_pton(dev)
            if dev_mac is None:
                return failed(ErrorKind.BAD_DEV_MAC, dev)
        else:
            dev_name = dev[: IFNAMSIZ - 1]
            if len(dev) > IFNAMSIZ - 1:
                notes.append(f"interface name '{dev}' is cut to 15 characters: '{dev_name}'")
            if ":" in dev:
                notes.append("choosing the interface by MAC address needs 6.15+; this "
                             "kernel takes the text as an interface name")
        cur = cur[comma:]
    cur = cur[1:]

    remote_port: int | None = None
    if not cur.startswith("@"):
        at = cur.find("@")
        if at < 0:
            return failed(ErrorKind.MISSING_AT_REMOTE, cur)
        if cur[:1] in (" ", "\t"):
            warnings.append(f"{message_prefix(era)}warning: whitespace is not allowed")
        remote_port = port(cur[:at])
        if remote_port is None:
            return failed(ErrorKind.BAD_REMOTE_PORT, cur[:at])
        cur = cur[at:]
    cur = cur[1:]

    slash = cur.find("/")
    if slash < 0:
        return failed(ErrorKind.MISSING_SLASH_AFTER_REMOTE_IP, cur)
    remote_text = cur[:slash]
    fam = parse_ip(remote_text, ipv6_supported=feat.ipv6)
    if fam < 0:
        if remote_text == "":
            return failed(ErrorKind.MISSING_REMOTE_IP, remote_text)
        bad = ErrorKind.IPV6_UNSUPPORTED if in6_pton(remote_text) else ErrorKind.BAD_REMOTE_IP
        return failed(bad, remote_text)
    if local_family is not None and local_family != fam:
        return failed(ErrorKind.FAMILY_MISMATCH, remote_text)
    cur = cur[slash + 1 :]

    remote_mac: str | None = None
    if cur:
        remote_mac = mac_pton(cur)
        if remote_mac is None:
            return failed(ErrorKind.BAD_REMOTE_MAC, cur)
        if len(cur) > 17:
            notes.append(f"text after the MAC address is ignored: '{cur[17:]}'")

    params = TargetParams(
        extended=extended, release=release, local_port=local_port, local_ip=local_ip,
        dev_name=dev_name, dev_mac=dev_mac, remote_port=remote_port, remote_ip=remote_text,
        remote_mac=remote_mac,
    )
    return ParsedTarget(
        text=text, params=params, warnings=tuple(warnings), notes=tuple(notes),
        messages=(*warnings, *banner(params, era, feat)),
    )


def parse_param(
    value: str, version: KernelVersion | None = None, *, features: Features | None = None
) -> ParsedParam:
    """Parse a whole `netconsole=` value: cut to 255 bytes, split on `;`.

    An empty value means "no boot targets" (the module still loads).
    """
    raw = value.encode("utf-8", "surrogateescape")
    too_long = len(raw) >= MAX_PARAM_LENGTH
    kept = raw[: MAX_PARAM_LENGTH - 1].decode("utf-8", "surrogateescape") if too_long else value
    if kept == "":
        return ParsedParam(value=value, too_long=too_long, kept=kept)
    targets = tuple(parse_target(t, version, features=features) for t in kept.split(";"))
    return ParsedParam(value=value, targets=targets, too_long=too_long, kept=kept)


def format_target(params: TargetParams) -> str:
    """The canonical `netconsole=` text of one target (inverse of parse_target)."""
    out = ("+" if params.extended else "") + ("r" if params.release else "")
    out += "" if params.local_port is None else str(params.local_port)
    out += "@" + (params.local_ip or "") + "/"
    out += params.dev_mac or params.dev_name or ""
    out += "," + ("" if params.remote_port is None else str(params.remote_port))
    out += "@" + params.remote_ip + "/" + (params.remote_mac or "")
    return out


def format_param(targets: list[TargetParams] | tuple[TargetParams, ...]) -> str:
    """Several targets joined with `;`."""
    return ";".join(format_target(t) for t in targets)


def suggest_fix(parsed: ParsedTarget) -> str | None:
    """A corrected target string for the common mistakes, or None."""
    err = parsed.error
    if err is None:
        return None
    text = parsed.text
    if err.kind is ErrorKind.MISSING_SLASH_AFTER_REMOTE_IP:
        candidate = text + "/"
    elif err.kind is ErrorKind.RELEASE_NEEDS_EXTENDED:
        # `r+...` (wrong order) and `r...` (no '+') both become `+r...`.
        candidate = "+r" + (text[2:] if text.startswith("r+") else text[1:])
    else:
        return None
    return candidate if parse_target(candidate).error is None else None
