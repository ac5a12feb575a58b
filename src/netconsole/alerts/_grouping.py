"""Dedup and rate limits, sans-IO: incidents in, the few messages worth sending out.

Theory of operation
-------------------
Incidents are grouped per rule by fingerprint (the same crash; silences by
their reason), so ten thousand hosts hitting one bug are one group:

    (new) --first match--> WAITING --group_wait--> message(count) --> COOLDOWN
    COOLDOWN --window, more came--> summary message(count) --> COOLDOWN
    COOLDOWN --window, none came--> (forgotten)

Each rule also has a token bucket of `max_per_minute` messages; a message
without a token is not sent but counted, and the rule's next message says how
many were held back. Time is an argument: `offer(event, now)`, `due(now)`,
`next_deadline()`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from netconsole.alerts._message import Alert, incident_json
from netconsole.alerts._rules import SILENCE, AlertRule
from netconsole.incidents import Incident, Phase, Silence, SilencePhase

MAX_HOSTS = 20
"""Host labels a message lists; `host_count` counts them all."""
MAX_GROUPS = 10_000
"""Groups remembered at once; beyond, the oldest in cooldown are forgotten."""


class GroupState(enum.Enum):
    WAITING = "waiting"
    COOLDOWN = "cooldown"


@dataclass(slots=True, kw_only=True)
class _Group:
    rule: AlertRule
    first_event: Incident | Silence
    state: GroupState
    due: float
    first: float
    last: float
    count: int = 0
    hosts: dict[str, None] = field(default_factory=dict)  # ordered set, capped
    host_count: int = 0
    seen: set[str] = field(default_factory=set)  # host addresses, for host_count

    def add(self, event: Incident | Silence, now: float) -> None:
        self.count += 1
        self.last = now
        address = event.sender.host
        if address not in self.seen:
            if len(self.seen) < 100_000:
                self.seen.add(address)
            self.host_count += 1
            if len(self.hosts) < MAX_HOSTS:
                self.hosts[event.name or address] = None


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    suppressed: int = 0


def alertable(event: object) -> bool:
    """Closed incidents and silences that started: what rules look at."""
    if isinstance(event, Incident):
        return event.phase is Phase.CLOSED
    return isinstance(event, Silence) and event.phase is SilencePhase.STARTED


class Grouper:
    """Groups, cooldowns and rate limits for a set of rules."""

    def __init__(self, rules: tuple[AlertRule, ...]) -> None:
        self.rules = rules
        self._groups: dict[tuple[str, str], _Group] = {}
        self._buckets: dict[str, _Bucket] = {}

    def offer(self, event: Incident | Silence, now: float) -> int:
        """Count `event` into every matching rule's group; returns the rules matched."""
        if not alertable(event):
            return 0
        if isinstance(event, Silence):
            kind, fatal, group = SILENCE, False, f"silence:{event.reason.value}"
        else:
            kind, fatal, group = event.kind.value, event.fatal, event.fingerprint
        matched = 0
        for rule in self.rules:
            if not rule.matches(kind=kind, severity=event.severity, fatal=fatal,
                                address=event.sender.host, name=event.name):
                continue
            matched += 1
            key = (rule.name, group)
            g = self._groups.get(key)
            if g is None:
                if len(self._groups) >= MAX_GROUPS:
                    self._evict()
                g = self._groups[key] = _Group(rule=rule, first_event=event,
                                               state=GroupState.WAITING,
                                               due=now + rule.group_wait, first=now, last=now)
            g.add(event, now)
        return matched

    def _evict(self) -> None:
        cooling = [k for k, g in self._groups.items() if g.state is GroupState.COOLDOWN]
        for key in sorted(cooling, key=lambda k: self._groups[k].due)[: MAX_GROUPS // 10 or 1]:
            del self._groups[key]

    def next_deadline(self) -> float | None:
        return min((g.due for g in self._groups.values()), default=None)

    def due(self, now: float) -> list[Alert]:
        """The messages whose time has come (after rate limiting)."""
        out: list[Alert] = []
        for key, g in list(self._groups.items()):
            if g.due > now:
                continue
            if g.state is GroupState.COOLDOWN and g.count == 0:
                del self._groups[key]
                continue
            alert = self._message(g, summary=g.state is GroupState.COOLDOWN, now=now)
            if alert is not None:
                out.append(alert)
            g.state, g.due = GroupState.COOLDOWN, now + g.rule.window
            g.count, g.first, g.host_count = 0, now, 0
            g.hosts.clear()
            g.seen.clear()
        return out

    def _message(self, g: _Group, *, summary: bool, now: float) -> Alert | None:
        rule = g.rule
        bucket = self._buckets.get(rule.name)
        rate = rule.max_per_minute / 60.0
        if bucket is None:
            bucket = self._buckets[rule.name] = _Bucket(tokens=float(rule.max_per_minute),
                                                         at=now)
        bucket.tokens = min(float(rule.max_per_minute), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            return None
        bucket.tokens -= 1.0
        suppressed, bucket.suppressed = bucket.suppressed, 0
        event = g.first_event
        if isinstance(event, Silence):
            kind, title, culprit = SILENCE, event.title or "", None
            fp = f"silence:{event.reason.value}"
        else:
            kind, title = event.kind.value, event.title
            culprit = str(event.culprit) if event.culprit else None
            fp = event.fingerprint
        return Alert(rule=rule, kind=kind, severity=event.severity, title=title,
                     culprit=culprit, fingerprint=fp, count=g.count, hosts=tuple(g.hosts),
                     host_count=g.host_count, first=g.first, last=g.last, summary=summary,
                     suppressed=suppressed, incident=incident_json(event))
