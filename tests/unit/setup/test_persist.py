"""setup.persist file contents, setup.loglevel, and setup.verify against a fake API."""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from netconsole.host.write import HostWriter
from netconsole.setup import loglevel as ll
from netconsole.setup.persist import (
    GRUB_FILE,
    MODPROBE_FILE,
    MODULES_LOAD_FILE,
    boot_param_note,
    grub_snippet,
    install,
    modprobe_conf,
    parse_registry,
    systemd_unit,
    uninstall,
)
from netconsole.setup.verify import Outcome, api_url, ask_seen, verify


def test_systemd_unit_reruns_setup_after_network_online() -> None:
    text = systemd_unit("fleet", "192.0.2.10:6666",
                        ["/usr/bin/python3", "-m", "netconsole", "setup", "192.0.2.10:6666",
                         "--name", "fleet", "--label", "rack=r 42", "--no-verify"])
    assert "After=network-online.target sys-kernel-config.mount\n" in text
    assert "Wants=network-online.target\n" in text
    assert "Type=oneshot\nRemainAfterExit=yes\n" in text
    assert ("ExecStart=/usr/bin/python3 -m netconsole setup 192.0.2.10:6666 --name fleet "
            "--label 'rack=r 42' --no-verify\n") in text
    assert text.endswith("[Install]\nWantedBy=multi-user.target\n")
    assert "ExecStop" not in text  # stopping at shutdown must not lose the last messages


def test_modprobe_conf_registry_round_trip() -> None:
    reg = {"a": "+@10.0.0.2/eth0,6666@192.0.2.10/52:54:00:00:00:01",
           "b": "@/eth1,6667@10.0.0.9/"}
    text = modprobe_conf(reg)
    assert parse_registry(text) == reg
    assert text.splitlines()[-1] == ("options netconsole netconsole="
                                     "+@10.0.0.2/eth0,6666@192.0.2.10/52:54:00:00:00:01;"
                                     "@/eth1,6667@10.0.0.9/")


def test_grub_snippet_and_boot_notes() -> None:
    assert grub_snippet("netconsole.netconsole=+@/eth0,@10.0.0.5/") .endswith(
        'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX netconsole.netconsole=+@/eth0,@10.0.0.5/"\n')
    assert "ignores a bare" in boot_param_note(False)
    assert "late_initcall" in boot_param_note(True)


def test_install_and_uninstall_on_a_tree(tmp_path: Path) -> None:
    w = HostWriter.for_root(tmp_path)
    got = install(w, name="fleet", receiver="192.0.2.10:6666",
                  argv=["netconsole", "setup", "192.0.2.10"],
                  module_value={"fleet": "@/eth0,@192.0.2.10/"}, grub="netconsole=x")
    assert set(got.files) == {"/etc/systemd/system/netconsole-fleet.service",
                              "/" + MODPROBE_FILE, "/" + MODULES_LOAD_FILE, "/" + GRUB_FILE}
    assert (tmp_path / MODULES_LOAD_FILE).read_text().splitlines()[-1] == "netconsole"
    assert w.skipped == ["systemctl daemon-reload", "systemctl enable netconsole-fleet.service"]
    gone = uninstall(w, "fleet")
    assert "/etc/systemd/system/netconsole-fleet.service" in gone.files
    assert not (tmp_path / MODPROBE_FILE).exists()
    assert not (tmp_path / "etc/systemd/system/netconsole-fleet.service").exists()


def test_loglevel_report_and_sysctl() -> None:
    lv = ll.parse_printk("4\t4\t1\t7\n")
    assert lv is not None and lv.console == 4
    assert lv.filtered == ("4 warning", "5 notice", "6 info", "7 debug")
    assert "filtered: 4 warning" in lv.describe()
    assert ll.verification_level(lv) == 3
    assert ll.verification_level(lv.with_console(7)) == 5
    assert ll.verification_level(lv.with_console(1)) is None
    assert ll.sysctl_conf(lv.with_console(8)).endswith("kernel.printk = 8 4 1 7\n")
    on = ll.parse_printk("4 4 1 7", "Y")
    assert on is not None and on.passes(7) and "ignore_loglevel" in on.describe()
    assert ll.parse_printk("garbage") is None
    with pytest.raises(ValueError):
        ll.check_level(9)


@pytest.mark.parametrize(("arg", "url"), [
    (None, "http://192.0.2.10:6680"),
    ("127.0.0.1:7000", "http://127.0.0.1:7000"),
    ("logs", "http://logs:6680"),
    ("[::1]:7000", "http://[::1]:7000"),
    ("http://x:1/", "http://x:1"),
])
def test_api_url(arg: str | None, url: str) -> None:
    assert api_url(arg, "192.0.2.10") == url


