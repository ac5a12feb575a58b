"""ListenConfig refuses every value that cannot work, whatever its source, with one clear line.

TOML hands over str, int, float, bool and lists; the options hand over str and
int. Either way a wrong type or an impossible value is a ConfigError naming the
setting, never a TypeError later in a worker.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from netconsole.collector import ConfigError, ListenConfig, build_config, load_toml, render_toml
from netconsole.collector._config import reloaded


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ports": 6666}, "ports must be a list"),
        ({"ports": ("6666",)}, "ports must be a list of integers"),
        ({"ports": (True,)}, "ports must be a list of integers"),
        ({"ports": ()}, "at least one port"),
        ({"bind": "::"}, "bind must be a list"),
        ({"bind": (0,)}, "bind must be a list of strings"),
        ({"allow": (1,)}, "allow must be a list of strings"),
        ({"db": 5}, "db must be a string"),
        ({"workers": 257}, "workers must be at most 256"),
        ({"workers": True}, "workers must be an integer"),
        ({"workers": "2"}, "workers must be an integer"),
        ({"http": 123}, "http must be a string"),
        ({"http": "127.0.0.1:99999"}, "port 99999 is not between 1 and 65535"),
        ({"http": "127.0.0.1:0"}, "port 0 is not between 1 and 65535"),
        ({"http": "bad host:80"}, "not an IP address or host name"),
        ({"http": True}, "http must be"),
        ({"jsonl": 1}, "jsonl must be a string"),
        ({"jsonl": "/nonexistent/dir/x.jsonl"}, "directory /nonexistent/dir does not exist"),
        ({"jsonl": ""}, "jsonl"),
        ({"quiet": "no"}, "quiet must be true or false"),
        ({"quiet": 0}, "quiet must be true or false"),
        ({"rcvbuf": 0}, "rcvbuf must be between 1 and"),
        ({"rcvbuf": 2**40}, "rcvbuf must be between 1 and"),
        ({"rcvbuf": 1.5}, "rcvbuf must be an integer"),
        ({"retain": "forever"}, "retain: not a duration"),
        ({"retain": 30}, "retain must be a string"),
        ({"max_size": "10XB"}, "max-size: not a size"),
        ({"batch_interval": "x"}, "batch-interval: not a duration"),
        ({"batch_interval": 0}, "batch-interval must be more than 0"),
        ({"batch_interval": -1.0}, "batch-interval must be more than 0"),
        ({"batch_interval": 3600}, "batch-interval must be at most"),
        ({"batch_interval": float("nan")}, "batch-interval"),
        ({"batch_interval": False}, "batch-interval must be a number"),
        ({"silent_after": "soon"}, "silent-after: not a duration"),
        ({"silent_after": 0}, "silent-after must be more than 0"),
        ({"silent_after": float("inf")}, "silent-after"),
        ({"sender_budget": -1}, "sender-budget"),
        ({"sender_budget": "lots"}, "sender-budget"),
        ({"extra": {"alerts": [{"kind": "panic"}]}}, "alert rule"),
        ({"extra": {"alerts": [{"kinds": 5, "command": "true"}]}}, "alert rule"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(values: dict[str, Any],
                                                       message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ListenConfig(**values)


def test_the_message_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        ListenConfig(jsonl="/nonexistent/dir/x.jsonl")
    assert "\n" not in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_jsonl_in_a_read_only_directory_is_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="cannot write"):
        ListenConfig(jsonl=str(ro / "x.jsonl"))


def test_jsonl_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        ListenConfig(jsonl=str(tmp_path))


def test_durations_take_seconds_or_a_unit() -> None:
    cfg = ListenConfig(silent_after="10m", batch_interval="1s")
    assert (cfg.silent_after, cfg.batch_interval) == (600.0, 1.0)
    cfg = ListenConfig(silent_after=90, batch_interval=0.05)
    assert (cfg.silent_after, cfg.batch_interval) == (90.0, 0.05)
    assert isinstance(cfg.silent_after, float)


def test_good_values_pass(tmp_path: Path) -> None:
    cfg = ListenConfig(ports=(1, 65535), bind=("0.0.0.0", "::1"), allow=("10.0.0.0/8",),
                       workers=256, http="[::1]:8080", jsonl=str(tmp_path / "x.jsonl"),
                       quiet=True, rcvbuf=1, retain="30d", max_size="10GB")
    assert cfg.workers == 256
    assert ListenConfig(http="localhost:6680").http == "localhost:6680"
    assert ListenConfig(jsonl="-").jsonl == "-"


def test_http_false_in_the_file_turns_it_off_and_round_trips(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[listen]\nhttp = false\n")
    cfg = build_config(load_toml(f), {})
    assert cfg.http is None
    f.write_text(render_toml(cfg))
    assert build_config(load_toml(f), {}) == cfg


def test_the_options_are_checked_like_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port 99999"):
        build_config({}, {"http": "127.0.0.1:99999"})
    with pytest.raises(ConfigError, match="does not exist"):
        build_config({}, {"jsonl": str(tmp_path / "missing" / "x.jsonl")})


def test_a_setting_given_as_a_table_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[listen]\nalow = [\"10.0.0.0/8\"]\n")
    with pytest.raises(ConfigError, match="unknown setting 'alow'"):
        load_toml(f)


def test_print_config_keeps_the_other_tables(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[listen]\nports = [6666]\n'
        '[[alerts]]\nname = "pager"\nkinds = ["panic", "oops"]\nwebhook = "http://h/x"\n'
        'group-wait = 0.5\n'
        '[[alerts]]\nname = "log"\ncommand = "logger \\"crash\\""\n'
        '[web]\ntitle = "lab"\nlimits = { rows = 10, "odd key" = true }\n')
    cfg = build_config(load_toml(f), {})
    text = render_toml(cfg)
    assert "[[alerts]]" in text
    assert tomllib.loads(text)["alerts"] == tomllib.loads(f.read_text())["alerts"]
    out = tmp_path / "out.toml"
    out.write_text(text)
    assert build_config(load_toml(out), {}) == cfg


def test_config_without_a_listen_table_keeps_settings_out_of_extra(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('allow = ["10.0.0.0/8"]\n[[alerts]]\ncommand = "true"\n')
    cfg = build_config(load_toml(f), {})
    assert cfg.allow == ("10.0.0.0/8",)
    assert set(cfg.extra) == {"alerts"}


def test_reload_keeps_what_changes_on_restart_only() -> None:
    old = ListenConfig(ports=(7000,), db="/tmp/a.db", allow=("10.0.0.0/8",), workers=2)
    new = ListenConfig(ports=(7001,), db="/tmp/b.db", allow=("127.0.0.0/8",), workers=2,
                       quiet=True)
    cfg, ignored = reloaded(old, new)
    assert (cfg.ports, cfg.db, cfg.allow, cfg.quiet) == ((7000,), "/tmp/a.db",
                                                         ("127.0.0.0/8",), True)
    assert ignored == ["ports", "db"]
