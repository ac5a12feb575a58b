"""What reaches netconsole: console loglevel, consoles, oops_only (§2.5, §6)."""

from __future__ import annotations

from netconsole.doctor.facts import Facts, Origin
from netconsole.doctor.findings import Evidence, Finding, Remedy, Severity
from netconsole.doctor.remedies import distro_of

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
DEFAULT_CONSOLE_LOGLEVEL = 7


def _cmdline_tokens(f: Facts, *keys: str) -> list[Evidence]:
    out = []
    for arg in f.cmdline or ():
        if arg.key in keys:
            out.append(Evidence(path="/proc/cmdline", line=1, text=arg.raw))
    return out


def check_console(f: Facts) -> list[Finding]:
    out: list[Finding] = []
    v = f.view
    ignore = _cmdline_tokens(f, "ignore_loglevel", "printk.ignore_loglevel")
    runtime = v.first_line("sys/module/printk/parameters/ignore_loglevel")
    if runtime in ("Y", "1"):
        ignore.append(Evidence(path="/sys/module/printk/parameters/ignore_loglevel", line=1,
                               text=runtime))
    elif runtime in ("N", "0"):
        ignore = []  # runtime value wins over the boot parameter
    text = v.first_line("proc/sys/kernel/printk")
    level: int | None = None
    if text:
        try:
            level = int(text.split()[0])
        except (ValueError, IndexError):
            level = None
    pev = Evidence(path="/proc/sys/kernel/printk", line=1, text=text or "")
    if ignore:
        out.append(Finding(code="console-ignore-loglevel", severity=Severity.INFO,
                           title="ignore_loglevel is on: every message reaches netconsole",
                           evidence=tuple(ignore)))
    elif level is None:
        out.append(Finding(code="console-loglevel-unknown", severity=Severity.UNKNOWN,
                           title="The console loglevel is unknown (/proc/sys/kernel/printk "
                           "missing or unreadable)"))
    elif level < DEFAULT_CONSOLE_LOGLEVEL:
        dropped = ", ".join(f"{i} {LEVELS[i]}" for i in range(max(level, 0), 8))
        origin = _cmdline_tokens(f, "quiet", "loglevel", "debug")
        lowering = [e.text for e in origin if e.text == "quiet" or e.text.startswith("loglevel=")]
        distro = distro_of(f.os_release)
        at_boot = Remedy(
            text="Or at boot: drop " + ", ".join(f"`{t}`" for t in lowering)
            + " from the kernel command line",
            commands=distro.cmdline_remove(*lowering)) if lowering else Remedy(
            text="Or at boot: add `ignore_loglevel` to the kernel command line (every "
            "console then prints every level)", commands=distro.cmdline_add("ignore_loglevel"))
        why = ""
        if any(e.text == "quiet" for e in origin):
            why = " `quiet` on the command line sets it to 4 at boot."
        if any(e.text.startswith("loglevel=") for e in origin):
            why += " `loglevel=` on the command line sets it at boot."
        out.append(Finding(
            code="console-loglevel-low", severity=Severity.WARNING,
            title=f"console_loglevel is {level}: messages of level {level}-7 never reach "
            "netconsole",
            cause=f"printk gives consoles only messages below console_loglevel, so {dropped} "
            "are filtered for every console, netconsole included (extended receivers see "
            "seq gaps). A test like `echo '<6>test' > /dev/kmsg` does not arrive. Oops and "
            "panic output still goes out: they raise the loglevel to 15." + why,
            evidence=(pev, *origin),
            remedies=(Remedy(text="Raise it now", commands=("sudo dmesg -n 8",)),
                      Remedy(text="Keep it after reboot",
                             commands=("echo 'kernel.printk = 8 4 1 7' | sudo tee "
                                       "/etc/sysctl.d/90-netconsole.conf",
                                       "sudo sysctl --system")),
                      at_boot)))
    else:
        out.append(Finding(code="console-loglevel-ok", severity=Severity.OK,
                           title=f"console_loglevel is {level}", evidence=(pev,)))
    out += _consoles(f)
    oops = v.first_line("sys/module/netconsole/parameters/oops_only")
    oops_ev = [Evidence(path="/sys/module/netconsole/parameters/oops_only", line=1, text=oops)] \
        if oops in ("Y", "1") else []
    for rel, d in f.modprobe:
        if any(k == "oops_only" and val in ("1", "Y", "y") for k, val in d.options):
            oops_ev.append(Evidence(path="/" + rel, line=d.line, text=d.text))
    oops_ev += [e for e in _cmdline_tokens(f, "netconsole.oops_only")
                if e.text.split("=", 1)[-1] in ("1", "Y", "y")]
    if oops_ev:
        out.append(Finding(
            code="oops-only", severity=Severity.WARNING,
            title="oops_only is set: only oops and panic output is sent",
            cause="With oops_only=1 netconsole sends only while oops_in_progress; ordinary "
            "messages, and WARN() splats, are not sent.", evidence=tuple(oops_ev),
            remedies=(Remedy(text="Turn it off", commands=(
                "echo 0 | sudo tee /sys/module/netconsole/parameters/oops_only",)),)))
    return out


def _consoles(f: Facts) -> list[Finding]:
    lines = f.view.lines("proc/consoles")
    if lines is None:
        return []
    net = [(i, ln) for i, ln in enumerate(lines, start=1) if ln.startswith("netcon")]
    expected = any((t.origin is Origin.CONFIGFS and t.enabled) or
                   (t.origin in (Origin.CMDLINE, Origin.MODPROBE) and f.loaded)
                   for t in f.targets)
    if net:
        flags = [ln[ln.find("(") + 1: ln.find(")")] for _, ln in net if "(" in ln]
        enabled = all("E" in fl for fl in flags) if flags else True
        return [Finding(
            code="console-registered" if enabled else "console-not-enabled",
            severity=Severity.OK if enabled else Severity.ERROR,
            title="netconsole is a registered printk console" if enabled else
            "netconsole's console is registered but not enabled",
            evidence=tuple(Evidence(path="/proc/consoles", line=i, text=ln.rstrip())
                           for i, ln in net))]
    if expected:
        return [Finding(
            code="console-not-registered", severity=Severity.ERROR,
            title="An enabled target exists but /proc/consoles has no netcon0/netcon_ext0",
            cause="Without the console, printk never hands netconsole a message.",
            evidence=(Evidence(path="/proc/consoles", text="no netcon entry"),))]
    return []
