"""`netconsole forward` option parsing and error messages (no sockets, no kmsg)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from netconsole.cli import forward as cli_forward
from netconsole.cli import main
from netconsole.forward import ForwardOptions, ForwardStats, StateError


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[ForwardOptions]:
    seen: list[ForwardOptions] = []

    def fake(options: ForwardOptions) -> ForwardStats:
        seen.append(options)
        return ForwardStats(boot_id="b", read=3)

    monkeypatch.setattr(cli_forward, "run_forward", fake)
    return seen


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["forward", *args])


def test_cli_parses_receivers_and_options(captured: list[ForwardOptions],
                                          tmp_path: Path) -> None:
    res = invoke("10.0.0.5", "[::1]:7000", "--port", "6000", "--label", "dc=ams1",
                 "--sysdata", "msgid,cpu", "--level", "warning", "--rate", "50",
                 "--burst", "10", "--state", str(tmp_path / "s"), "--once", "--stats",
                 "--no-pstore", "--local-port", "0")
    assert res.exit_code == 0, res.output
    [opt] = captured
    assert [str(r) for r in opt.receivers] == ["10.0.0.5:6000", "[::1]:7000"]
    assert opt.encode.labels[0][0] == b"hostname" and opt.encode.labels[1] == (b"dc", b"ams1")
    assert opt.encode.sysdata == {"msgid", "cpu"}
    assert opt.encode.release is None
    assert (opt.policy.max_level, opt.policy.rate, opt.policy.burst) == (4, 50.0, 10)
    assert opt.pstore_dirs == () and opt.once and opt.local_port == 0
    assert '"read": 3' in res.output


def test_cli_hostname_label_can_be_replaced(captured: list[ForwardOptions]) -> None:
    assert invoke("h", "--label", "hostname=db7", "--once").exit_code == 0
    assert captured[0].encode.labels == ((b"hostname", b"db7"),)


@pytest.mark.parametrize(("args", "message"), [
    (["h", "--label", "novalue"], "KEY=VALUE"),
    (["h", "--sysdata", "pid"], "unknown pid"),
    (["h", "--level", "loud"], "not a level"),
    (["[::1", "--once"], "[IPv6]:PORT"),
])
def test_cli_rejects_bad_options(captured: list[ForwardOptions], args: list[str],
                                 message: str) -> None:
    res = invoke(*args)
    assert res.exit_code == 2
    assert message in res.output
    assert captured == []


@pytest.mark.parametrize(("exc", "message"), [
    (PermissionError(errno.EACCES, "Permission denied", "/dev/kmsg"), "CAP_SYSLOG"),
    (FileNotFoundError(errno.ENOENT, "No such file", "/nope"), "/nope: no such file"),
    (StateError("/s: not JSON"), "move it away"),
    (OSError(errno.EADDRINUSE, "Address already in use"), "--local-port"),
])
def test_cli_explains_errors(monkeypatch: pytest.MonkeyPatch, exc: Exception,
                             message: str) -> None:
    def fail(options: ForwardOptions) -> ForwardStats:
        raise exc

    monkeypatch.setattr(cli_forward, "run_forward", fail)
    res = invoke("127.0.0.1", "--once")
    assert res.exit_code == 1
    assert message in res.output


def test_cli_once_exits_3_when_records_stayed_unsent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_forward, "run_forward",
                        lambda options: ForwardStats(boot_id="b", read=5, backlog=2))
    res = invoke("127.0.0.1", "--once")
    assert res.exit_code == 3
    assert "2 records not sent" in res.output


def test_cli_help_ends_with_an_example() -> None:
    res = invoke("--help")
    assert res.exit_code == 0
    assert "Example:" in res.output and "netconsole forward 10.0.0.5:6666" in res.output


def test_cli_default_state_path_for_root_and_users(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert cli_forward.default_state_path() == Path("/var/lib/netconsole/forward.state")
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert cli_forward.default_state_path().name == "forward.state"
    assert cli_forward.default_state_path() != Path("/var/lib/netconsole/forward.state")
