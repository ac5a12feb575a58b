"""`forward` and `files` in ListenConfig: checked like every setting, from options or TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from netconsole.collector import ConfigError, ListenConfig, build_config, load_toml, render_toml
from netconsole.collector._config import reloaded


def test_forward_and_files_from_toml_round_trip(tmp_path: Path) -> None:
    conf = tmp_path / "listen.toml"
    conf.write_text('[listen]\nforward = ["syslog+tcp://127.0.0.1:514", '
                    f'"syslog+udp://[::1]:514"]\nfiles = "{tmp_path / "logs"}"\n')
    cfg = build_config(load_toml(conf), {})
    assert cfg.forward == ("syslog+tcp://127.0.0.1:514", "syslog+udp://[::1]:514")
    assert cfg.files == str(tmp_path / "logs")
    again = tmp_path / "again.toml"
    again.write_text(render_toml(cfg))
    assert build_config(load_toml(again), {}) == cfg


@pytest.mark.parametrize(("values", "says"), [
    ({"forward": ("tcp://x:1",)}, r"is not syslog\+udp://HOST:PORT"),
    ({"forward": "syslog+tcp://x:1"}, "forward must be a list"),
    ({"forward": (5,)}, "forward must be a list of strings"),
    ({"files": 5}, "files must be a string"),
    ({"files": ""}, "files: give a directory"),
    ({"files": "/etc/hostname"}, "is not a directory"),
    ({"files": "/proc/self/nothere/x"}, "files: cannot make"),
])
def test_bad_values_are_one_line(values: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        ListenConfig(**values)  # type: ignore[arg-type]


def test_forward_and_files_change_on_restart_only() -> None:
    running = ListenConfig()
    fresh = ListenConfig(forward=("syslog+tcp://127.0.0.1:514",))
    cfg, ignored = reloaded(running, fresh)
    assert cfg.forward == () and ignored == ["forward"]
