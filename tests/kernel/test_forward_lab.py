"""`netconsole forward` in the QEMU guest: the netconsole module absent, forward
reading the guest's real /dev/kmsg, the host receiving.

One boot (Debian 12's 6.12 kernel with the Python layers, like `python_run`):

1. the NIC comes up; netconsole.ko is never loaded;
2. records are written to /dev/kmsg (plain, escapes, one long enough to be
   ncfrag-fragmented); a ramoops dump in the documented format is put in a
   pstore directory;
3. `netconsole forward --once` sends the whole ring and the dump;
4. more records; the same command again with the same state file (a restart).

On the host every record the console printed arrives, each forward record
exactly once, the dump's records carry ` pstore=` and ` boot=previous`, and
the second run sends only what is new and no dump.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab import HOST_IP, Lab, Run, Script, build_python, compare, decode
from lab.scenarios import python_command

from netconsole.stream import Duplicate, Reboot, Record

pytestmark = pytest.mark.kernel

PROJECT_ROOT = Path(__file__).resolve().parents[2]
KERNEL = "debian12-6.12"  # the kernel the Python layers are built for (conftest)

FIRST = [b"lab: forward first %d" % i for i in range(4)] + [
    b"lab: forward escapes tab[\t] backslash[\\] utf8[caf\xc3\xa9]",
    # 818 bytes, 1418 once escaped: 2 ncfrag fragments. (Not longer: 6.12 formats
    # a /dev/kmsg record, escapes included, into PRINTK_MESSAGE_MAX = 2048 bytes and
    # cuts the rest, for /dev/kmsg readers and extended consoles alike.)
    b"lab: forward LONG " + b"\\x" * 200 + b"y" * 400,
]
SECOND = [b"lab: forward second %d" % i for i in range(3)]
RAMOOPS = (b"Panic#1 Part1\n"
           b"<6>[    0.000000] Linux version 6.1.0-lab (previous boot)\n"
           b"<0>[   42.000100] Kernel panic - not syncing: sysrq triggered crash\n"
           b"<4>[   42.000200] Call Trace:\n")


def _forward_steps(s: Script, ports: list[int]) -> None:
    s.setup()
    s.sh("[ ! -e /sys/module/netconsole ]; labrc fw.no_module $?")
    s.extra_files["lab/dmesg-ramoops-0"] = (RAMOOPS, 0o644)
    s.sh("mkdir -p /tmp/pstore && cp /lab/dmesg-ramoops-0 /tmp/pstore/")
    s.kmsg_many(FIRST)
    cmd = (f"python3 -m netconsole forward {HOST_IP}:{ports[0]} --once --stats "
           "--state /tmp/forward.state --pstore-dir /tmp/pstore --release "
           "--sysdata msgid,release --label lab=forward")
    python_command(s, "forward1", cmd)
    s.kmsg_many(SECOND)
    python_command(s, "forward2", cmd)
    s.sh("lsmod | grep -q '^netconsole'; labrc fw.lsmod_netconsole $?")


@pytest.fixture(scope="module")
def forward_run(lab: Lab) -> Run:
    kernel = lab.kernel(KERNEL)
    images = build_python(lab.cache, PROJECT_ROOT)
    return lab.run(kernel, "forward", _forward_steps, ports=1, timeout=180.0,
                   extra_images=images.parts)


def _records(run: Run) -> list[Record]:
    # Each --once run has its own socket; QEMU's NAT may give each its own
    # host-side source port, so gather every stream that reached the port.
    out: list[Record] = []
    for decoded in decode(d for d in run.datagrams if d.local_port == run.ports[0]).values():
        assert not decoded.of(Duplicate), decoded.of(Duplicate)
        assert not [e for e in decoded.of(Reboot)], decoded.of(Reboot)
        out += decoded.records
    return out


def _stats(run: Run) -> Iterator[dict[str, object]]:
    for line in run.boot.lab_text.splitlines():
        if line.startswith("{") and '"boot_id"' in line:
            yield json.loads(line)


def test_forward_lab_module_absent_and_forward_ran(forward_run: Run) -> None:
    rcs = forward_run.rcs
    assert rcs["fw.no_module"] == 0 and rcs["fw.lsmod_netconsole"] != 0, rcs
    assert rcs["py.forward1"] == 0 and rcs["py.forward2"] == 0, forward_run.boot.lab_text


def test_forward_lab_every_record_once(forward_run: Run) -> None:
    live = [r for r in _records(forward_run) if r.field(b"pstore") is None]
    texts = Counter(r.text for r in live)
    for text in FIRST + SECOND:
        assert texts[text] == 1, (text, texts[text])
    seqs = Counter(r.seq for r in live)
    assert max(seqs.values()) == 1  # no record twice, restart included
    assert all(r.release and r.kernel_release == r.release for r in live)
    assert all(r.field(b"lab") == b"forward" and r.msgid is not None for r in live)
    # Everything the kernel printed on its console up to the last record forward
    # read arrived (forward sends every level; the console shows fewer).
    last = max(r.ts_usec or 0 for r in live)
    console = [x for x in forward_run.console.lines if x.ts_usec <= last]
    result = compare(console, live)
    assert not result.missing, result.report()


def test_forward_lab_pstore_dump_marked_and_sent_once(forward_run: Run) -> None:
    dumped = [r for r in _records(forward_run) if r.field(b"pstore") is not None]
    assert [r.text for r in dumped] == [
        b"Linux version 6.1.0-lab (previous boot)",
        b"Kernel panic - not syncing: sysrq triggered crash", b"Call Trace:"]
    assert all(r.field(b"pstore") == b"dmesg-ramoops-0" and r.field(b"boot") == b"previous"
               for r in dumped)
    first, second = list(_stats(forward_run))
    assert (first["pstore_dumps"], second["pstore_dumps"]) == (1, 0)
    assert second["pstore_already_sent"] == 1


def test_forward_lab_restart_sends_only_what_is_new(forward_run: Run) -> None:
    first, second = list(_stats(forward_run))
    assert first["resumed_after_seq"] is None
    assert second["resumed_after_seq"] == first["state_seq"]
    assert second["skipped"] == first["read"]
    assert isinstance(second["sent"], int) and second["sent"] >= len(SECOND)
