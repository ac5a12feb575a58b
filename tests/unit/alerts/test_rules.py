"""Alert rules from `[[alerts]]` tables."""

from __future__ import annotations

import pytest

from netconsole.alerts import AlertRule, RuleError, parse_rules
from netconsole.incidents import Severity


def test_parse_rules_reads_every_key() -> None:
    (rule,) = parse_rules([{
        "name": "pager", "kinds": ["panic", "silence"], "hosts": ["10.0.0.0/8", "db-*"],
        "severity": "critical", "webhook": "http://127.0.0.1:9/hook", "format": "slack",
        "command": "cat > /dev/null", "group-wait": 0.5, "window": 60, "max-per-minute": 3,
    }])
    assert rule.name == "pager" and rule.kinds == {"panic", "silence"}
    assert [str(n) for n in rule.networks] == ["10.0.0.0/8"] and rule.globs == ("db-*",)
    assert rule.severity is Severity.CRITICAL and rule.format == "slack"
    assert (rule.group_wait, rule.window, rule.max_per_minute) == (0.5, 60.0, 3)


def test_parse_rules_defaults_match_everything() -> None:
    (rule,) = parse_rules({"command": "true"})
    assert rule.name == "alerts#1" and rule.severity is Severity.WARNING
    assert rule.matches(kind="warning", severity=Severity.WARNING, fatal=False,
                        address="192.0.2.1", name=None)
    assert parse_rules(None) == ()


@pytest.mark.parametrize(("table", "message"), [
    ({"name": "x"}, "needs a webhook or a command"),
    ({"command": "true", "kinds": ["panik"]}, "unknown kind"),
    ({"command": "true", "severity": "bad"}, "unknown severity"),
    ({"command": "true", "webhok": "http://x"}, "unknown key"),
    ({"webhook": "ftp://x"}, "http"),
    ({"command": "true", "format": "xml"}, "json or slack"),
    ({"command": "true", "window": "soon"}, "window must be a number"),
    ({"command": "true", "max-per-minute": 0}, "max-per-minute"),
])
def test_parse_rules_explains_mistakes(table: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        parse_rules([table])


def test_rule_matches_hosts_by_cidr_or_glob() -> None:
    (rule,) = parse_rules([{"command": "true", "hosts": ["10.1.0.0/16", "db-*", "2001:db8::/32"]}])

    def ok(address: str, name: str | None = None) -> bool:
        return rule.matches(kind="oops", severity=Severity.CRITICAL, fatal=False,
                            address=address, name=name)

    assert ok("10.1.2.3") and ok("2001:db8::7") and ok("192.0.2.1", "db-417")
    assert not ok("10.2.0.1") and not ok("192.0.2.1", "web-1") and not ok("192.0.2.1")


def test_rule_filters_kind_and_severity_and_panic_matches_fatal() -> None:
    rule = AlertRule(name="r", command="true", kinds=frozenset({"panic"}),
                     severity=Severity.ERROR)

    def ok(kind: str, severity: Severity, fatal: bool = False) -> bool:
        return rule.matches(kind=kind, severity=severity, fatal=fatal, address="192.0.2.1",
                            name=None)

    assert ok("panic", Severity.CRITICAL)
    assert ok("oops", Severity.CRITICAL, fatal=True)  # an oops that ended in a panic
    assert not ok("oops", Severity.CRITICAL)
    low = AlertRule(name="r", command="true", severity=Severity.ERROR)
    assert not low.matches(kind="warning", severity=Severity.WARNING, fatal=False,
                           address="192.0.2.1", name=None)
