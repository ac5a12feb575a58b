"""ListenConfig: defaults, the TOML file, options over the file, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from netconsole.collector import ConfigError, ListenConfig, build_config, load_toml, render_toml


def test_defaults_are_the_kernel_port_dual_stack_and_localhost_http() -> None:
    cfg = ListenConfig()
    assert (cfg.ports, cfg.bind, cfg.http) == ((6666,), ("::",), "127.0.0.1:6680")


def test_options_win_over_the_file(tmp_path: Path) -> None:
    f = tmp_path / "l.toml"
    f.write_text('[listen]\nports = [6666, 6667]\nretain = "30d"\nmax-size = "1GB"\n'
                 '[[alerts]]\nkinds = ["panic"]\ncommand = "true"\n')
    cfg = build_config(load_toml(f), {"retain": "7d"})
    assert cfg.ports == (6666, 6667) and cfg.retain == "7d" and cfg.max_size == "1GB"
    assert cfg.extra == {"alerts": [{"kinds": ["panic"], "command": "true"}]}


def test_render_round_trips(tmp_path: Path) -> None:
    cfg = ListenConfig(ports=(1, 2), allow=("10.0.0.0/8",), quiet=True, retain="1d")
    f = tmp_path / "r.toml"
    f.write_text(render_toml(cfg))
    assert build_config(load_toml(f), {}) == cfg


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"ports": (0,)}, "between 1 and 65535"),
        ({"bind": ("eth0",)}, "not an IP address"),
        ({"allow": ("10.0.0.0/33",)}, "CIDR"),
        ({"http": "localhost"}, "address:port"),
        ({"workers": -1}, "negative"),
    ],
)
def test_bad_values_say_what_is_wrong(values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ListenConfig(**values)  # type: ignore[arg-type]


def test_unknown_key_and_bad_toml(tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text("[listen]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_toml(f)
    f.write_text("[listen\n")
    with pytest.raises(ConfigError):
        load_toml(f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(tmp_path / "missing.toml")
