"""`netconsole doctor` in the guest: its verdict on a snapshot against what the kernel did.

The `python` boot (lab.scenarios.python; on 6.12 the very boot test_qemu_python.py
reads, on 7.x one more) runs `python3 -m netconsole doctor --collect` three times
in the guest, each snapshot carried out base64 on the lab's serial port and
examined here with `netconsole doctor --root SNAPSHOT --json`:

* `healthy`: configfs target `ok` (extended) enabled towards 10.0.2.2 with the
  gateway's MAC: doctor says it works (exit 0), and the records arrive.
* `gateway`: target `gw` towards 10.0.2.2, which the guest now reaches through a
  router (a host route via 10.0.2.1), `remote_mac` left at the kernel's default
  (broadcast): doctor says `mac-broadcast-via-gateway` (a real router drops
  frames to ff:ff:ff:ff:ff:ff that carry another host's IP). QEMU's user network
  is no such router: slirp routes by IP and ignores the destination MAC, so the
  datagrams *do* arrive. (The receiver must stay 10.0.2.2: libslirp 4.7 sends
  any other destination out to the real network, not to 127.0.0.1.)
* `noaddr`: eth0's address flushed, target `noaddr` on eth0 configured but not yet
  enabled: doctor predicts `iface-no-address`; then `echo 1 > enabled` and the
  kernel refuses with `no IP address for eth0, aborting`.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lab import GATEWAY_MAC, HOST_IP, Kernel, Lab, Run, build_python, compare, decode_port
from lab._doctor import DoctorReport, extract_snapshot, run_doctor, snapshot_member
from lab._pcap import frames
from lab.scenarios import END_MARK, GW_RECORDS, GW_ROUTER, PY_HELLO, SCENARIOS, SNAPSHOTS

pytestmark = pytest.mark.kernel

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# conftest's `python_run` boots the python scenario on this kernel: reuse that boot.
PYTHON_KERNEL = "debian12-6.12"
OK, GW, NOADDR = 0, 1, 2
BROADCAST = "ff:ff:ff:ff:ff:ff"
NO_IP_LINE = b"netpoll: netconsole: no IP address for eth0, aborting"


@pytest.fixture(scope="session")
def doctor_run(request: pytest.FixtureRequest, lab: Lab, kernel: Kernel) -> Run:
    """One Python boot per kernel: the `python` scenario (on 6.12 conftest's boot)."""
    if kernel.label == PYTHON_KERNEL:
        run = request.getfixturevalue("python_run")
        assert isinstance(run, Run)
        return run
    images = build_python(lab.cache, PROJECT_ROOT)
    steps, ports = SCENARIOS["python"]
    return lab.run(kernel, "python", steps, ports=ports, timeout=240.0,
                   extra_images=images.parts)


@pytest.fixture(scope="session")
def reports(doctor_run: Run) -> dict[str, DoctorReport]:
    out = {}
    for name in SNAPSHOTS:
        path = extract_snapshot(doctor_run.boot.lab_text, name, doctor_run.boot.workdir)
        out[name] = run_doctor(path)
    return out


def test_doctor_collects_in_the_guest(doctor_run: Run, reports: dict[str, DoctorReport]) -> None:
    for name in SNAPSHOTS:
        assert doctor_run.rcs[f"py.collect.{name}"] == 0, doctor_run.boot.lab_text[-3000:]
        release = snapshot_member(reports[name].snapshot, "proc/sys/kernel/osrelease")
        assert release is not None and release.strip() == doctor_run.kernel.release
        # what the live host gave: netlink views and the kernel log
        assert snapshot_member(reports[name].snapshot, "ip/route.json") is not None
        assert snapshot_member(reports[name].snapshot, "dmesg.txt") is not None
        assert reports[name].returncode == reports[name].exit_code


def test_healthy_target_doctor_says_it_works(doctor_run: Run,
                                             reports: dict[str, DoctorReport]) -> None:
    report = reports["healthy"]
    assert report.works and report.exit_code == 0, report.describe()
    assert report.errors() == []
    assert "configfs-target-disabled" not in report.codes("ok")
    report.find("mac-ok", "ok")
    report.find("console-registered")
    # ... and the kernel agrees: the records written after enabling arrived
    decoded = decode_port(doctor_run.datagrams, doctor_run.ports[OK])
    assert decoded.unexpected == []
    console = doctor_run.console
    start = console.first(PY_HELLO).ts_usec
    end = console.first(END_MARK.encode()).ts_usec
    window = [line for line in console.lines if start <= line.ts_usec <= end]
    result = compare(window, decoded.records)
    assert not result.missing, result.report()
    assert [r.text for r in decoded.records if r.text == PY_HELLO] == [PY_HELLO]
    sent = [f for f in frames(doctor_run.pcap) if f.dst_port == doctor_run.ports[OK]]
    assert {(f.dst_mac, f.dst_ip) for f in sent} == {(GATEWAY_MAC, HOST_IP)}


def test_gateway_broadcast_mac_doctor_predicts(doctor_run: Run,
                                               reports: dict[str, DoctorReport]) -> None:
    report = reports["gateway"]
    finding = report.find("mac-broadcast-via-gateway", "gw")
    assert finding.severity == "error"
    assert not report.works and report.exit_code == 1
    assert [f.code for f in report.errors()] == ["mac-broadcast-via-gateway"], \
        report.describe()
    # the guest's view of it: routed via the router, MAC left at broadcast
    assert doctor_run.rcs["gw.route"] == 0
    assert doctor_run.lab_lines(rf"route: 10\.0\.2\.2 via {re.escape(GW_ROUTER)} dev eth0")
    assert doctor_run.lab_lines(r"gw remote_mac: ff:ff:ff:ff:ff:ff")


def test_gateway_broadcast_mac_what_qemu_did(doctor_run: Run) -> None:
    """The kernel sent the frames (broadcast MAC, IP 10.0.2.2); QEMU's slirp ignores the
    MAC and delivered them to 127.0.0.1: on this network nothing is lost. Doctor's
    error stands for a real router, which drops them."""
    assert doctor_run.rcs["gw.enabled=1"] == 0
    # on the wire (QEMU's capture of eth0): broadcast frames carrying the receiver's IP
    sent = [f for f in frames(doctor_run.pcap) if f.dst_port == doctor_run.ports[GW]]
    assert sent and {(f.dst_mac, f.dst_ip) for f in sent} == {(BROADCAST, HOST_IP)}
    decoded = decode_port(doctor_run.datagrams, doctor_run.ports[GW])
    assert len(decoded.records) == len(sent)  # one datagram each: all arrived
    assert decoded.unexpected == []
    got = [r.text for r in decoded.records]
    for text in GW_RECORDS:
        assert got.count(text.encode()) == 1, got
        assert doctor_run.console.find(text.encode())
    lines = [line for line in doctor_run.console.lines if line.text in
             {t.encode() for t in GW_RECORDS}]
    result = compare(lines, [r for r in decoded.records if r.text in
                             {t.encode() for t in GW_RECORDS}])
    assert not result.missing and not result.extra, result.report()


def test_no_address_doctor_predicts_the_kernels_refusal(
        doctor_run: Run, reports: dict[str, DoctorReport]) -> None:
    report = reports["noaddr"]
    # the prediction, from a snapshot taken before `echo 1 > enabled`
    dmesg = snapshot_member(report.snapshot, "dmesg.txt") or ""
    assert "no IP address" not in dmesg
    finding = report.find("iface-no-address", "noaddr")
    assert finding.severity == "error"
    assert not report.works and report.exit_code == 1
    # the failure, as the kernel printed it
    lines = [line.text for line in doctor_run.console.lines]
    assert NO_IP_LINE in lines, [t for t in lines if b"aborting" in t]
    assert doctor_run.rcs["noaddr.enabled=1"] != 0
    assert "Destination address required" in doctor_run.boot.lab_text
    assert doctor_run.on_port(doctor_run.ports[NOADDR]) == []
