"""Facts gathered once from a HostView and shared by every check.

Reading is done here, once, so each check is a pure function of `Facts` and
the same evidence (path, line) is quoted everywhere. Anything not readable is
None: "unknown", which checks report as such.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from netconsole.doctor.findings import Evidence
from netconsole.host.netinfo import Link
from netconsole.host.view import HostView, NetViews
from netconsole.kernel import dmesg as kdmesg
from netconsole.kernel.cmdline import CmdlineArg, parse_cmdline
from netconsole.kernel.configfs import (
    CONFIGFS_ROOT,
    SYSDATA_TOGGLES,
    ConfigfsTarget,
    parse_target_dir,
)
from netconsole.kernel.modprobe import ModprobeDirective, ModprobeKind, parse_modprobe_conf
from netconsole.kernel.netconsole_param import Features, ParsedParam, TargetParams, parse_param
from netconsole.kernel.version import KernelVersion, parse_proc_version, parse_release

MODPROBE_DIRS = ("etc/modprobe.d", "run/modprobe.d", "usr/local/lib/modprobe.d",
                 "lib/modprobe.d", "usr/lib/modprobe.d")


class Mode(enum.Enum):
    """How netconsole exists in this kernel."""

    BUILTIN = "built-in"
    MODULE = "module"
    MISSING = "missing"
    UNKNOWN = "unknown"


class Origin(enum.Enum):
    CMDLINE = "cmdline"
    MODPROBE = "modprobe.d"
    CONFIGFS = "configfs"
    DMESG = "dmesg"
    ARGUMENT = "argument"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A netconsole target, whatever it was configured with."""

    origin: Origin
    name: str
    dev: str
    """Interface name, or a MAC for 6.15+ MAC-bound targets."""
    remote_ip: str
    local_ip: str | None = None
    remote_mac: str | None = None
    local_port: int | None = None
    remote_port: int | None = None
    extended: bool | None = None
    release: bool | None = None
    enabled: bool | None = None
    """configfs `enabled`; None for boot/modprobe targets (known only from dmesg)."""
    evidence: Evidence
    source: ParamSource | None = None
    """The `netconsole=` value it came from (command line, modprobe.d, `--target`)."""
    text: str | None = None
    """The target as written in `source`, to replace it there."""

    @property
    def ipv6(self) -> bool:
        return ":" in self.remote_ip


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamSource:
    """One `netconsole=` value found somewhere, parsed for this kernel."""

    origin: Origin
    key: str
    """`netconsole`, `netconsole.netconsole` or a modprobe option name."""
    value: str
    parsed: ParsedParam
    evidence: Evidence


