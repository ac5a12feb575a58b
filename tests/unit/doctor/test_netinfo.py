"""host.netinfo: `ip -j` and `ip` text parsers, and the route lookup."""

from __future__ import annotations

import json

from netconsole.host.netinfo import (
    Route,
    addresses_from_json,
    find_neighbour,
    links_from_json,
    links_from_text,
    lookup_route,
    neighbours_from_text,
    routes_from_json,
    routes_from_text,
)


def test_links_from_json_master_and_kind() -> None:
    data = [{"ifindex": 2, "ifname": "eth0", "flags": ["UP", "LOWER_UP", "SLAVE"],
             "master": "bond0", "address": "aa:bb:cc:dd:ee:ff"},
            {"ifindex": 3, "ifname": "bond0", "flags": ["UP"], "linkinfo": {"info_kind": "bond"}}]
    links = links_from_json(json.dumps(data))
    assert links[0].master == "bond0" and links[0].carrier and links[0].up
    assert links[1].kind == "bond"


def test_links_from_text_vlan_name_and_no_carrier() -> None:
    text = ("3: eth0.10@eth0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 state DOWN\n"
            "    link/ether aa:bb:cc:dd:ee:ff brd ff:ff:ff:ff:ff:ff\n")
    (link,) = links_from_text(text)
    assert link.name == "eth0.10" and link.carrier is False and link.mac == "aa:bb:cc:dd:ee:ff"


def test_addresses_from_json() -> None:
    data = [{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.0.2",
                                              "prefixlen": 24},
                                             {"family": "inet6", "local": "fe80::1",
                                              "prefixlen": 64, "scope": "link"}]}]
    addrs = addresses_from_json(json.dumps(data))
    assert [(a.family, a.address, a.scope) for a in addrs] == [(4, "10.0.0.2", "global"),
                                                               (6, "fe80::1", "link")]


def test_lookup_route_longest_prefix_and_metric() -> None:
    routes = routes_from_text("default via 10.0.0.1 dev eth0 metric 100\n"
                              "default via 10.0.1.1 dev eth1 metric 50\n"
                              "10.0.0.0/24 dev eth0 proto kernel scope link src 10.0.0.2\n"
                              "192.168.5.0/24 via 10.0.0.254 dev eth0\n"
                              "fd00::/64 dev eth0 metric 256\n")
    assert lookup_route(routes, "8.8.8.8").dev == "eth1"  # type: ignore[union-attr]
    hit = lookup_route(routes, "10.0.0.9")
    assert hit is not None and hit.gateway is None and hit.prefsrc == "10.0.0.2"
    assert lookup_route(routes, "192.168.5.7").gateway == "10.0.0.254"  # type: ignore[union-attr]
    assert lookup_route(routes, "fd00::9").dev == "eth0"  # type: ignore[union-attr]
    assert lookup_route(routes, "2001:db8::1") is None
    assert lookup_route(routes, "not-an-ip") is None


def test_routes_from_json_host_route() -> None:
    (r,) = routes_from_json(json.dumps([{"dst": "10.9.9.9", "dev": "eth0"}]))
    assert r == Route(dst="10.9.9.9", dev="eth0")
    assert lookup_route([r], "10.9.9.9") is not None


def test_neighbours_from_text_and_find() -> None:
    n = neighbours_from_text("10.0.0.1 dev eth0 lladdr 52:54:00:00:00:01 REACHABLE\n"
                             "fd00::1 dev eth0 FAILED\n")
    assert find_neighbour(n, "10.0.0.1", "eth0").lladdr == "52:54:00:00:00:01"  # type: ignore[union-attr]
    assert find_neighbour(n, "fd00:0::1").lladdr is None  # type: ignore[union-attr]
    assert find_neighbour(n, "10.0.0.1", "eth1") is None
