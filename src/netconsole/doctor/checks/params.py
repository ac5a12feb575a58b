"""`netconsole=` values on the command line and in modprobe.d, read with the
kernel's own grammar (kernel-netconsole.md §2)."""

from __future__ import annotations

from netconsole.doctor.facts import Facts, Mode, Origin, ParamSource
from netconsole.doctor.findings import Finding, Remedy, Severity
from netconsole.doctor.remedies import distro_of
from netconsole.kernel.dmesg import ERRNO_NAMES, errno_text
from netconsole.kernel.netconsole_param import (
    MAX_PARAM_LENGTH,
    ErrorKind,
    ParsedTarget,
    suggest_fix,
)


def _what(src: ParamSource) -> str:
    """How the title names the value: `netconsole= in <where>`, or `--target`."""
    if src.origin is Origin.ARGUMENT:
        return f"--target '{src.value}'"
    if src.origin is Origin.CMDLINE:
        return "netconsole= in the kernel command line"
    return f"netconsole= in {src.evidence.path}"


def _fix_commands(f: Facts, src: ParamSource, old: str, new: str,
                  new_key: str | None = None) -> tuple[str, ...]:
    """Replace the target `old` by `new` where `src` came from (and the key by
    `new_key`), with this host's tools."""
    value = src.value.replace(old, new, 1)
    if src.origin is Origin.ARGUMENT:
        return (f"netconsole doctor --target '{value}'",)
    if src.origin is Origin.MODPROBE:
        return (f"sudo sed -i 's|{old}|{new}|' {src.evidence.path}",)
    return distro_of(f.os_release).cmdline_replace(f"{src.key}={src.value}",
                                                   f"{new_key or src.key}={value}")


def _parse_error(f: Facts, src: ParamSource, t: ParsedTarget) -> Finding:
    err = t.error
    assert err is not None
    module = f.mode is not Mode.BUILTIN
    if err.kind is ErrorKind.RELEASE_NEEDS_EXTENDED:
        effect = "init fails with " + errno_text(err.errno)
    else:
        effect = "the parser returns -1, so init fails with " + errno_text(err.errno)
    if module:
        effect += ("; `modprobe netconsole` prints \"could not insert 'netconsole': "
                   f"{ERRNO_NAMES[err.errno][1]}\"")
    if f.version is not None and f.version.at_least(6, 7) \
            and f.config_value("CONFIG_NETCONSOLE_DYNAMIC") == "y":
        effect += " (6.x with CONFIG_NETCONSOLE_DYNAMIC skips the bad target and loads the rest)"
    # A `--target` was never tried: a dmesg line about the same text is another attempt.
    logged = () if src.origin is Origin.ARGUMENT else (
        *f.dmesg_evidence("dmesg-parse-error", rest=err.rest),
        *f.dmesg_evidence("dmesg-release-needs-extended"))
    remedies: list[Remedy] = []
    fixed = suggest_fix(t)
    if fixed is not None:
        remedies.append(Remedy(text=f"Write the target as '{fixed}'",
                               commands=_fix_commands(f, src, t.text, fixed)))
    remedies.append(Remedy(
        text="Follow the grammar [+][r][src-port]@[src-ip]/[dev],[tgt-port]@<tgt-ip>/[tgt-mac] "
        "(the '/' after the target IP is mandatory), or let setup write it",
        commands=("sudo netconsole setup RECEIVER:6666",)))
    return Finding(
        code=err.kind.value, severity=Severity.ERROR,
        title=f"{_what(src)} does not parse: {err.explanation}",
        cause=f"The kernel prints `{err.message}` for the target '{t.text}'; {effect}.",
        evidence=(src.evidence, *logged),
        remedies=tuple(remedies), target=t.text)


def check_params(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    for src in f.params:
        bare_ignored = (src.origin is Origin.CMDLINE and src.key == "netconsole"
                        and f.mode is Mode.MODULE)
        if bare_ignored:
            fixed = f"netconsole.netconsole={src.value}"
            out.append(Finding(
                code="param-bare-on-module", severity=Severity.ERROR,
                title="`netconsole=` on the command line is ignored: netconsole is a module",
                cause="Only a built-in netconsole reads `netconsole=` (its __setup hook does "
                "not exist in the module). A module takes its parameter as "
                "`netconsole.netconsole=` on the command line (modprobe reads it from "
                "/proc/cmdline) or from modprobe.d.",
                evidence=(src.evidence, *f.mode_evidence),
                remedies=(
                    Remedy(text=f"Use `{fixed}` on the kernel command line",
                           commands=_fix_commands(f, src, src.value, src.value,
                                                  new_key="netconsole.netconsole")),
                    Remedy(text="Or set it in modprobe.d and load the module at boot",
                           commands=(f"echo 'options netconsole netconsole={src.value}' | "
                                     "sudo tee /etc/modprobe.d/netconsole.conf",
                                     "echo netconsole | sudo tee "
                                     "/etc/modules-load.d/netconsole.conf")),
                ), target=src.value))
        if src.parsed.too_long:
            size = len(src.value.encode("utf-8", "surrogateescape"))
            msg = ("module loading fails with ENOSPC (28) and `netconsole: string doesn't fit "
                   f"in {MAX_PARAM_LENGTH - 1} chars.`" if f.mode is not Mode.BUILTIN else
                   f"the kernel silently keeps the first {MAX_PARAM_LENGTH - 1} bytes "
                   f"('...{src.parsed.kept[-20:]}') and parses that")
            out.append(Finding(
                code="param-too-long", severity=Severity.ERROR,
                title=f"netconsole= is {size} bytes; at most {MAX_PARAM_LENGTH - 1} fit",
                cause=f"All targets together live in a {MAX_PARAM_LENGTH}-byte buffer "
                f"(MAX_PARAM_LENGTH, NUL included); {msg}.",
                evidence=(src.evidence,),
                remedies=(Remedy(text="Leave out defaults (ports 6665/6666, empty source IP) "
                                 "or move targets to configfs"),
                          Remedy(text="Let setup create configfs targets, which have no "
                                 "length limit", commands=("sudo netconsole setup RECEIVER",)),
                          ), target=src.value))
        if bare_ignored:
            continue
        for t in src.parsed.targets:
            if t.error is not None:
                out.append(_parse_error(f, src, t))
            for w in t.warnings:
                out.append(Finding(
                    code="param-whitespace", severity=Severity.WARNING,
                    title="Whitespace in the target port", cause=f"The kernel prints `{w}`.",
                    evidence=(src.evidence,), target=t.text))
            for note in t.notes:
                out.append(Finding(code="param-note", severity=Severity.WARNING,
                                   title=note, evidence=(src.evidence,), target=t.text))
    return out