@dataclass(slots=True, kw_only=True)
class Facts:
    view: HostView
    version: KernelVersion | None = None
    version_evidence: Evidence | None = None
    config: dict[str, str] | None = None
    config_path: str | None = None
    config_lines: dict[str, int] = field(default_factory=dict)
    mode: Mode = Mode.UNKNOWN
    mode_evidence: list[Evidence] = field(default_factory=list)
    loaded: bool | None = None
    cmdline: tuple[CmdlineArg, ...] | None = None
    cmdline_text: str | None = None
    params: list[ParamSource] = field(default_factory=list)
    modprobe: list[tuple[str, ModprobeDirective]] = field(default_factory=list)
    configfs_mounted: bool | None = None
    configfs: list[ConfigfsTarget] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    dmesg_path: str | None = None
    dmesg: list[kdmesg.Match] | None = None
    extra_log: list[tuple[str, kdmesg.Match]] = field(default_factory=list)
    kallsyms: list[str] | None = None
    net: NetViews = field(default_factory=NetViews)
    os_release: dict[str, str] = field(default_factory=dict)

    def config_value(self, key: str) -> str | None:
        """`y`, `m`, `n` (not set) or a string; None when the config is unknown."""
        if self.config is None:
            return None
        return self.config.get(key, "n")

    def config_evidence(self, key: str) -> Evidence | None:
        if self.config_path is None:
            return None
        value = self.config_value(key)
        text = f"# {key} is not set" if value == "n" else f"{key}={value}"
        return Evidence(path=HostView.show(self.config_path),
                        line=self.config_lines.get(key), text=text)

    def features(self) -> Features:
        return Features.for_kernel(
            self.version,
            config_ipv6=None if self.config is None else self.config_value("CONFIG_IPV6") != "n",
            extended_default=self.config_value("CONFIG_NETCONSOLE_EXTENDED_LOG") == "y",
            release_default=self.config_value("CONFIG_NETCONSOLE_PREPEND_RELEASE") == "y",
        )

    def dmesg_evidence(self, code: str, **fields: str) -> list[Evidence]:
        """dmesg lines of one catalogue code (matching `fields`), plus the
        `cleaning up` / `Not enabling ...` lines that follow them (their consequence)."""
        out: list[Evidence] = []
        matches = self.dmesg or []
        for i, m in enumerate(matches):
            if m.code != code or any(m.fields.get(k) != v for k, v in fields.items()):
                continue
            out.append(Evidence(path=self.dmesg_path or "dmesg", line=m.line, text=m.text))
            for nxt in matches[i + 1: i + 3]:
                if nxt.code in ("dmesg-cleaning-up", "dmesg-cmdline-not-enabled") \
                        and nxt.line - m.line <= 3:
                    out.append(Evidence(path=self.dmesg_path or "dmesg", line=nxt.line,
                                        text=nxt.text))
        return out

    def link(self, dev: str) -> Link | None:
        if ":" in dev and len(dev) == 17:
            return self.net.link_by_mac(dev)
        return self.net.link(dev)


def _parse_config(text: str) -> tuple[dict[str, str], dict[str, int]]:
    values: dict[str, str] = {}
    lines: dict[str, int] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"^(CONFIG_\w+)=(.*)$", line.strip())
        if m:
            values[m.group(1)] = m.group(2).strip('"')
            lines[m.group(1)] = i
            continue
        m = re.match(r"^# (CONFIG_\w+) is not set", line.strip())
        if m:
            values[m.group(1)] = "n"
            lines[m.group(1)] = i
    return values, lines


def _kernel(f: Facts) -> None:
    v = f.view
    rel = v.first_line("proc/sys/kernel/osrelease")
    if rel:
        f.version = parse_release(rel)
        f.version_evidence = Evidence(path="/proc/sys/kernel/osrelease", line=1, text=rel)
    text = v.first_line("proc/version")
    if f.version is None and text:
        f.version = parse_proc_version(text)
        if f.version is not None:
            f.version_evidence = Evidence(path="/proc/version", line=1, text=text)
    if f.version is None:
        text = v.first_line("uname.txt")  # a hand-written snapshot may just say `uname -r`
        if text:
            words = text.split()
            cand = [w for w in words if re.match(r"^\d+\.\d+", w)]
            f.version = parse_release(cand[0]) if cand else None
            if f.version is not None:
                f.version_evidence = Evidence(path="/uname.txt", line=1, text=text)
    candidates = ["proc/config.gz"]
    if f.version is not None:
        candidates.append(f"boot/config-{f.version.release}")
    candidates += [f"boot/{n}" for n in (v.listdir("boot") or []) if n.startswith("config-")]
    candidates.append("config.txt")
    for rel in candidates:
        text = v.read(rel)
        if text and "CONFIG_" in text:
            f.config, f.config_lines = _parse_config(text)
            f.config_path = rel
            break
    value = f.config_value("CONFIG_NETCONSOLE")
    if value == "y":
        f.mode = Mode.BUILTIN
    elif value == "m":
        f.mode = Mode.MODULE
    elif value == "n":
        f.mode = Mode.MISSING
    ev = f.config_evidence("CONFIG_NETCONSOLE")
    if ev:
        f.mode_evidence.append(ev)
    modules = v.lines("proc/modules")
    if modules is not None:
        for i, line in enumerate(modules, start=1):
            if line.split(" ", 1)[0] == "netconsole":
                f.loaded = True
                f.mode = Mode.MODULE
                f.mode_evidence.append(Evidence(path="/proc/modules", line=i, text=line))
                break
        else:
            f.loaded = False
    if v.is_dir("sys/module/netconsole"):
        if f.mode is Mode.UNKNOWN or f.mode is Mode.MISSING:
            f.mode = Mode.MODULE if v.exists("sys/module/netconsole/initstate") else Mode.BUILTIN
        f.loaded = True
        f.mode_evidence.append(Evidence(path="/sys/module/netconsole", text="exists"))
    if f.version is not None and f.mode in (Mode.UNKNOWN, Mode.MISSING):
        base = f"lib/modules/{f.version.release}"
        for name, mode in (("modules.builtin", Mode.BUILTIN), ("modules.dep", Mode.MODULE)):
            for i, line in enumerate(v.lines(f"{base}/{name}") or [], start=1):
                if "/netconsole.ko" in line.split(":", 1)[0]:
                    f.mode = mode
                    f.mode_evidence.append(Evidence(path=HostView.show(f"{base}/{name}"),
                                                    line=i, text=line.strip()))
                    break
            if f.mode is mode:
                break
    if f.mode is Mode.BUILTIN and f.loaded is None:
        f.loaded = True


