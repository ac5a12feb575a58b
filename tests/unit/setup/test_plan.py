"""setup.plan over recorded netlink views (as `ip -j` prints them) and kernel facts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from netconsole.host.netinfo import (
    RouteLookup,
    addresses_from_json,
    links_from_json,
    lookup_route,
    neighbours_from_json,
    routes_from_json,
)
from netconsole.kernel.configfs import parse_target_dir
from netconsole.kernel.netconsole_param import parse_param
from netconsole.kernel.version import parse_release
from netconsole.setup.caps import KernelFacts, Method, capabilities, userdata_entries
from netconsole.setup.errors import PlanError
from netconsole.setup.nexthop import NextHop
from netconsole.setup.plan import module_param_value, plan_target
from netconsole.setup.resolve import receiver_from_text
from netconsole.setup.route import NetView, Receiver
from netconsole.setup.steps import Op, configfs_steps, remove_steps

ETH = ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"]
K7 = KernelFacts(version=parse_release("7.2.13+deb14-amd64"), builtin=False, loaded=True,
                 dynamic=True, configfs=True)
K612 = KernelFacts(version=parse_release("6.12.117+deb12-amd64"), builtin=False, loaded=True,
                   dynamic=True, configfs=True)

# A host with eth0 (10.0.0.2/24, 2001:db8:1::2/64, fe80::2) behind router 10.0.0.1 /
# fe80::1, a bond0 over eth1+eth2, a bridge br0 with port eth3, a VRF with eth4.
LINKS: list[dict[str, Any]] = [
    {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"],
     "address": "00:00:00:00:00:00"},
    {"ifindex": 2, "ifname": "eth0", "flags": ETH, "address": "52:54:00:00:00:02"},
    {"ifindex": 3, "ifname": "bond0", "flags": [*ETH, "MASTER"],
     "address": "52:54:00:00:00:03", "linkinfo": {"info_kind": "bond"}},
    {"ifindex": 4, "ifname": "eth1", "flags": [*ETH, "SLAVE"], "master": "bond0",
     "address": "52:54:00:00:00:03"},
    {"ifindex": 5, "ifname": "br0", "flags": ETH, "address": "52:54:00:00:00:05",
     "linkinfo": {"info_kind": "bridge"}},
    {"ifindex": 6, "ifname": "eth3", "flags": ETH, "master": "br0",
     "address": "52:54:00:00:00:06"},
    {"ifindex": 7, "ifname": "vrf-blue", "flags": ["NOARP", "MASTER", "UP", "LOWER_UP"],
     "address": "aa:aa:aa:aa:aa:aa", "linkinfo": {"info_kind": "vrf"}},
    {"ifindex": 8, "ifname": "eth4", "flags": ETH, "master": "vrf-blue",
     "address": "52:54:00:00:00:08"},
    {"ifindex": 9, "ifname": "wg0", "flags": ["POINTOPOINT", "NOARP", "UP", "LOWER_UP"],
     "linkinfo": {"info_kind": "wireguard"}},
]
ADDRS: list[dict[str, Any]] = [
    {"ifname": "eth0", "addr_info": [
        {"family": "inet", "local": "10.0.0.2", "prefixlen": 24},
        {"family": "inet6", "local": "2001:db8:1::2", "prefixlen": 64, "scope": "global"},
        {"family": "inet6", "local": "fe80::2", "prefixlen": 64, "scope": "link"}]},
    {"ifname": "bond0", "addr_info": [{"family": "inet", "local": "10.1.0.2", "prefixlen": 24}]},
    {"ifname": "br0", "addr_info": [{"family": "inet", "local": "10.2.0.2", "prefixlen": 24}]},
    {"ifname": "wg0", "addr_info": [{"family": "inet", "local": "10.9.0.2", "prefixlen": 24}]},
]
ROUTES: list[dict[str, Any]] = [
    {"dst": "default", "gateway": "10.0.0.1", "dev": "eth0"},
    {"dst": "10.0.0.0/24", "dev": "eth0", "prefsrc": "10.0.0.2"},
    {"dst": "10.1.0.0/24", "dev": "bond0", "prefsrc": "10.1.0.2"},
    {"dst": "10.2.0.0/24", "dev": "br0", "prefsrc": "10.2.0.2"},
    {"dst": "10.3.0.0/24", "dev": "eth3"},
    {"dst": "10.4.0.0/24", "dev": "eth4"},
    {"dst": "10.9.0.0/24", "dev": "wg0"},
    {"dst": "2001:db8:1::/64", "dev": "eth0"},
    {"dst": "default", "gateway": "fe80::1", "dev": "eth0"},
]
NEIGH: list[dict[str, Any]] = [
    {"dst": "10.0.0.1", "dev": "eth0", "lladdr": "52:54:00:00:00:01", "state": ["REACHABLE"]},
    {"dst": "10.0.0.7", "dev": "eth0", "lladdr": "52:54:00:00:00:07", "state": ["STALE"]},
    {"dst": "10.0.0.8", "dev": "eth0", "state": ["FAILED"]},
    {"dst": "fe80::1", "dev": "eth0", "lladdr": "52:54:00:00:00:01", "state": ["REACHABLE"]},
    {"dst": "fe80::9", "dev": "eth0", "lladdr": "52:54:00:00:00:09", "state": ["DELAY"]},
    {"dst": "10.1.0.9", "dev": "bond0", "lladdr": "52:54:00:00:01:09", "state": ["REACHABLE"]},
]


def view(dst: str, **changes: Any) -> NetView:
    routes = routes_from_json(json.dumps(changes.get("routes", ROUTES)))
    return NetView(
        route=changes.get("route", lookup_route(routes, dst)),
        links=tuple(links_from_json(json.dumps(LINKS))),
        addresses=tuple(addresses_from_json(json.dumps(ADDRS))),
        neighbours=tuple(neighbours_from_json(json.dumps(changes.get("neigh", NEIGH)))))


def plan(dst: str, kernel: KernelFacts = K7, port: int = 6666, zone: str | None = None,
         **kw: Any) -> Any:
    return plan_target(Receiver(ip=dst, port=port, zone=zone), view(dst, **kw), kernel,
                       hostname="web1")


def test_plan_ipv4_via_gateway_uses_gateway_mac() -> None:
    p = plan("192.0.2.10")
    assert (p.interface, p.local_ip, p.next_hop, p.next_hop_kind) == \
        ("eth0", "10.0.0.2", "10.0.0.1", NextHop.GATEWAY)
    assert p.next_hop_mac == "52:54:00:00:00:01" and p.mac_state == "REACHABLE"
    assert p.param == "+r@10.0.0.2/eth0,6666@192.0.2.10/52:54:00:00:00:01"
    assert p.boot_param == "netconsole.netconsole=" + p.param
    assert p.userdata == (("hostname", "web1"),)
    assert p.sysdata == ("cpu_nr_enabled", "taskname_enabled", "msgid_enabled")
    parsed = parse_param(p.param, K7.version)
    assert parsed.ok and parsed.targets[0].params == p.target


def test_plan_ipv4_on_link_uses_receiver_mac_even_stale() -> None:
    p = plan("10.0.0.7", port=7000)
    assert p.next_hop_kind is NextHop.ON_LINK and p.next_hop == "10.0.0.7"
    assert p.next_hop_mac == "52:54:00:00:00:07"
    assert any("STALE" in n for n in p.notes)
    assert p.param.endswith(",7000@10.0.0.7/52:54:00:00:00:07")


@pytest.mark.parametrize("dst", ["10.0.0.99", "10.0.0.8"])
def test_plan_missing_or_failed_neighbour_leaves_mac_unknown(dst: str) -> None:
    p = plan(dst)
    assert p.next_hop_mac is None
    assert p.mac_state in ("missing", "FAILED")
    with pytest.raises(PlanError, match="unknown"):
        configfs_steps(p, None)


def test_plan_ipv6_global_via_link_local_gateway() -> None:
    p = plan("2001:db8:99::5")
    assert (p.interface, p.local_ip, p.next_hop) == ("eth0", "2001:db8:1::2", "fe80::1")
    assert p.next_hop_mac == "52:54:00:00:00:01"
    assert p.param == "+r@2001:db8:1::2/eth0,6666@2001:db8:99::5/52:54:00:00:00:01"
    assert parse_param(p.param).ok


def test_plan_ipv6_global_on_link() -> None:
    p = plan("2001:db8:1::9", neigh=[*NEIGH, {"dst": "2001:db8:1::9", "dev": "eth0",
                                             "lladdr": "52:54:00:00:00:19",
                                             "state": ["REACHABLE"]}])
    assert p.next_hop_kind is NextHop.ON_LINK and p.next_hop_mac == "52:54:00:00:00:19"


def test_plan_ipv6_link_local_uses_zone_and_link_local_source() -> None:
    p = plan("fe80::9", zone="eth0")
    assert (p.interface, p.local_ip, p.next_hop_kind) == ("eth0", "fe80::2", NextHop.ON_LINK)
    assert p.next_hop_mac == "52:54:00:00:00:09"
    assert p.param == "+r@fe80::2/eth0,6666@fe80::9/52:54:00:00:00:09"


def test_plan_ipv6_link_local_without_zone_is_refused() -> None:
    with pytest.raises(PlanError, match="link-local"):
        plan("fe80::9")


def test_plan_bond_master_is_fine() -> None:
    p = plan("10.1.0.9")
    assert p.interface == "bond0" and p.interface_kind == "bond"
    assert p.next_hop_mac == "52:54:00:00:01:09"
    assert any("bond" in n for n in p.notes)


def test_plan_bridge_master_is_fine() -> None:
    p = plan("10.2.0.9", neigh=[{"dst": "10.2.0.9", "dev": "br0",
                                 "lladdr": "52:54:00:00:02:09", "state": ["REACHABLE"]}])
    assert p.interface == "br0" and p.local_ip == "10.2.0.2"


def test_plan_bridge_port_is_refused_pointing_at_bridge() -> None:
    with pytest.raises(PlanError) as exc:
        plan("10.3.0.9")
    assert "eth3 is a slave of br0" in exc.value.message and "EBUSY" in exc.value.message
    assert "master br0 (a bridge)" in exc.value.hint


def test_plan_bond_slave_is_refused_pointing_at_bond() -> None:
    route = RouteLookup(dst="10.1.0.9", dev="eth1", gateway=None, prefsrc=None)
    with pytest.raises(PlanError) as exc:
        plan_target(Receiver(ip="10.1.0.9"), view("10.1.0.9", route=route), K7)
    assert "master bond0 (a bond)" in exc.value.hint


def test_plan_vrf_member_is_refused() -> None:
    with pytest.raises(PlanError, match="slave of vrf-blue") as exc:
        plan("10.4.0.9")
    assert "VRF" in exc.value.hint


@pytest.mark.parametrize(("route", "match"), [
    (RouteLookup(dst="10.0.0.2", dev="lo", gateway=None, prefsrc=None, type="local"),
     "this host"),
    (None, "no route"),
    (RouteLookup(dst="10.5.0.1", dev=None, gateway=None, prefsrc=None, type="unreachable"),
     "no route"),
])
def test_plan_refuses_local_or_no_route(route: RouteLookup | None, match: str) -> None:
    with pytest.raises(PlanError, match=match):
        plan_target(Receiver(ip="10.0.0.2"), view("10.0.0.2", route=route), K7)


def test_plan_refuses_non_ethernet() -> None:
    with pytest.raises(PlanError, match="not an Ethernet device"):
        plan("10.9.0.5")


def test_plan_no_address_of_family_is_edestaddrreq() -> None:
    route = RouteLookup(dst="2001:db8:2::1", dev="bond0", gateway=None, prefsrc=None)
    with pytest.raises(PlanError, match="EDESTADDRREQ"):
        plan_target(Receiver(ip="2001:db8:2::1"), view("x", route=route), K7)


def test_plan_ipv6_without_config_ipv6() -> None:
    k = KernelFacts(version=K7.version, dynamic=True, configfs=True, ipv6=False)
    with pytest.raises(PlanError, match="CONFIG_IPV6"):
        plan("2001:db8:99::5", kernel=k)


def test_capabilities_by_version() -> None:
    old = capabilities(KernelFacts(version=parse_release("4.19.0")))
    assert (old.extended, old.release, old.userdata, old.sysdata) == (True, False, False, ())
    k612 = capabilities(K612)
    assert (k612.release, k612.userdata, k612.sysdata) == (True, True, ())
    k616 = capabilities(KernelFacts(version=parse_release("6.16.1")))
    assert k616.sysdata == ("cpu_nr_enabled", "taskname_enabled")
    assert capabilities(K7).sysdata == ("cpu_nr_enabled", "taskname_enabled", "msgid_enabled")
    assert not capabilities(KernelFacts(version=parse_release("4.1.0"))).extended


def test_capabilities_from_files_beat_version() -> None:
    # A distribution 6.12 with a backported msgid toggle; a 7.x without release file.
    k = KernelFacts(version=K612.version, configfs=True,
                    target_files=frozenset({"enabled", "extended", "release", "dev_name"}),
                    userdata_files=frozenset({"msgid_enabled"}))
    caps = capabilities(k)
    assert caps.source == "files" and caps.sysdata == ("msgid_enabled",) and caps.userdata
    k2 = KernelFacts(version=K7.version, configfs=True,
                     target_files=frozenset({"enabled", "extended"}), userdata_files=None)
    c2 = capabilities(k2)
    assert not c2.release and not c2.userdata


def test_plan_old_kernel_basic_format() -> None:
    k = KernelFacts(version=parse_release("4.1.0"), builtin=False, dynamic=False)
    p = plan("192.0.2.10", kernel=k)
    assert p.param == "@10.0.0.2/eth0,6666@192.0.2.10/52:54:00:00:00:01"
    assert p.method is Method.MODULE_PARAM
    assert any("userdata needs configfs" in n for n in p.notes)


@pytest.mark.parametrize(("k", "method", "key"), [
    (KernelFacts(configfs=True, builtin=False), Method.CONFIGFS, "netconsole.netconsole"),
    (KernelFacts(dynamic=True, builtin=True), Method.CONFIGFS, "netconsole"),
    (KernelFacts(dynamic=False, builtin=False), Method.MODULE_PARAM, "netconsole.netconsole"),
    (KernelFacts(dynamic=False, builtin=True), Method.BOOT_PARAM, "netconsole"),
    (KernelFacts(), Method.CONFIGFS, "netconsole.netconsole"),
])
def test_method_and_cmdline_key(k: KernelFacts, method: Method, key: str) -> None:
    assert k.method is method and k.cmdline_key == key


def test_userdata_labels() -> None:
    assert userdata_entries("h", (("rack", "r42"), ("hostname", "web1.example"))) == \
        (("hostname", "web1.example"), ("rack", "r42"))
    for bad in (("a" * 54, "x"), ("bad/key", "x"), ("msgid_enabled", "1"), ("k", "a\nb"),
                ("k", "v" * 200)):
        with pytest.raises(PlanError):
            userdata_entries("h", (bad,))


@pytest.mark.parametrize(("text", "want"), [
    ("10.0.0.5", Receiver(ip="10.0.0.5", port=6666)),
    ("10.0.0.5:7000", Receiver(ip="10.0.0.5", port=7000)),
    ("2001:db8::5", Receiver(ip="2001:db8::5", port=6666)),
    ("[2001:db8::5]:7000", Receiver(ip="2001:db8::5", port=7000)),
    ("fe80::5%eth0", Receiver(ip="fe80::5", port=6666, zone="eth0")),
    ("[fe80::5%eth0]:7000", Receiver(ip="fe80::5", port=7000, zone="eth0")),
])
def test_receiver_from_text(text: str, want: Receiver) -> None:
    # Every form of HOST[:PORT] is tests/unit/test_hostport.py's; names resolve (I/O).
    assert receiver_from_text(text)[0] == want


@pytest.mark.parametrize("text", ["10.0.0.5:0", "10.0.0.5:x", "[::1", "[::1]x", ":6666"])
def test_receiver_from_text_rejects(text: str) -> None:
    with pytest.raises(PlanError, match=r"^receiver "):
        receiver_from_text(text)


def test_configfs_steps_new_target_in_order() -> None:
    p = plan("192.0.2.10")
    steps = configfs_steps(p, None)
    assert [str(s) for s in steps] == [
        "mkdir /sys/kernel/config/netconsole/netconsole",
        "echo eth0 > /sys/kernel/config/netconsole/netconsole/dev_name",
        "echo 10.0.0.2 > /sys/kernel/config/netconsole/netconsole/local_ip",
        "echo 192.0.2.10 > /sys/kernel/config/netconsole/netconsole/remote_ip",
        "echo 6665 > /sys/kernel/config/netconsole/netconsole/local_port",
        "echo 6666 > /sys/kernel/config/netconsole/netconsole/remote_port",
        "echo 52:54:00:00:00:01 > /sys/kernel/config/netconsole/netconsole/remote_mac",
        "echo 1 > /sys/kernel/config/netconsole/netconsole/extended",
        "echo 1 > /sys/kernel/config/netconsole/netconsole/release",
        "mkdir /sys/kernel/config/netconsole/netconsole/userdata/hostname",
        "echo web1 > /sys/kernel/config/netconsole/netconsole/userdata/hostname/value",
        "echo 1 > /sys/kernel/config/netconsole/netconsole/userdata/cpu_nr_enabled",
        "echo 1 > /sys/kernel/config/netconsole/netconsole/userdata/taskname_enabled",
        "echo 1 > /sys/kernel/config/netconsole/netconsole/userdata/msgid_enabled",
        "echo 1 > /sys/kernel/config/netconsole/netconsole/enabled",
    ]


def _current(p: Any, enabled: str = "1", **over: str) -> Any:
    files = {"enabled": enabled, "extended": "1", "release": "1", "dev_name": "eth0",
             "local_ip": "10.0.0.2", "remote_ip": "192.0.2.10", "local_port": "6665",
             "remote_port": "6666", "remote_mac": "52:54:00:00:00:01",
             "cpu_nr_enabled": "1", "taskname_enabled": "1", "msgid_enabled": "1"}
    files.update(over)
    return parse_target_dir(p.name, {k: v + "\n" for k, v in files.items()},
                            {"hostname": "web1\n"})


def test_configfs_steps_idempotent_when_matching() -> None:
    p = plan("192.0.2.10")
    assert configfs_steps(p, _current(p)) == ()


def test_configfs_steps_update_in_place_disables_first() -> None:
    p = plan("192.0.2.10")
    cur = _current(p, remote_mac="52:54:00:00:00:99")
    steps = [str(s) for s in configfs_steps(p, cur)]
    base = "/sys/kernel/config/netconsole/netconsole"
    assert steps == [f"echo 0 > {base}/enabled", f"echo 52:54:00:00:00:01 > {base}/remote_mac",
                     f"echo 1 > {base}/enabled"]


def test_configfs_steps_userdata_change_needs_no_disable() -> None:
    p = plan_target(Receiver(ip="192.0.2.10"), view("192.0.2.10"), K7, hostname="web2",
                    labels=(("rack", "r1"),))
    cur = _current(p)
    cur.userdata["old"] = "x"
    ops = [(s.op, s.path, s.value) for s in configfs_steps(p, cur)]
    assert ops == [(Op.RMDIR, "netconsole/userdata/old", None),
                   (Op.WRITE, "netconsole/userdata/hostname/value", "web2"),
                   (Op.MKDIR, "netconsole/userdata/rack", None),
                   (Op.WRITE, "netconsole/userdata/rack/value", "r1")]


def test_configfs_steps_disabled_target_is_enabled_without_writing_zero() -> None:
    p = plan("192.0.2.10")
    steps = configfs_steps(p, _current(p, enabled="0", dev_name="eth9"))
    assert [s.value for s in steps] == ["eth0", "1"]


def test_configfs_steps_skip_files_the_kernel_lacks() -> None:
    p = plan("192.0.2.10")
    files = frozenset({"enabled", "extended", "dev_name", "local_ip", "remote_ip",
                       "local_port", "remote_port", "remote_mac"})
    steps = configfs_steps(p, None, files, frozenset({"cpu_nr_enabled"}))
    paths = [s.path for s in steps]
    assert "netconsole/release" not in paths and "netconsole/userdata/msgid_enabled" not in paths
    assert "netconsole/userdata/cpu_nr_enabled" in paths


def test_remove_steps() -> None:
    p = plan("192.0.2.10")
    assert [str(s).split()[-1].rsplit("/", 2)[-2:] for s in remove_steps(_current(p))] == [
        ["netconsole", "enabled"], ["userdata", "hostname"], ["netconsole", "netconsole"]]
    assert [s.op for s in remove_steps(_current(p, enabled="0"))] == [Op.RMDIR, Op.RMDIR]


def test_module_param_value_joins_and_limits() -> None:
    p = plan("192.0.2.10")
    assert module_param_value(p, ("@/eth1,@10.9.9.9/",)) == "@/eth1,@10.9.9.9/;" + p.param
    with pytest.raises(PlanError, match="keeps only 255"):
        module_param_value(p, ("@/eth1,@10.9.9.9/" + "x" * 240,))
