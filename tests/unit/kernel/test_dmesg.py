"""The dmesg catalogue: every era's lines, every log format people paste (§5.1, §6.1)."""

from __future__ import annotations

import pytest

from netconsole.kernel.dmesg import (
    ENOTSUPP,
    banners,
    errno_text,
    match_line,
    normalize,
    scan,
)


@pytest.mark.parametrize(
    ("line", "code", "fields"),
    [
        ("netpoll: netconsole: ens5 doesn't support polling, aborting", "dmesg-no-polling",
         {"dev": "ens5"}),
        ("netconsole: eth0: eth0 doesn't support polling, aborting.", "dmesg-no-polling",
         {"dev": "eth0"}),
        ("netpoll: netconsole: usb0 doesn't exist, aborting", "dmesg-dev-missing",
         {"dev": "usb0"}),
        ("netpoll: netconsole: eth0 is a slave device, aborting", "dmesg-slave", {"dev": "eth0"}),
        ("netpoll: netconsole: device eth0 not up yet, forcing it", "dmesg-forcing-up",
         {"dev": "eth0"}),
        ("netpoll: netconsole: failed to open eth0", "dmesg-open-failed", {"dev": "eth0"}),
        ("netpoll: netconsole: timeout waiting for carrier", "dmesg-carrier-timeout", {}),
        ("netpoll: netconsole: carrier detect appears untrustworthy, waiting 4 seconds",
         "dmesg-carrier-untrustworthy", {}),
        ("netpoll: netconsole: no IP address for eth0, aborting", "dmesg-no-ip", {"dev": "eth0"}),
        ("netpoll: netconsole: no IPv6 address for eth0, aborting", "dmesg-no-ipv6",
         {"dev": "eth0"}),
        ("netpoll: netconsole: IPv6 is not supported eth0, aborting", "dmesg-ipv6-unsupported",
         {"dev": "eth0"}),
        ("netpoll: netconsole: couldn't parse config at '10.0.0.2'!", "dmesg-parse-error",
         {"rest": "10.0.0.2"}),
        ("netconsole: netconsole: couldn't parse config at ''!", "dmesg-parse-error",
         {"rest": ""}),
        ("netconsole: couldn't parse config at 10.0.0.2!", "dmesg-parse-error",
         {"rest": "10.0.0.2"}),
        ("netconsole: Netconsole configuration error. Release feature requires extended log "
         "message", "dmesg-release-needs-extended", {}),
        ("netconsole: Not enabling netconsole. Release feature requires extended log message",
         "dmesg-release-needs-extended", {}),
        ("netconsole: cleaning up", "dmesg-cleaning-up", {}),
        ("netconsole: Not enabling netconsole for cmdline0. Netpoll setup failed",
         "dmesg-cmdline-not-enabled", {"target": "cmdline0"}),
        ("netconsole: network logging started", "dmesg-logging-started", {}),
        ("console [netcon0] enabled", "dmesg-console-enabled", {"console": "netcon0"}),
        ("printk: console [netcon_ext0] enabled", "dmesg-console-enabled",
         {"console": "netcon_ext0"}),
        ("printk: legacy console [netcon_ext0] enabled", "dmesg-console-enabled",
         {"console": "netcon_ext0"}),
        ("netconsole: network logging stopped on interface eth0 as it is joining a master "
         "device", "dmesg-logging-stopped", {"dev": "eth0", "why": "is joining a master device"}),
        ("netconsole: network logging resumed on interface eth0", "dmesg-logging-resumed",
         {"dev": "eth0"}),
        ("netconsole: network logging has already stopped", "dmesg-already",
         {"state": "stopped"}),
        ("netconsole: target (t1) is enabled, disable to update parameters",
         "dmesg-target-busy", {"target": "t1"}),
        ("netpoll: netconsole: warning: whitespace is not allowed", "dmesg-whitespace", {}),
        ("netconsole: string doesn't fit in 255 chars.", "dmesg-param-too-long",
         {"max": "255"}),
        ("netconsole: netconsole: remote IP address not configured, aborting",
         "dmesg-remote-ip-unset", {}),
        ("netconsole: netconsole: local and remote IP address families differ, aborting",
         "dmesg-families-differ", {}),
        ("bond0: master_dev is using netpoll, but new slave device does not support netpoll",
         "dmesg-bond-slave-no-netpoll", {}),
        ("br0: new device vnet0 does not support netpoll (disabling)", "dmesg-bridge-no-netpoll",
         {"dev": "vnet0"}),
        ("debug: ignoring loglevel setting.", "dmesg-ignore-loglevel", {}),
        ("modprobe: ERROR: could not insert 'netconsole': Unknown error 524",
         "user-unknown-error-524", {}),
        ("modprobe: ERROR: could not insert 'netconsole': Operation not permitted",
         "user-insert-failed", {"error": "Operation not permitted"}),
    ],
)
def test_match_line_catalogue(line: str, code: str, fields: dict[str, str]) -> None:
    m = match_line(line)
    assert m is not None and m.code == code
    assert {k: v for k, v in m.fields.items() if k in fields} == fields


