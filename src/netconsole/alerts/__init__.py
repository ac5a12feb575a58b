"""Alerts: incidents → webhooks and commands, with dedup by fingerprint and rate limits.

`parse_rules` reads the `[[alerts]]` tables of the listen configuration;
`Grouper` (sans-IO) turns incidents into the few messages worth sending;
`AlertManager` sends them from its own thread, with retries. See
docs/incidents.md for the configuration.
"""

from netconsole.alerts._delivery import AlertManager, with_rules
from netconsole.alerts._grouping import Grouper, alertable
from netconsole.alerts._message import Alert, incident_json
from netconsole.alerts._rules import SILENCE, AlertRule, RuleError, parse_rule, parse_rules

__all__ = [
    "SILENCE",
    "Alert",
    "AlertManager",
    "AlertRule",
    "Grouper",
    "RuleError",
    "alertable",
    "incident_json",
    "parse_rule",
    "parse_rules",
    "with_rules",
]
