"""The lab's own pure parts, without QEMU: console parser, cpio writer, apt sources,
printf escaping, comparison. These run in the ordinary (non-kernel) suite."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from lab import ConsoleLine, compare, parse_console
from lab._apt import _parse_deb822, _parse_one_line, debian_mirror
from lab._guest import lab_rcs, printf_format
from lab._initramfs import CpioWriter, gzip_archive
from lab._qemu import BootResult
from lab._run import died_before_init

from netconsole.stream import Record, Sender
from netconsole.wire import Mode

SENDER = Sender(host="127.0.0.1", port=1, local_port=2)


def _record(ts: int, text: bytes) -> Record:
    return Record(sender=SENDER, mode=Mode.EXTENDED, received=0.0, text=text, ts_usec=ts)


def test_parse_console_skips_firmware_and_keeps_kernel_lines() -> None:
    raw = (b"SeaBIOS (version 1.16)\r\n"
           b"Booting... oc\x1b[?7l\x1b[2J[    0.000000] Linux version 6.12\r\n"
           b"LAB: init start\n"
           b"** 42 printk messages dropped **\n"
           b"[   12.345678] lab: esc[\x1b] tab[\t]\r\n"
           b"[ 1234.000001] \n")
    console = parse_console(raw)
    assert [line.key for line in console.lines] == [
        (0, b"Linux version 6.12"), (12_345_678, b"lab: esc[\x1b] tab[\t]"), (1_234_000_001, b"")]
    assert console.dropped == [42]
    assert b"LAB: init start" in console.other


def test_parse_console_cuts_firmware_output_ended_by_a_carriage_return() -> None:
    """Seen in CI and locally, about one boot in five: the firmware's `ok` then `\\r`."""
    raw = (b"Probing EDD (edd=off to disable)... ok\r[    0.000000] Linux version 7.2\r\n"
           b"[    0.000000] Command line: console=ttyS0\r\n")
    assert [line.text for line in parse_console(raw).lines] == [
        b"Linux version 7.2", b"Command line: console=ttyS0"]


def test_compare_counts_missing_and_extra_lines() -> None:
    console = [ConsoleLine(1, b"a"), ConsoleLine(2, b"b"), ConsoleLine(2, b"c")]
    result = compare(console, [_record(1, b"a"), _record(2, b"b\nc"), _record(3, b"x")])
    assert (result.matched, result.missing, result.extra) == (3, [], [(3, b"x")])
    assert compare(console, [_record(1, b"a")]).missing == [(2, b"b"), (2, b"c")]


def test_cpio_writer_archive_lists_with_cpio() -> None:
    if shutil.which("cpio") is None:
        pytest.skip("cpio not installed")  # lab prerequisite, installed by ci-prepare.sh
    w = CpioWriter()
    w.file("lab/lib.sh", b"echo hi\n", 0o644)
    w.symlink("bin/sh", "/bin/busybox")
    w.char_device("dev/console", 5, 1)
    data = gzip.decompress(gzip_archive(w))
    out = subprocess.run(["cpio", "-it", "--quiet"], input=data, capture_output=True,
                         check=True).stdout.decode().split()
    assert out == ["lab", "lab/lib.sh", "bin", "bin/sh", "dev", "dev/console"]
    assert len(data) % 512 == 0


def test_apt_sources_both_formats() -> None:
    one = _parse_one_line("deb [signed-by=/k.gpg] http://m/debian bookworm main\n# deb x y\n")
    assert [(s.uri, s.suites, s.signed_by) for s in one] == [
        ("http://m/debian", ("bookworm",), "/k.gpg")]
    deb822 = _parse_deb822("Types: deb\nURIs: http://m/debian\nSuites: bookworm bookworm-updates\n"
                           "Components: main\n\nTypes: deb\nURIs: http://m/debian-security\n"
                           "Suites: bookworm-security\nComponents: main\n")
    assert debian_mirror(deb822).uri == "http://m/debian"


def test_printf_format_survives_busybox_printf() -> None:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox not installed")
    text = b"tab[\t] bs[\\] pct[%] q['] dq[\"] utf8[caf\xc3\xa9] del[\x7f] nl[\n]"
    out = subprocess.run([busybox, "sh", "-c", f"printf {printf_format(text)}"],
                         capture_output=True, check=True).stdout
    assert out == text


def test_lab_rcs_reads_the_last_value() -> None:
    assert lab_rcs("LABRC: a 0\nnoise\nLABRC: b 1\nLABRC: a 2\n") == {"a": 2, "b": 1}


def test_died_before_init_only_when_the_scenario_never_started(tmp_path: Path) -> None:
    def result(console: bytes, lab: bytes) -> BootResult:
        return BootResult(workdir=tmp_path, console=console, lab=lab, returncode=0,
                          seconds=1.0, timed_out=False)

    early = b"[    1.3] Oops: int3: 0000 [#1]\n[    1.3] Kernel panic - not syncing: Fatal\n"
    assert died_before_init(result(early, b""))
    # a scenario that panics on purpose has printed its steps first
    assert not died_before_init(result(early, b"LAB: crash now\n"))
    assert not died_before_init(result(b"[    0.0] Linux version 7.2\n", b""))
