"""`netconsole setup` in the QEMU guest against a real kernel's configfs, with a real
`netconsole listen` on the host proving delivery.

One boot per kernel (6.12 and 7.2, the Python layers on the image):

1. the NIC comes up (10.0.2.15, default via 10.0.2.2) and netconsole.ko is loaded
   without targets, so `/sys/kernel/config/netconsole` exists and is empty;
2. `setup 10.0.2.2:<listen UDP port> --receiver-api 10.0.2.2:<listen HTTP port>`
   plans from the guest kernel's own route and neighbour tables (nothing has
   resolved the gateway yet: setup provokes ARP), creates the target, enables
   it, writes the nonce to /dev/kmsg and asks the host's receiver whether it
   arrived. QEMU's user networking turns 10.0.2.2 into the host's 127.0.0.1,
   UDP and TCP alike, so the guest reaches `listen` on loopback;
3. the same setup again (idempotent: nothing to write), `--status`, a
   `send` through /dev/kmsg, and `--remove`.

The host asserts what the guest printed (JSON between lab markers) and what
`listen` stored: the nonce with the guest's hostname label, the release prefix
and (7.x) sysdata.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lab import GATEWAY_MAC, GUEST_IP, HOST_IP, Kernel, Lab, Run, Script, build_python
from lab.scenarios import python_command
from tests.integration.listen_harness import Listener

pytestmark = pytest.mark.kernel

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEND_TEXT = f"lab setup send {secrets.token_hex(4)}"


def _steps(lis: Listener):  # type: ignore[no-untyped-def]
    def steps(s: Script, ports: list[int]) -> None:
        s.setup()
        s.insmod_netconsole(None)
        base = f"python3 -m netconsole setup {HOST_IP}:{lis.port} --name lab --label lab=qemu"
        python_command(s, "setup", f"{base} --receiver-api {HOST_IP}:{lis.http_port} "
                       "--verify-timeout 60 --json")
        python_command(s, "rerun", f"{base} --no-verify --json")
        python_command(s, "status", "python3 -m netconsole setup --status --json")
        python_command(s, "send", f"python3 -m netconsole send --level 4 '{SEND_TEXT}'")
        s.settle()
        python_command(s, "remove", "python3 -m netconsole setup --remove lab --json")
        s.sh("[ ! -e /sys/kernel/config/netconsole/lab ]; labrc lab.gone $?")
        # The same in text form, as a person sees it (docs/setup.md quotes this run).
        python_command(s, "text", f"python3 -m netconsole setup {HOST_IP}:{lis.port} "
                       f"--name lab2 --receiver-api {HOST_IP}:{lis.http_port} "
                       "--verify-timeout 60")
        python_command(s, "status_text", "python3 -m netconsole setup --status")
        s.settle()
        python_command(s, "remove_text", "python3 -m netconsole setup --remove lab2")
    return steps


class SetupRun:
    def __init__(self, run: Run, lis: Listener) -> None:
        self.run = run
        self.records = lis.records()

    def text(self, name: str) -> str:
        """What a `python_command` step printed."""
        lines = self.run.boot.lab_text.splitlines()
        start = next(i for i, line in enumerate(lines)
                     if line.startswith(f"LAB: py-begin {name}:"))
        end = next(i for i in range(start, len(lines))
                   if lines[i].startswith(f"LABRC: py.{name} "))
        return "\n".join(lines[start + 1:end])

    def output(self, name: str) -> Any:
        """The JSON a `python_command` step printed."""
        return json.loads(self.text(name))


@pytest.fixture(scope="module")
def setup_run(lab: Lab, kernel: Kernel,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[SetupRun]:
    images = build_python(lab.cache, PROJECT_ROOT)
    lis = Listener(tmp_path_factory.mktemp("setup-listen"))
    try:
        run = lab.run(kernel, "setup", _steps(lis), ports=1, timeout=300.0,
                      extra_images=images.parts)
    finally:
        assert lis.stop() == 0
    yield SetupRun(run, lis)


def test_setup_lab_plans_from_the_guest_kernel(setup_run: SetupRun) -> None:
    assert setup_run.run.rcs["py.setup"] == 0, setup_run.run.boot.lab_text
    out = setup_run.output("setup")
    plan = out["plan"]
    assert (plan["interface"], plan["local_ip"], plan["next_hop"]) == ("eth0", GUEST_IP, HOST_IP)
    assert plan["next_hop_mac"] == GATEWAY_MAC and plan["method"] == "configfs"
    assert plan["caps"]["source"] == "version"  # no target existed to look at
    assert plan["extended"] and plan["release"]
    release = setup_run.run.kernel.release
    if release.startswith("7."):
        assert plan["sysdata"] == ["cpu_nr_enabled", "taskname_enabled", "msgid_enabled"]
    else:
        assert plan["sysdata"] == []
    assert out["applied"]["done"][-1] == "echo 1 > /sys/kernel/config/netconsole/lab/enabled"


def test_setup_lab_receiver_confirms_the_nonce(setup_run: SetupRun) -> None:
    out = setup_run.output("setup")
    v = out["verification"]
    assert v["outcome"] == "seen", v
    nonce = [r for r in setup_run.records if f"nonce={v['nonce']}".encode() in r.text]
    assert len(nonce) == 1
    rec = nonce[0]
    assert rec.release == setup_run.run.kernel.release
    fields = dict(rec.fields)
    # The guest's hostname is the kernel's unset "(none)": no hostname= label then.
    assert fields[b"lab"] == b"qemu" and b"hostname" not in fields
    if setup_run.run.kernel.release.startswith("7."):
        assert rec.msgid is not None and b"taskname" in fields


def test_setup_lab_rerun_status_send_remove(setup_run: SetupRun) -> None:
    rcs = setup_run.run.rcs
    assert rcs["py.rerun"] == 0 and rcs["py.status"] == 0 and rcs["py.remove"] == 0, rcs
    again = setup_run.output("rerun")
    assert again["applied"]["done"] == [] and again["configfs_steps"] == []
    (row,) = setup_run.output("status")
    assert row["name"] == "lab" and row["enabled"] is True and row["mac_ok"] is True
    # transmit_errors exists on 7.x; Debian's 6.12 has no such file (None: unknown).
    assert row["transmit_errors"] == (0 if setup_run.run.kernel.release.startswith("7.")
                                      else None)
    assert next(r for r in setup_run.records if r.text == SEND_TEXT.encode()).level == 4
    assert rcs["lab.gone"] == 0


def test_setup_lab_text_output(setup_run: SetupRun) -> None:
    rcs = setup_run.run.rcs
    assert rcs["py.text"] == 0 and rcs["py.remove_text"] == 0, setup_run.text("text")
    text = setup_run.text("text")
    assert f"next-hop MAC {GATEWAY_MAC}" in text and "verify: DELIVERED" in text
    assert "lab2 (configfs) enabled eth0 -> 10.0.2.2:" in setup_run.text("status_text")