@pytest.fixture
def fake_api() -> Iterator[tuple[str, set[str]]]:
    stored: set[str] = set()

    class H(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            nonce = self.path.split("nonce=")[1].split("&")[0]
            body = json.dumps({"nonce": nonce, "seen": nonce in stored}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", stored
    srv.shutdown()
    srv.server_close()


def test_verify_seen(tmp_path: Path, fake_api: tuple[str, set[str]]) -> None:
    url, stored = fake_api
    w = HostWriter.for_root(tmp_path)
    stored.add("abcdef123456")
    v = verify(w, target="t", receiver="192.0.2.10:6666", api=url, level=5,
               nonce="abcdef123456", sleep=lambda s: None)
    assert v.outcome is Outcome.SEEN and v.ok
    assert (tmp_path / "dev/kmsg").read_bytes() == \
        b"<5>netconsole-setup nonce=abcdef123456 target=t\n"


def test_verify_not_seen_after_timeout(tmp_path: Path, fake_api: tuple[str, set[str]]) -> None:
    url, _ = fake_api
    ticks = iter(range(100))
    v = verify(HostWriter.for_root(tmp_path), target="t", receiver="192.0.2.10:6666", api=url,
               level=3, timeout=2, sleep=lambda s: None, clock=lambda: float(next(ticks)))
    assert v.outcome is Outcome.NOT_SEEN and "did not arrive" in v.detail


def test_verify_without_api_says_what_to_look_for(tmp_path: Path) -> None:
    ticks = iter(range(100))
    v = verify(HostWriter.for_root(tmp_path), target="t", receiver="192.0.2.10:6666",
               api="http://127.0.0.1:1", level=5, timeout=1, sleep=lambda s: None,
               clock=lambda: float(next(ticks)))
    assert v.outcome is Outcome.NO_API
    assert f"nonce={v.nonce}" in v.detail and "udp port 6666" in v.detail
    assert ask_seen("http://127.0.0.1:1", "abcdefgh") is None


def test_verify_no_level_passes(tmp_path: Path) -> None:
    v = verify(HostWriter.for_root(tmp_path), target="t", receiver="x:1", api=None, level=None)
    assert v.outcome is Outcome.NOT_SENT and "--loglevel" in v.detail
    assert not (tmp_path / "dev/kmsg").exists()


def test_uninstall_removes_the_grub_drop_in_and_says_update_grub(tmp_path: Path) -> None:
    """Issue 13: the GRUB drop-in brought the target back at the next boot."""
    w = HostWriter.for_root(tmp_path)
    install(w, name="fleet", receiver="192.0.2.10:6666", argv=["netconsole", "setup"],
            grub="netconsole.netconsole=+@/eth0,@192.0.2.10/")
    gone = uninstall(w, "fleet")
    assert not (tmp_path / GRUB_FILE).exists()
    assert "/" + GRUB_FILE in gone.files
    assert any("update-grub" in n for n in gone.notes)
    # The unit file is gone: systemd must forget it too.
    assert w.skipped[-2:] == ["systemctl disable netconsole-fleet.service",
                              "systemctl daemon-reload"]


def test_uninstall_leaves_another_targets_grub_drop_in(tmp_path: Path) -> None:
    w = HostWriter.for_root(tmp_path)
    install(w, name="early", receiver="192.0.2.10:6666", argv=["netconsole", "setup"],
            grub="netconsole.netconsole=+@/eth0,@192.0.2.10/")
    install(w, name="late", receiver="192.0.2.11:6666", argv=["netconsole", "setup"])
    gone = uninstall(w, "late")
    assert (tmp_path / GRUB_FILE).exists() and "/" + GRUB_FILE not in gone.files
    assert not any("update-grub" in n for n in gone.notes)


def test_uninstall_leaves_a_unit_setup_did_not_write(tmp_path: Path) -> None:
    """`--remove listen` must not delete contrib's netconsole-listen.service."""
    contrib = Path(__file__).parents[3] / "contrib" / "netconsole-listen.service"
    unit = tmp_path / "etc/systemd/system/netconsole-listen.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(contrib.read_text())
    w = HostWriter.for_root(tmp_path)
    gone = uninstall(w, "listen")
    assert unit.read_text() == contrib.read_text() and gone.files == ()
    assert w.skipped == [] and "not written by" in " ".join(gone.notes)


def _documentation(unit: str) -> list[str]:
    return [uri for line in unit.splitlines() if line.startswith("Documentation=")
            for uri in line.removeprefix("Documentation=").split()]


def test_units_document_only_what_exists() -> None:
    """Every unit's Documentation= names netconsole(1), and each man page it names
    is shipped (man/PAGE.SECTION, installed to share/man); a web page only under a
    URL pyproject.toml declares (systemctl help opens them)."""
    top = Path(__file__).parents[3]
    project = tomllib.loads((top / "pyproject.toml").read_text())["project"]
    urls = tuple(project.get("urls", {}).values())
    units = {p.name: p.read_text() for p in (top / "contrib").glob("*.service")}
    units["generated"] = systemd_unit("fleet", "192.0.2.10:6666", ["netconsole", "setup"])
    for name, text in units.items():
        uris = _documentation(text)
        assert "man:netconsole(1)" in uris, name
        for uri in uris:
            if uri.startswith("man:"):
                page, _, section = uri.removeprefix("man:").rstrip(")").partition("(")
                assert (top / "man" / f"{page}.{section}").is_file(), (name, uri)
            else:
                assert uri.startswith(urls) if urls else False, (name, uri)