def test_match_line_era_from_prefix() -> None:
    assert match_line("netpoll: netconsole: local port 6665").era == "netpoll"  # type: ignore[union-attr]
    assert match_line("netconsole: netconsole: local port 6665").era == "netconsole"  # type: ignore[union-attr]


def test_match_line_ignores_unrelated_lines() -> None:
    assert match_line("e1000e: eth0 NIC Link is Up 1000 Mbps Full Duplex") is None
    assert match_line("local port 22") is None


@pytest.mark.parametrize(
    "raw",
    [
        "[  812.338421] netpoll: netconsole: ens5 doesn't support polling, aborting",
        "<3>[  812.338421] netpoll: netconsole: ens5 doesn't support polling, aborting",
        "[Tue Nov 26 02:27:34 2026] netpoll: netconsole: ens5 doesn't support polling, aborting",
        "2026-11-26T02:27:34,123456+00:00 netpoll: netconsole: ens5 doesn't support polling, "
        "aborting",
        "Nov 26 02:27:34 ip-172-31-21-88 kernel: [  812.338421] netpoll: netconsole: ens5 "
        "doesn't support polling, aborting",
        "3,1234,812338421,-;netpoll: netconsole: ens5 doesn't support polling, aborting",
        "netpoll: netconsole: ens5 doesn't support polling, aborting",
    ],
)
def test_normalize_log_formats(raw: str) -> None:
    assert normalize(raw) == "netpoll: netconsole: ens5 doesn't support polling, aborting"


def test_banners_groups_a_target() -> None:
    lines = [
        "[1] netpoll: netconsole: local port 6665",
        "[1] netpoll: netconsole: local IPv4 address 0.0.0.0",
        "[1] netpoll: netconsole: interface 'ens5'",
        "[1] netpoll: netconsole: remote port 6666",
        "[1] netpoll: netconsole: remote IPv4 address 10.0.0.5",
        "[1] netpoll: netconsole: remote ethernet address ff:ff:ff:ff:ff:ff",
        "[2] netconsole: netconsole: local port 6665",
        "[2] netconsole: netconsole: local IPv6 address fd00::2",
        "[2] netconsole: netconsole: interface name 'eth1'",
        "[2] netconsole: netconsole: local ethernet address 'ff:ff:ff:ff:ff:ff'",
        "[2] netconsole: netconsole: remote port 6666",
        "[2] netconsole: netconsole: remote IPv6 address fd00::1",
        "[2] netconsole: netconsole: remote ethernet address 52:54:00:ab:cd:ef",
    ]
    b = banners(scan(lines))
    assert [(x.dev, x.remote_ip, x.remote_mac, x.era) for x in b] == [
        ("ens5", "10.0.0.5", "ff:ff:ff:ff:ff:ff", "netpoll"),
        ("eth1", "fd00::1", "52:54:00:ab:cd:ef", "netconsole"),
    ]
    assert b[0].lines == (1, 2, 3, 4, 5, 6)


def test_errno_text_524() -> None:
    assert errno_text(ENOTSUPP) == 'ENOTSUPP (524, "Unknown error 524")'