def _os_release(f: Facts) -> None:
    for line in f.view.lines("etc/os-release") or []:
        key, sep, value = line.partition("=")
        if sep:
            f.os_release[key.strip()] = value.strip().strip('"')


def _params(f: Facts, extra: list[str]) -> None:
    v = f.view
    feat = f.features()
    text = v.read("proc/cmdline")
    if text is not None:
        f.cmdline_text = text.strip()
        f.cmdline = parse_cmdline(f.cmdline_text)
        for arg in f.cmdline:
            if arg.key in ("netconsole", "netconsole.netconsole") and arg.value is not None:
                f.params.append(ParamSource(
                    origin=Origin.CMDLINE, key=arg.key, value=arg.value,
                    parsed=parse_param(arg.value, f.version, features=feat),
                    evidence=Evidence(path="/proc/cmdline", line=1, text=arg.raw)))
    for d in MODPROBE_DIRS:
        for name in v.listdir(d) or []:
            if not name.endswith(".conf"):
                continue
            rel = f"{d}/{name}"
            content = v.read(rel)
            if content is None:
                continue
            for directive in parse_modprobe_conf(content):
                f.modprobe.append((rel, directive))
                if directive.kind is not ModprobeKind.OPTIONS:
                    continue
                for key, value in directive.options:
                    if key == "netconsole" and value is not None:
                        f.params.append(ParamSource(
                            origin=Origin.MODPROBE, key=key, value=value,
                            parsed=parse_param(value, f.version, features=feat),
                            evidence=Evidence(path=HostView.show(rel), line=directive.line,
                                              text=directive.text)))
    # `--target` values go through the same grammar, so a typo is reported
    # exactly like one on the command line instead of being dropped.
    for text in extra:
        f.params.append(ParamSource(
            origin=Origin.ARGUMENT, key="--target", value=text,
            parsed=parse_param(text, f.version, features=feat),
            evidence=Evidence(path="--target", text=text)))


def _configfs(f: Facts) -> None:
    v = f.view
    names = v.listdir(CONFIGFS_ROOT)
    if names is None:
        f.configfs_mounted = False if v.is_dir("sys/kernel/config") else None
        return
    f.configfs_mounted = True
    for name in names:
        base = f"{CONFIGFS_ROOT}/{name}"
        if not v.is_dir(base):
            continue
        files: dict[str, str | None] = {}
        for attr in v.listdir(base) or []:
            if attr != "userdata":
                files[attr] = v.read(f"{base}/{attr}")
        userdata: dict[str, str | None] = {}
        for entry in v.listdir(f"{base}/userdata") or []:
            if entry in SYSDATA_TOGGLES:
                files[entry] = v.read(f"{base}/userdata/{entry}")
            elif v.is_dir(f"{base}/userdata/{entry}"):
                userdata[entry] = v.read(f"{base}/userdata/{entry}/value")
        f.configfs.append(parse_target_dir(name, files, userdata))


