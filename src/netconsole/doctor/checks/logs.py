"""dmesg (and pasted terminal output) mapped to causes (§5.1, §6.1)."""

from __future__ import annotations

from netconsole.doctor.facts import Facts
from netconsole.doctor.findings import Evidence, Finding, Remedy, Severity
from netconsole.doctor.remedies import distro_of
from netconsole.kernel import dmesg as kdmesg
from netconsole.kernel.configfs import CONFIGFS_ROOT
from netconsole.kernel.dmesg import Outcome, errno_text


def _remedies(f: Facts, code: str, lines: list[kdmesg.Match]) -> tuple[Remedy, ...]:
    """What to do about log lines of one code, naming the target or interface."""
    if code == "dmesg-logging-stopped":
        dev = lines[-1].fields.get("dev", "")
        names = [t.name for t in f.configfs if t.dev_name == dev] or ["TARGET"]
        return (Remedy(
            text="Re-enable the target once the interface is back (or point it at the master)",
            commands=tuple(f"echo 1 | sudo tee /{CONFIGFS_ROOT}/{n}/enabled" for n in names)),)
    if code == "dmesg-carrier-timeout":
        return (Remedy(text="Give the link more time at boot (kernel command line)",
                       commands=distro_of(f.os_release).cmdline_add(
                           "netpoll.carrier_timeout=10")),)
    if code == "dmesg-cmdline-not-enabled":
        bases = dict.fromkeys(f"/{CONFIGFS_ROOT}/{m.fields.get('target', 'cmdline0')}"
                              for m in lines)
        return (Remedy(text="Fix the cause above, then enable the boot target through configfs",
                       commands=tuple(c for b in bases for c in (
                           f"sudo mkdir -p {b}", f"echo 1 | sudo tee {b}/enabled"))),)
    return ()


def check_logs(f: Facts) -> list[Finding]:
    if f.dmesg is None and not f.extra_log:
        return [Finding(code="dmesg-unknown", severity=Severity.UNKNOWN,
                        title="The kernel log is not available (no dmesg.txt, or no "
                        "permission to read it)")]
    out: list[Finding] = []
    path = f.dmesg_path or "dmesg"
    matches = [(path, m) for m in f.dmesg or []] + [(r, m) for r, m in f.extra_log]
    last_success = max((m.line for p, m in matches if p == path
                        and m.entry.outcome is Outcome.SUCCESS), default=0)
    grouped: dict[tuple[str, str], list[tuple[str, kdmesg.Match]]] = {}
    for p, m in matches:
        if m.entry.outcome is Outcome.INFO and m.code != "dmesg-forcing-up":
            continue
        key = (m.code, m.fields.get("dev", ""))
        grouped.setdefault(key, []).append((p, m))
    for (code, dev), items in grouped.items():
        entry = items[0][1].entry
        ev = tuple(Evidence(path=p, line=m.line, text=m.text) for p, m in items[-5:])
        if entry.outcome is Outcome.SUCCESS:
            out.append(Finding(code=code, severity=Severity.OK,
                               title=f"dmesg: {entry.cause}", evidence=ev))
            continue
        superseded = all(p == path and m.line < last_success for p, m in items)
        if entry.outcome is Outcome.FAILURE:
            sev = Severity.WARNING if superseded else Severity.ERROR
        elif entry.outcome is Outcome.WARNING:
            sev = Severity.WARNING
        else:
            sev = Severity.INFO
        cause = entry.cause[0].upper() + entry.cause[1:] + "."
        if entry.errno is not None:
            cause += f" Error: {errno_text(entry.errno)}."
        if superseded and entry.outcome is Outcome.FAILURE:
            cause += " netconsole started successfully later in this boot."
        title = f"dmesg: {items[-1][1].text}"
        out.append(Finding(code=code, severity=sev, title=title, cause=cause, evidence=ev,
                           remedies=_remedies(f, code, [m for _, m in items]),
                           target=dev or None))
    return out
