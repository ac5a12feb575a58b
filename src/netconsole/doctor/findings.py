"""What the doctor says: findings with evidence, cause and ranked remedies.

A `Finding` is the unit both renderers show and `--json` serializes
(`dataclasses.asdict`). Codes are stable strings listed in docs/doctor.md, so
scripts can match on them; wording may improve, codes do not change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.Enum):
    """How much a finding matters. Any ERROR means netconsole will not work."""

    ERROR = "error"
    """netconsole will not work (or nothing will arrive) until this is fixed."""
    WARNING = "warning"
    """It works, but messages will be missing or it will break on the next change."""
    UNKNOWN = "unknown"
    """The data to decide was not available (partial snapshot, no permission)."""
    INFO = "info"
    """A fact worth knowing; nothing to do."""
    OK = "ok"
    """A check that passed, kept so the report shows what was verified."""

    @property
    def rank(self) -> int:
        """Sort key: most important first."""
        return list(Severity).index(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """One thing the doctor read: a file (and line), or a netlink view."""

    path: str
    line: int | None = None
    text: str = ""

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.text}" if self.text else where


@dataclass(frozen=True, slots=True, kw_only=True)
class Remedy:
    """One way out, with the exact commands. Remedies are listed best first."""

    text: str
    commands: tuple[str, ...] = ()
    recommended: bool = True
    """False for a remedy listed for completeness but advised against (says why)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    code: str
    severity: Severity
    title: str
    cause: str = ""
    evidence: tuple[Evidence, ...] = ()
    remedies: tuple[Remedy, ...] = ()
    target: str | None = None
    """The netconsole target (or interface) the finding is about, if any."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetSummary:
    """One target the doctor found, with the kernel's defaults filled in."""

    name: str
    origin: str
    """`cmdline`, `modprobe.d`, `configfs`, `dmesg` or `argument`."""
    dev: str
    """Interface name, or a MAC for 6.15+ MAC-bound targets."""
    local_ip: str | None
    """None: netpoll takes the interface's first address."""
    local_port: int
    remote_ip: str
    remote_port: int
    remote_mac: str
    extended: bool | None
    release: bool | None
    enabled: bool | None
    """configfs `enabled`; None when only the kernel knows (boot/modprobe targets)."""
    evidence: Evidence

    @property
    def label(self) -> str:
        ip = f"[{self.remote_ip}]" if ":" in self.remote_ip else self.remote_ip
        return f"{self.name} ({self.origin}) {self.dev} -> {ip}:{self.remote_port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """The few facts a person wants first."""

    kernel: str = "unknown"
    netconsole: str = "unknown"
    """`module, loaded`, `built-in`, `missing`..."""
    config: str = "unknown"
    """Where the kernel config was read."""
    os: str | None = None
    """PRETTY_NAME from /etc/os-release."""
    targets: tuple[TargetSummary, ...] = ()

    def rows(self) -> list[tuple[str, str]]:
        """(label, text) lines for the text report."""
        out = [("kernel", self.kernel), ("netconsole", self.netconsole),
               ("config", self.config),
               ("targets", "; ".join(t.label for t in self.targets) or "none")]
        if self.os:
            out.append(("os", self.os))
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Everything the doctor concluded about one host."""

    source: str
    """`live` or the snapshot path."""
    facts: Summary = field(default_factory=Summary)
    """A short summary: kernel, netconsole state, targets."""
    findings: tuple[Finding, ...] = ()

    @property
    def works(self) -> bool:
        """True when no finding says netconsole will not work."""
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when netconsole will work, 1 when it will not (2 is the CLI's)."""
        return 0 if self.works else 1

    def codes(self) -> list[str]:
        return [f.code for f in self.findings]

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]
