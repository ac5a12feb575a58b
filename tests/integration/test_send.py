"""`netconsole send`: --via udp to a real `netconsole listen` on loopback, --via kmsg
into this machine's real /dev/kmsg, and `setup`'s delivery check against the
real receiver API."""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from netconsole.host.write import HostWriter
from netconsole.setup.verify import Outcome, ask_seen, verify
from tests.integration.listen_harness import Listener


def send(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netconsole", "send", *args],
                          capture_output=True, text=True, check=False, timeout=60)


def test_send_udp_is_stored_with_level_and_text(tmp_path: Path) -> None:
    lis = Listener(tmp_path)
    text = f"send-udp test {secrets.token_hex(4)} caf\u00e9"
    try:
        done = send("--via", "udp", "--to", f"127.0.0.1:{lis.port}", "--level", "3",
                    "--source-port", "0", "--json", text)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["via"] == "udp" and out["datagrams"] == 1
        lis.wait_records(1)
    finally:
        assert lis.stop() == 0
    (rec,) = lis.records()
    assert rec.text == text.encode()
    assert (rec.level, rec.facility) == (3, 1)
    assert rec.release == platform.release()
    assert dict(rec.fields)[b"hostname"] == os.uname().nodename.encode()


def test_send_udp_from_port_6665_by_default(tmp_path: Path) -> None:
    lis = Listener(tmp_path)
    try:
        done = send("--via", "udp", "--to", f"127.0.0.1:{lis.port}", "--json", "from 6665")
        if "Address already in use" in done.stderr:
            pytest.skip("port 6665 is taken on this machine")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["source"].endswith(":6665")
        lis.wait_records(1)
    finally:
        assert lis.stop() == 0
    (rec,) = lis.records()
    assert rec.sender.port == 6665 and rec.level == 5


def test_send_long_text_is_fragmented_like_the_kernel(tmp_path: Path) -> None:
    lis = Listener(tmp_path)
    text = "x" * 1500
    try:
        done = send("--via", "udp", "--to", f"127.0.0.1:{lis.port}", "--source-port", "0",
                    "--json", text)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["datagrams"] == 2
        lis.wait_records(1)
    finally:
        assert lis.stop() == 0
    (rec,) = lis.records()
    assert rec.text == text.encode() and rec.complete


@pytest.mark.skipif(os.geteuid() != 0, reason="/dev/kmsg writes need root")
def test_send_kmsg_shows_up_in_the_kernel_log() -> None:
    text = f"netconsole-send-test {secrets.token_hex(6)}"
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    try:
        os.lseek(fd, 0, os.SEEK_END)
        done = send("--level", "6", text)
        assert done.returncode == 0, done.stderr
        found = []
        while True:
            try:
                rec = os.read(fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:
                continue
            found.append(rec.decode(errors="replace"))
    finally:
        os.close(fd)
    mine = [r for r in found if text in r]
    assert len(mine) == 1, found
    prefix = int(mine[0].split(",", 1)[0])
    assert (prefix >> 3, prefix & 7) == (1, 6)  # LOG_USER, info
    assert mine[0].split(";", 1)[1].rstrip("\n") == text


def test_verify_against_the_real_receiver_api(tmp_path: Path) -> None:
    """setup's delivery check: the nonce goes out (here: by `send --via udp`, standing
    in for kernel netconsole) and the receiver's /api/v1/seen confirms it."""
    lis = Listener(tmp_path)
    api = f"http://127.0.0.1:{lis.http_port}"
    kmsg_root = tmp_path / "root"

    class Relay(HostWriter):
        """Writes the kmsg record as a file and relays it to the receiver via UDP."""

        def kmsg(self, line: bytes) -> None:
            super().kmsg(line)
            level, text = line[1:2].decode(), line[3:].decode().rstrip("\n")
            done = send("--via", "udp", "--to", f"127.0.0.1:{lis.port}", "--source-port",
                        "0", "--level", level, text)
            assert done.returncode == 0, done.stderr

    try:
        assert ask_seen(api, "never-sent-nonce") is False
        v = verify(Relay(kmsg_root, False), target="t", receiver=f"127.0.0.1:{lis.port}",
                   api=api, level=5, timeout=30)
        assert v.outcome is Outcome.SEEN, v.detail
        assert ask_seen(api, v.nonce) is True
    finally:
        assert lis.stop() == 0
