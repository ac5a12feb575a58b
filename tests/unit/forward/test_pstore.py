"""pstore dumps written in the kernel's kmsg_dump format → records."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import pytest

from netconsole.forward.pstore import (
    DEFAULT_LEVEL,
    decompress,
    find_dumps,
    order_dumps,
    parse_dump,
    read_dump,
)

# What pstore_dump() writes: "%s#%d Part%u\n", then kmsg_dump_get_buffer(syslog=true)
# lines, `<facility<<3|level>[%5lu.%06lu] text`.
RAMOOPS = (
    b"Panic#1 Part1\n"
    b"<6>[    0.000000] Linux version 6.12.38+deb12-amd64 (debian-kernel@lists.debian.org)\n"
    b"<6>[   12.345678] sysrq: Trigger a crash\n"
    b"<0>[   12.345700] Kernel panic - not syncing: sysrq triggered crash\n"
    b"<4>[   12.345710] CPU: 0 UID: 0 PID: 1 Comm: sh Not tainted 6.12.38+deb12-amd64 #1\n"
    b"<4>[   12.345720] Call Trace:\n"
    b"<4>[   12.345730]  <TASK>\n"
    b"<12>[   12.345740] a user record at facility 1\n"
)


def test_parse_dump_ramoops_header_and_lines() -> None:
    d = parse_dump("dmesg-ramoops-0", RAMOOPS)
    assert (d.name, d.reason, d.part) == ("dmesg-ramoops-0", "Panic", 1)
    assert [r.seq for r in d.records] == list(range(7))
    panic = d.records[2]
    assert (panic.level, panic.facility, panic.ts_usec) == (0, 0, 12_345_700)
    assert panic.text == b"Kernel panic - not syncing: sysrq triggered crash"
    assert d.records[5].text == b" <TASK>"  # the kernel's own indentation is kept
    assert (d.records[6].facility, d.records[6].level) == (1, 4)
    assert d.digest == hashlib.sha256(RAMOOPS).hexdigest()


def test_parse_dump_without_syslog_prefix_and_with_caller() -> None:
    d = parse_dump("dmesg-efi-1", b"Oops#2 Part3\n[    1.500000][    T1] init: oops\n"
                   b"[    1.600000][    C0] irq context\n")
    assert (d.reason, d.part) == ("Oops", 3)
    assert [(r.level, r.ts_usec, r.caller, r.text) for r in d.records] == [
        (DEFAULT_LEVEL, 1_500_000, "T1", b"init: oops"),
        (DEFAULT_LEVEL, 1_600_000, "C0", b"irq context")]


def test_parse_dump_cut_first_line_inherits_nothing_but_defaults() -> None:
    d = parse_dump("dmesg-ramoops-1", b"Oops#1 Part2\nrest of a line cut by the chunk\n"
                   b"<3>[    2.000000] next\nunprefixed after\n")
    assert [(r.level, r.ts_usec, r.text) for r in d.records] == [
        (DEFAULT_LEVEL, 0, b"rest of a line cut by the chunk"),
        (3, 2_000_000, b"next"),
        (3, 2_000_000, b"unprefixed after")]


def test_parse_dump_drops_ecc_trailer_and_blank_lines() -> None:
    d = parse_dump("dmesg-ramoops-0", RAMOOPS + b"\n\nECC: No errors detected\n")
    assert len(d.records) == 7


def test_parse_dump_without_header() -> None:
    d = parse_dump("dmesg.txt", b"<6>[    1.000000] only a line\n")
    assert (d.reason, d.part, len(d.records)) == (None, None, 1)


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS, zlib.MAX_WBITS | 16])
def test_decompress_zlib_raw_deflate_and_gzip(wbits: int) -> None:
    c = zlib.compressobj(6, zlib.DEFLATED, wbits)
    assert decompress(c.compress(RAMOOPS) + c.flush()) == RAMOOPS


def test_decompress_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        decompress(b"plain text, not compressed")


def test_read_dump_compressed_enc_z(tmp_path: Path) -> None:
    raw = zlib.compress(RAMOOPS)
    (tmp_path / "dmesg-ramoops-0.enc.z").write_bytes(raw)
    d = read_dump(tmp_path / "dmesg-ramoops-0.enc.z")
    assert d.name == "dmesg-ramoops-0.enc.z"
    assert d.reason == "Panic" and len(d.records) == 7
    assert d.digest == hashlib.sha256(raw).hexdigest()


def test_find_dumps_sysfs_and_systemd_layouts(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    sysfs.mkdir()
    for name in ("dmesg-ramoops-10", "dmesg-ramoops-2", "console-ramoops-0"):
        (sysfs / name).write_bytes(RAMOOPS)
    systemd = tmp_path / "systemd"
    joined = systemd / "1700000000000000"
    joined.mkdir(parents=True)
    (joined / "dmesg.txt").write_bytes(RAMOOPS)
    parts = systemd / "1700000001000000"
    parts.mkdir()
    (parts / "dmesg-efi-170000000101001").write_bytes(RAMOOPS)
    (parts / "dmesg.txt").write_bytes(RAMOOPS)  # the parts joined: not sent twice
    found = find_dumps([sysfs, systemd, tmp_path / "missing"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "sys/dmesg-ramoops-2", "sys/dmesg-ramoops-10",
        "systemd/1700000000000000/dmesg.txt",
        "systemd/1700000001000000/dmesg-efi-170000000101001"]


def test_order_dumps_older_parts_first() -> None:
    p1 = parse_dump("dmesg-efi-1", b"Panic#1 Part1\n<0>[    2.000000] newest\n")
    p2 = parse_dump("dmesg-efi-2", b"Panic#1 Part2\n<4>[    1.000000] older\n")
    assert [d.name for d in order_dumps([p1, p2])] == ["dmesg-efi-2", "dmesg-efi-1"]