def _logs(f: Facts) -> None:
    got = f.view.dmesg()
    if got is not None:
        f.dmesg_path, lines = got
        f.dmesg = kdmesg.scan(lines)
    for rel, lines in f.view.extra_logs():
        for m in kdmesg.scan(lines):
            f.extra_log.append((rel, m))
    f.kallsyms = f.view.kallsyms()


def _targets(f: Facts) -> None:
    n = 0
    arguments = [src for src in f.params if src.origin is Origin.ARGUMENT]
    for src in f.params:
        if src.origin is Origin.ARGUMENT:
            continue  # named after their position below
        if src.origin is Origin.CMDLINE and src.key == "netconsole" and f.mode is Mode.MODULE:
            continue  # a module ignores the bare form; reported by the params check
        if src.origin is Origin.MODPROBE and f.mode is Mode.BUILTIN:
            continue
        for t in src.parsed.targets:
            if t.params is None:
                continue
            f.targets.append(_from_params(
                t.params, src, t.text, name=f"cmdline{n}" if src.origin is Origin.CMDLINE
                else f"{src.origin.value}#{n}"))
            n += 1
    for ct in f.configfs:
        if ct.remote_ip is None:
            continue
        path = HostView.show(f"{CONFIGFS_ROOT}/{ct.name}")
        f.targets.append(Target(
            origin=Origin.CONFIGFS, name=ct.name, dev=ct.dev_name or "eth0",
            remote_ip=ct.remote_ip, local_ip=ct.local_ip if ct.local_ip not in
            ("0.0.0.0", "::", "") else None, remote_mac=ct.remote_mac,
            local_port=ct.local_port, remote_port=ct.remote_port, extended=ct.extended,
            release=ct.release, enabled=ct.enabled,
            evidence=Evidence(path=path, text=f"enabled={ct.raw.get('enabled', '?').strip()}")))
    for i, src in enumerate(arguments):
        for t in src.parsed.targets:
            if t.params is not None:
                f.targets.append(_from_params(t.params, src, t.text, name=f"argument{i}"))
    if f.targets or f.dmesg is None or arguments:
        # A `--target` that does not parse is the target in question (the params
        # check reports it); an old attempt in dmesg would answer another question.
        return
    # Nothing configured persistently: the last attempt is in dmesg (a manual
    # `modprobe netconsole netconsole=...`), so check what it tried. A retry to
    # the same receiver replaces the earlier attempt: its ports are the ones in use.
    last: dict[tuple[str | None, str], kdmesg.Banner] = {}
    for b in kdmesg.banners(f.dmesg):
        if b.remote_ip is not None:
            last[(b.dev, b.remote_ip)] = b
    for i, ((_, remote_ip), b) in enumerate(last.items()):
        local_ip = b.local_ip if b.local_ip not in (None, "0.0.0.0", "::") else None
        f.targets.append(Target(
            origin=Origin.DMESG, name=f"dmesg{i}",
            dev=b.dev or b.dev_mac or "eth0", remote_ip=remote_ip, local_ip=local_ip,
            remote_mac=b.remote_mac, local_port=b.local_port, remote_port=b.remote_port,
            evidence=Evidence(path=f.dmesg_path or "dmesg", line=b.first_line,
                              text="banner of a target netconsole tried to set up")))


def _from_params(p: TargetParams, src: ParamSource, text: str, *, name: str) -> Target:
    return Target(
        origin=src.origin, name=name, dev=p.effective_dev, remote_ip=p.remote_ip,
        local_ip=p.local_ip, remote_mac=p.remote_mac, local_port=p.local_port,
        remote_port=p.remote_port, extended=p.extended, release=p.release,
        evidence=src.evidence, source=src, text=text)


def gather(view: HostView, extra_targets: list[str] | None = None) -> Facts:
    """Read everything the checks need from `view`, once."""
    f = Facts(view=view)
    _kernel(f)
    _os_release(f)
    _params(f, list(extra_targets or []))
    _configfs(f)
    _logs(f)
    f.net = view.net()
    _targets(f)
    return f
