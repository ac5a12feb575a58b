from __future__ import annotations

from netconsole.kernel.configfs import ProblemKind, check_target, parse_target_dir
from netconsole.kernel.version import parse_release

BASE = {"enabled": "1\n", "extended": "1\n", "release": "0\n", "dev_name": "eth0\n",
        "local_port": "6665\n", "remote_port": "6666\n", "local_ip": "0.0.0.0\n",
        "remote_ip": "10.0.0.5\n", "local_mac": "52:54:00:12:34:56\n",
        "remote_mac": "52:54:00:ab:cd:ef\n", "transmit_errors": "0\n"}


def kinds(files: dict[str, str | None], userdata: dict[str, str | None] | None = None,
          release: str = "6.12.0") -> set[ProblemKind]:
    t = parse_target_dir("t", files, userdata)
    return {p.kind for p in check_target(t, parse_release(release))}


def test_parse_target_dir_reads_every_attribute() -> None:
    t = parse_target_dir("cmdline0", {**BASE, "cpu_nr_enabled": "1\n"}, {"dc": "fra1\n"})
    assert t.enabled and t.extended and t.release is False and t.dev_name == "eth0"
    assert (t.local_port, t.remote_port, t.transmit_errors) == (6665, 6666, 0)
    assert t.userdata == {"dc": "fra1"} and t.sysdata == {"cpu_nr_enabled": True}
    assert t.is_cmdline


def test_check_target_healthy_has_no_problems() -> None:
    assert kinds(dict(BASE)) == set()


def test_check_target_problems() -> None:
    assert ProblemKind.DISABLED in kinds({**BASE, "enabled": "0\n"})
    assert ProblemKind.RELEASE_NEEDS_EXTENDED in kinds({**BASE, "release": "1\n",
                                                        "extended": "0\n"})
    assert ProblemKind.NO_REMOTE_IP in kinds({**BASE, "remote_ip": "0.0.0.0\n"})
    assert ProblemKind.FAMILY_MISMATCH in kinds({**BASE, "local_ip": "fd00::2\n"})
    assert ProblemKind.BAD_MAC in kinds({**BASE, "remote_mac": "nonsense\n"})
    assert ProblemKind.TRANSMIT_ERRORS in kinds({**BASE, "transmit_errors": "12\n"})
    assert ProblemKind.USERDATA_KEY_TOO_LONG in kinds(dict(BASE), {"k" * 54: "v"})
    assert ProblemKind.USERDATA_VALUE_TOO_LONG in kinds(dict(BASE), {"k": "v" * 200})
    assert ProblemKind.USERDATA_TOO_MANY in kinds(dict(BASE), {f"k{i}": "v" for i in range(17)})
    assert ProblemKind.USERDATA_TOO_MANY not in kinds(dict(BASE), {f"k{i}": "v"
                                                                   for i in range(17)},
                                                      release="6.19.0")
    assert ProblemKind.EXTRADATA_ON_BASIC in kinds({**BASE, "extended": "0\n"}, {"k": "v"})


def test_parse_target_dir_garbage_is_unknown() -> None:
    t = parse_target_dir("t", {"enabled": "maybe", "local_port": "x", "remote_ip": None})
    assert t.enabled is None and t.local_port is None and t.remote_ip is None
    check_target(t)
