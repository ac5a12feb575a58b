"""Alert rules: which incidents, from which hosts, go where.

Rules come from `[[alerts]]` tables of the listen configuration file:

    [[alerts]]
    name = "crashes"                 # optional; shown in messages and logs
    kinds = ["panic", "oops", "silence"]   # default: every kind
    hosts = ["10.0.0.0/8", "db-*"]   # CIDRs or name/address globs; default: all
    severity = "error"               # minimum: warning, error or critical
    webhook = "http://hooks.example/ci"
    format = "slack"                 # body {"text": ...}; default "json" (full payload)
    command = "/usr/local/bin/page-oncall"   # run with the alert JSON on stdin
    group-wait = 0.25                # seconds to gather the same crash from other hosts
    window = 300                     # then one summary per window, with the count
    max-per-minute = 20              # messages per rule; more are counted, not sent

A rule with neither `webhook` nor `command` is an error, as is an unknown key:
a typo must not silently disable paging.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from netconsole.incidents import Kind, Severity

SILENCE = "silence"
"""The `kinds` entry for "a host went silent" (after a crash, or a chatty host gone quiet)."""

KNOWN_KINDS = frozenset({k.value for k in Kind} | {SILENCE})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RuleError(ValueError):
    """An `[[alerts]]` table that cannot work, and why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRule:
    """One `[[alerts]]` table, validated."""

    name: str
    kinds: frozenset[str] = KNOWN_KINDS
    """Incident kinds (and `silence`) it matches; `panic` also matches fatal reports."""
    networks: tuple[Network, ...] = ()
    globs: tuple[str, ...] = ()
    """Host patterns; a host matches if any network contains its address or any
    glob matches its name or address. Both empty: every host."""
    severity: Severity = Severity.WARNING
    webhook: str | None = None
    format: str = "json"
    command: str | None = None
    group_wait: float = 0.25
    """Seconds the first alert of a crash waits for the same crash on other
    hosts, so a fleet-wide event is one message with a count. Short enough
    for the one-second panic-to-alert budget."""
    window: float = 300.0
    """After a message, the same crash is only counted, and summarised once per window."""
    max_per_minute: int = 20
    """Messages this rule may send per minute; the rest are counted in the next one."""

    def __post_init__(self) -> None:
        if self.webhook is None and self.command is None:
            raise RuleError(f"alert rule {self.name!r}: needs a webhook or a command")
        if self.webhook is not None and urlparse(self.webhook).scheme not in ("http", "https"):
            raise RuleError(f"alert rule {self.name!r}: webhook must be an http(s) URL")
        if self.format not in ("json", "slack"):
            raise RuleError(f"alert rule {self.name!r}: format is json or slack")
        if self.group_wait < 0 or self.window <= 0 or self.max_per_minute < 1:
            raise RuleError(f"alert rule {self.name!r}: group-wait >= 0, window > 0 and "
                            "max-per-minute >= 1")

    def matches_host(self, address: str, name: str | None) -> bool:
        if not self.networks and not self.globs:
            return True
        if self.networks:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                ip = None
            if ip is not None and any(ip in net for net in self.networks):
                return True
        return any(fnmatch.fnmatchcase(candidate, glob) for glob in self.globs
                   for candidate in (address, name) if candidate)

    def matches(self, *, kind: str, severity: Severity, fatal: bool, address: str,
                name: str | None) -> bool:
        kind_ok = kind in self.kinds or (fatal and Kind.PANIC.value in self.kinds)
        return kind_ok and severity >= self.severity and self.matches_host(address, name)


_KEYS = {"name", "kinds", "hosts", "severity", "webhook", "format", "command", "group_wait",
         "window", "max_per_minute"}


def parse_rule(table: dict[str, Any], index: int) -> AlertRule:
    """One `[[alerts]]` table (keys with dashes or underscores) as a rule."""
    if not isinstance(table, dict):
        raise RuleError(f"[[alerts]] #{index + 1} is not a table")
    values = {key.replace("-", "_"): value for key, value in table.items()}
    unknown = set(values) - _KEYS
    name = str(values.get("name") or f"alerts#{index + 1}")
    if unknown:
        raise RuleError(f"alert rule {name!r}: unknown key(s) {', '.join(sorted(unknown))};"
                        f" known: {', '.join(sorted(_KEYS))}")
    kwargs: dict[str, Any] = {"name": name}
    if "kinds" in values:
        kinds = values["kinds"]
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        bad = [k for k in kinds if k not in KNOWN_KINDS]
        if bad:
            raise RuleError(f"alert rule {name!r}: unknown kind(s) {', '.join(bad)};"
                            f" known: {', '.join(sorted(KNOWN_KINDS))}")
        kwargs["kinds"] = frozenset(kinds)
    if "hosts" in values:
        hosts = values["hosts"]
        hosts = [hosts] if isinstance(hosts, str) else list(hosts)
        networks, globs = [], []
        for pattern in hosts:
            try:
                networks.append(ipaddress.ip_network(str(pattern), strict=False))
            except ValueError:
                globs.append(str(pattern))
        kwargs["networks"], kwargs["globs"] = tuple(networks), tuple(globs)
    if "severity" in values:
        try:
            kwargs["severity"] = Severity.parse(str(values["severity"]))
        except ValueError as exc:
            raise RuleError(f"alert rule {name!r}: {exc}") from None
    for key in ("webhook", "format", "command"):
        if key in values:
            kwargs[key] = str(values[key])
    for key, cast in (("group_wait", float), ("window", float), ("max_per_minute", int)):
        if key in values:
            try:
                kwargs[key] = cast(values[key])
            except (TypeError, ValueError):
                raise RuleError(f"alert rule {name!r}: {key.replace('_', '-')} must be a "
                                "number") from None
    return AlertRule(**kwargs)


def parse_rules(tables: Any) -> tuple[AlertRule, ...]:
    """The `alerts` value of the configuration (a list of tables) as rules.

    Raises:
        RuleError: with the rule's name and what to fix.
    """
    if tables is None:
        return ()
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list):
        raise RuleError("alerts must be a list of tables ([[alerts]])")
    return tuple(parse_rule(table, i) for i, table in enumerate(tables))
