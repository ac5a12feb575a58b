"""The kernel: version, config options, and how netconsole exists in it (§2.6, §8.1-2)."""

from __future__ import annotations

from netconsole.doctor.facts import Facts, Mode, Origin
from netconsole.doctor.findings import Evidence, Finding, Remedy, Severity
from netconsole.doctor.remedies import forward_command
from netconsole.kernel.modprobe import ModprobeKind


def check_kernel(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    if f.version is None:
        out.append(Finding(
            code="kernel-version-unknown", severity=Severity.UNKNOWN,
            title="The kernel release could not be read",
            cause="Neither /proc/sys/kernel/osrelease nor /proc/version was readable, so "
            "version-dependent checks (netpoll, parameter grammar) assume the newest kernel.",
            remedies=(Remedy(text="Add the kernel release to the snapshot",
                             commands=("uname -r > proc/sys/kernel/osrelease",)),)))
    if f.config is None:
        out.append(Finding(
            code="kernel-config-unknown", severity=Severity.UNKNOWN,
            title="The kernel configuration could not be read",
            cause="No /proc/config.gz and no /boot/config-<release>: CONFIG_NETCONSOLE and "
            "friends are unknown.",
            remedies=(Remedy(text="Copy the config into the snapshot",
                             commands=("cp /boot/config-$(uname -r) boot/",)),)))
    elif f.mode is Mode.MISSING:
        out.append(Finding(
            code="kernel-no-netconsole", severity=Severity.ERROR,
            title="This kernel has no netconsole",
            cause="CONFIG_NETCONSOLE is not set, and no netconsole module is present: the "
            "kernel cannot send its log over the network by itself.",
            evidence=tuple(f.mode_evidence),
            remedies=(
                Remedy(text="Use a kernel built with CONFIG_NETCONSOLE=m (every major "
                       "distribution kernel has it), or rebuild this one with it"),
                Remedy(text="Send the kernel log from userspace instead (no kernel change; "
                       "cannot send from a dying kernel, ships pstore after reboot)",
                       commands=(forward_command(f.targets),)),
            )))
    if f.config is not None and f.mode is not Mode.MISSING:
        dyn = f.config_value("CONFIG_NETCONSOLE_DYNAMIC")
        if dyn == "n":
            out.append(Finding(
                code="kernel-no-dynamic", severity=Severity.INFO,
                title="netconsole has no configfs interface (CONFIG_NETCONSOLE_DYNAMIC off)",
                cause="Targets can only come from the netconsole= parameter; changing them "
                "means reloading the module or rebooting.",
                evidence=tuple(e for e in [f.config_evidence("CONFIG_NETCONSOLE_DYNAMIC")]
                               if e)))
        for key, code, what in (
                ("CONFIG_NETCONSOLE_EXTENDED_LOG", "kernel-extended-log",
                 "every target is extended by default"),
                ("CONFIG_NETCONSOLE_PREPEND_RELEASE", "kernel-prepend-release",
                 "every target prepends the kernel release by default")):
            if f.config_value(key) == "y":
                ev = f.config_evidence(key)
                out.append(Finding(code=code,
                                   severity=Severity.INFO, title=f"{key}=y: {what}",
                                   evidence=(ev,) if ev else ()))
        if f.config_value("CONFIG_PRINTK_CALLER") == "y":
            ev = f.config_evidence("CONFIG_PRINTK_CALLER")
            out.append(Finding(
                code="kernel-printk-caller", severity=Severity.INFO,
                title="CONFIG_PRINTK_CALLER=y: extended headers carry caller=T<pid>/C<cpu>",
                evidence=(ev,) if ev else ()))
    out += _modprobe(f)
    return out


def _modprobe(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    for rel, d in f.modprobe:
        ev = Evidence(path="/" + rel, line=d.line, text=d.text)
        if d.kind is ModprobeKind.INSTALL and any(
                w in d.text for w in ("/bin/true", "/bin/false", "/usr/bin/true")):
            out.append(Finding(
                code="modprobe-install-disabled", severity=Severity.ERROR,
                title="modprobe.d replaces loading netconsole with a no-op",
                cause="An `install netconsole /bin/true` (or false) line makes "
                "`modprobe netconsole` do nothing, so the module never loads.",
                evidence=(ev,),
                remedies=(Remedy(text=f"Remove that line from /{rel}",
                                 commands=(f"sudo sed -i '{d.line}d' /{rel}",)),)))
        elif d.kind is ModprobeKind.BLACKLIST:
            out.append(Finding(
                code="modprobe-blacklist", severity=Severity.INFO,
                title="netconsole is blacklisted in modprobe.d",
                cause="`blacklist` only stops loading by alias; an explicit `modprobe "
                "netconsole` or a modules-load.d entry still loads it.",
                evidence=(ev,)))
        elif d.kind is ModprobeKind.OPTIONS and f.mode is Mode.BUILTIN:
            out.append(Finding(
                code="modprobe-options-builtin", severity=Severity.WARNING,
                title="modprobe.d options for netconsole, but netconsole is built in",
                cause="A built-in netconsole never goes through modprobe, so these options "
                "are ignored. Put the value on the kernel command line as netconsole=.",
                evidence=(ev,)))
    has_persistent = any(s.origin in (Origin.MODPROBE, Origin.CMDLINE) for s in f.params)
    failed_at_load = any(m.code in ("dmesg-cleaning-up", "dmesg-parse-error")
                         for m in f.dmesg or [])
    if f.mode is Mode.MODULE and f.loaded is False and has_persistent and not failed_at_load:
        out.append(Finding(
            code="module-not-loaded", severity=Severity.ERROR,
            title="netconsole is configured but the module is not loaded",
            cause="Options in modprobe.d or on the command line only apply when the module "
            "loads; nothing loads it at boot.",
            evidence=tuple(f.mode_evidence),
            remedies=(Remedy(text="Load it now and at every boot",
                             commands=("sudo modprobe netconsole",
                                       "echo netconsole | sudo tee "
                                       "/etc/modules-load.d/netconsole.conf")),)))
    return out
