"""`netconsole doctor`: why netconsole does not work on a host, and what to do.

`diagnose(view)` gathers facts from a `HostView` (live or snapshot), runs every
check, and returns a `Report`. A check that crashes on data nobody foresaw
becomes a `doctor-check-failed` UNKNOWN finding rather than a traceback, because
a partial or hand-written snapshot must never stop the rest of the report.
"""

from __future__ import annotations

import traceback

from netconsole.doctor.checks import CHECKS
from netconsole.doctor.facts import Facts, gather
from netconsole.doctor.findings import (
    Evidence,
    Finding,
    Remedy,
    Report,
    Severity,
    Summary,
    TargetSummary,
)
from netconsole.host.view import HostView
from netconsole.kernel.addresses import BROADCAST_MAC
from netconsole.kernel.netconsole_param import DEFAULT_LOCAL_PORT, DEFAULT_REMOTE_PORT

__all__ = ["Evidence", "Finding", "Remedy", "Report", "Severity", "Summary", "TargetSummary",
           "diagnose", "summarize"]


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """Drop dmesg findings whose every line is already cited by a specific finding."""
    cited = {(e.path, e.line) for f in findings if not f.code.startswith(("dmesg-", "user-"))
             for e in f.evidence if e.line is not None}
    out = []
    for f in findings:
        if f.code.startswith(("dmesg-", "user-")) and f.evidence and all(
                (e.path, e.line) in cited for e in f.evidence):
            continue
        out.append(f)
    return out


def summarize(f: Facts) -> Summary:
    """The few facts a person wants first."""
    return Summary(
        kernel=str(f.version) if f.version else "unknown",
        netconsole=f.mode.value + ("" if f.loaded is None else
                                   (", loaded" if f.loaded else ", not loaded")),
        config="/" + f.config_path if f.config_path else "unknown",
        os=f.os_release.get("PRETTY_NAME") or None,
        targets=tuple(TargetSummary(
            name=t.name, origin=t.origin.value, dev=t.dev, local_ip=t.local_ip,
            local_port=DEFAULT_LOCAL_PORT if t.local_port is None else t.local_port,
            remote_ip=t.remote_ip,
            remote_port=DEFAULT_REMOTE_PORT if t.remote_port is None else t.remote_port,
            remote_mac=t.remote_mac or BROADCAST_MAC, extended=t.extended, release=t.release,
            enabled=t.enabled, evidence=t.evidence) for t in f.targets))


def diagnose(view: HostView, *, targets: list[str] | None = None, source: str = "live") -> Report:
    """Run every check over `view`.

    Args:
        view: the host (live or snapshot).
        targets: extra `netconsole=` target strings to evaluate (`--target`).
        source: what to call the host in the report.
    """
    facts = gather(view, targets)
    findings: list[Finding] = []
    for check in CHECKS:
        try:
            findings += check(facts)
        except Exception as exc:  # one broken check must not hide the rest
            findings.append(Finding(
                code="doctor-check-failed", severity=Severity.UNKNOWN,
                title=f"{check.__name__} could not run: {exc!r}",
                cause=traceback.format_exc(limit=3)))
    findings = _dedupe(findings)
    findings.sort(key=lambda x: x.severity.rank)
    return Report(source=source, facts=summarize(facts), findings=tuple(findings))
