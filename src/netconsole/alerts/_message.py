"""What an alert says: the JSON body (and command stdin), and its one-line text."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from netconsole.alerts._rules import AlertRule
from netconsole.incidents import Incident, Severity, Silence


def incident_json(event: Incident | Silence) -> dict[str, Any]:
    """An incident (or silence) as plain JSON values."""
    s = event.sender
    host = {"host": s.host, "port": s.port, "local_port": s.local_port, "name": event.name}
    if isinstance(event, Silence):
        return {**host, "kind": "silence", "severity": event.severity.name.lower(),
                "reason": event.reason.value, "phase": event.phase.value,
                "last_record": event.last_record, "after_incident": event.incident,
                "title": event.title, "at": event.at}
    return {
        **host,
        "key": event.key, "kind": event.kind.value, "severity": event.severity.name.lower(),
        "title": event.title, "culprit": str(event.culprit) if event.culprit else None,
        "fingerprint": event.fingerprint, "release": event.release, "task": event.task,
        "first_received": event.first_received, "last_received": event.last_received,
        "first_seq": event.first_seq, "last_seq": event.last_seq,
        "truncated": event.truncated, "fatal": event.fatal, "count": event.count,
        "lines": event.lines, "frames": [str(f) for f in event.frames], "text": event.text,
        "previous_boot": event.previous_boot,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One message to send for one rule: a crash, on how many hosts.

    Attributes:
        count: incidents this message stands for (the same fingerprint).
        hosts: up to `MAX_HOSTS` host labels among them; `host_count` counts all.
        summary: a later message for a crash already alerted (the window's count).
        suppressed: messages of this rule the rate limit held back since its last one.
        incident: the first incident of the group, as `incident_json` gives it.
    """

    rule: AlertRule
    kind: str
    severity: Severity
    title: str
    culprit: str | None
    fingerprint: str
    count: int
    hosts: tuple[str, ...]
    host_count: int
    first: float
    last: float
    summary: bool = False
    suppressed: int = 0
    incident: dict[str, Any]

    def text(self) -> str:
        """One line for a chat channel (Slack's `text`)."""
        where = ", ".join(self.hosts[:5]) + (" …" if self.host_count > 5 else "")
        head = f"[{self.severity.name.lower()}] {self.kind} on {where}"
        if self.kind == "silence":
            body = "went silent" + (f" after: {self.title}" if self.title else "")
        else:
            body = self.title + (f" — in {self.culprit}" if self.culprit else "")
            if self.incident.get("previous_boot"):
                body += " (in the previous boot, replayed from pstore)"
        text = f"{head}: {body}"
        if self.count > 1 or self.summary:
            span = _span(self.last - self.first)
            text += (f" — {self.count} incident{'s' if self.count != 1 else ''} on "
                     f"{self.host_count} host{'s' if self.host_count != 1 else ''}"
                     f"{' in ' + span if span else ''}")
        if self.suppressed:
            text += f" (+{self.suppressed} alerts held back by the rate limit)"
        return text

    def payload(self) -> dict[str, Any]:
        """The webhook body (and command stdin): the rule's format."""
        if self.rule.format == "slack":
            return {"text": self.text()}
        return {
            "text": self.text(), "rule": self.rule.name, "kind": self.kind,
            "severity": self.severity.name.lower(), "title": self.title,
            "culprit": self.culprit, "fingerprint": self.fingerprint, "count": self.count,
            "hosts": list(self.hosts), "host_count": self.host_count,
            "first": _iso(self.first), "last": _iso(self.last), "summary": self.summary,
            "suppressed": self.suppressed, "incident": self.incident,
        }


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds")


def _span(seconds: float) -> str:
    if seconds < 1:
        return ""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
