"""`netconsole setup --dry-run` inside real network namespaces.

Topology (every namespace and veth is created here and deleted in a finalizer;
all traffic stays inside them):

    client [c0] <--veth--> [r0] router [r1] <--veth--> [v0] receiver
    10.77.1.2               10.77.1.1   10.77.2.1          10.77.2.2
    fd77:1::2               fd77:1::1   fd77:2::1          fd77:2::2
                            fe80::1 (on r0)

The client's neighbour table starts empty, so each plan must provoke ARP/ND and
read the router's MAC (fixed on r0) back from the kernel.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROUTER_MAC = "02:77:00:00:01:01"
RECEIVER_MAC = "02:77:00:00:02:02"
SRC = str(Path(__file__).parents[2] / "src")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


class Lab:
    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.client, self.router, self.receiver = (f"nc{r}-{tag}" for r in ("cli", "rtr", "rcv"))
        self.made: list[str] = []

    def ns(self, ns: str, *argv: str) -> str:
        return sh("ip", "netns", "exec", ns, *argv)

    def build(self) -> None:
        for ns in (self.client, self.router, self.receiver):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            self.ns(ns, "ip", "link", "set", "lo", "up")
        sh("ip", "-n", self.client, "link", "add", "c0", "type", "veth", "peer", "name", "r0",
           "netns", self.router)
        sh("ip", "-n", self.router, "link", "add", "r1", "type", "veth", "peer", "name", "v0",
           "netns", self.receiver)
        sh("ip", "-n", self.router, "link", "set", "r0", "address", ROUTER_MAC)
        sh("ip", "-n", self.receiver, "link", "set", "v0", "address", RECEIVER_MAC)
        self.ns(self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1")
        for ns, dev, addrs in (
            (self.client, "c0", ("10.77.1.2/24", "fd77:1::2/64")),
            (self.router, "r0", ("10.77.1.1/24", "fd77:1::1/64", "fe80::1/64")),
            (self.router, "r1", ("10.77.2.1/24", "fd77:2::1/64")),
            (self.receiver, "v0", ("10.77.2.2/24", "fd77:2::2/64")),
        ):
            for a in addrs:
                extra = ["nodad"] if ":" in a else []
                sh("ip", "-n", ns, "addr", "add", a, "dev", dev, *extra)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", self.client, "route", "add", "default", "via", "10.77.1.1")
        sh("ip", "-n", self.client, "-6", "route", "add", "default", "via", "fd77:1::1")
        sh("ip", "-n", self.client, "-6", "route", "add", "fd77:3::/64", "via", "fe80::1",
           "dev", "c0")
        sh("ip", "-n", self.receiver, "route", "add", "default", "via", "10.77.2.1")
        sh("ip", "-n", self.receiver, "-6", "route", "add", "default", "via", "fd77:2::1")

    def destroy(self) -> None:
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], check=False)

    def setup(self, *args: str) -> tuple[int, Any]:
        """`setup ... --dry-run --json` in the client namespace: (exit code, report).

        A kernel without netconsole (CONFIG_NETCONSOLE unset) still gets its plan,
        with `kernel_problem` set and exit code 1; that is this code's `ok`."""
        env = dict(os.environ, PYTHONPATH=SRC)
        done = subprocess.run(
            ["ip", "netns", "exec", self.client, sys.executable, "-m", "netconsole", "setup",
             *args, "--dry-run", "--json"], capture_output=True, text=True, env=env,
            check=False, timeout=120)
        try:
            data = json.loads(done.stdout)
            code = done.returncode
            if data.get("kernel_problem") and code == 1 and data["plan"]["next_hop_mac"]:
                code = 0
            return code, data
        except ValueError as exc:
            raise AssertionError(f"no JSON: {done.stdout!r} {done.stderr!r}") from exc

    def neigh(self) -> str:
        return sh("ip", "-n", self.client, "neigh", "show")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = Lab()
    try:
        lab.build()
        yield lab
    finally:
        lab.destroy()


def test_ipv4_plan_picks_the_router_mac(lab: Lab) -> None:
    assert "10.77.1.1" not in lab.neigh()  # nothing has resolved it yet
    code, data = lab.setup("10.77.2.2:6666", "--name", "rcv")
    assert code == 0, data
    plan = data["plan"]
    assert plan["interface"] == "c0" and plan["local_ip"] == "10.77.1.2"
    assert plan["next_hop"] == "10.77.1.1" and plan["next_hop_kind"] == "gateway"
    assert plan["next_hop_mac"] == ROUTER_MAC
    assert "after a UDP datagram" in data["mac_resolution"]
    assert plan["param"].endswith(f"@10.77.1.2/c0,6666@10.77.2.2/{ROUTER_MAC}")
    assert data["netpoll_problem"] is None
    # The router's MAC, not the receiver's: netpoll sends every frame to it.
    assert RECEIVER_MAC not in json.dumps(data)


def test_ipv6_plan_picks_the_router_mac(lab: Lab) -> None:
    code, data = lab.setup("[fd77:2::2]:6666")
    assert code == 0, data
    plan = data["plan"]
    assert (plan["interface"], plan["local_ip"], plan["next_hop"]) == \
        ("c0", "fd77:1::2", "fd77:1::1")
    assert plan["next_hop_mac"] == ROUTER_MAC
    assert plan["param"].endswith(f"@fd77:1::2/c0,6666@fd77:2::2/{ROUTER_MAC}")


def test_ipv6_link_local_gateway(lab: Lab) -> None:
    code, data = lab.setup("fd77:3::5")
    assert code == 0, data
    assert data["plan"]["next_hop"] == "fe80::1"
    assert data["plan"]["next_hop_mac"] == ROUTER_MAC


def test_on_link_receiver_uses_its_own_mac(lab: Lab) -> None:
    code, data = lab.setup("10.77.1.1")
    assert code == 0, data
    assert data["plan"]["next_hop_kind"] == "on-link"
    assert data["plan"]["next_hop_mac"] == ROUTER_MAC


def test_unresolvable_next_hop_is_reported(lab: Lab) -> None:
    code, data = lab.setup("10.77.1.99")  # on the link, nobody there
    assert code == 1
    assert data["plan"]["next_hop_mac"] is None
    assert "still unresolved" in data["mac_resolution"]


def test_no_probe_keeps_the_table_untouched(lab: Lab) -> None:
    code, data = lab.setup("10.77.1.77", "--no-probe")
    assert code == 1 and "--no-probe" in data["mac_resolution"]
    assert "10.77.1.77" not in lab.neigh()
