"""pstore dumps of the previous boot's kernel log, as records to send.

When the kernel panics or oopses, kmsg_dump hands the tail of the log to a
pstore backend (ramoops RAM, EFI variables, ACPI ERST); after the reboot the
dumps appear in `/sys/fs/pstore`, and systemd-pstore may move them into
`/var/lib/systemd/pstore/<id>/`. Names and contents:

* `dmesg-ramoops-<N>`, `dmesg-efi-<id>`, `dmesg-erst-<id>`, ...; a
  `.enc.z` suffix when the kernel could not decompress it (deflate, with or
  without the zlib header); systemd-pstore may also join EFI parts into
  `dmesg.txt`, used only when no `dmesg-*` part is beside it;
* first line `<Reason>#<count> Part<n>` (`Panic#1 Part1`, `Oops#2 Part1`);
  Part1 is the newest chunk of the log, higher parts are older;
* then the log as kmsg_dump formats it with the syslog flag: each line
  `<N>[   12.345678] text`, or `[   12.345678] text` without the `<N>`,
  optionally with `[  T123]`/`[   C1]` caller after the time.

Each line becomes one `KmsgRecord`; a line without a time (the first line of
a chunk cut mid-line) keeps the level and time of the line before it. seq
numbers are not in a dump, so records are numbered 0..n-1 in dump order.
Parsing is pure; only `find_dumps` and `read_dump` touch the filesystem.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from netconsole.forward.kmsg import KmsgRecord

DEFAULT_PSTORE_DIRS = (Path("/sys/fs/pstore"), Path("/var/lib/systemd/pstore"))
# A dump is at most a backend record (ramoops record_size, an EFI variable):
# kilobytes; refuse anything absurd rather than read it into memory.
MAX_DUMP_BYTES = 16 * 1024 * 1024
# A line of a dump: optional <prefix>, optional [time], optional [caller].
_LINE = re.compile(
    rb"(?:<(\d{1,4})>)?(?:\[\s*(\d+)\.(\d{1,9})\])?(?:\[\s*([TC]\d+)\])?(?: )?(.*)", re.DOTALL
)
_HEADER = re.compile(rb"([A-Za-z]+)#(\d+) Part(\d+)")
_ECC = re.compile(rb"ECC: (?:\d+ Corrected bytes, \d+ unrecoverable blocks|No errors detected)")
# Level of a line with no <N> and no line before it: printk's default.
DEFAULT_LEVEL = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class PstoreDump:
    """One dump file, parsed.

    Attributes:
        name: the file name (`dmesg-ramoops-0`), sent as the ` pstore=` value.
        digest: sha256 of the file's bytes; how the state file remembers it.
        reason: `Panic`, `Oops`, ... from the header line; None when absent.
        part: the header's part number (1 = newest chunk); None when absent.
        records: the log lines as records, numbered from 0.
    """

    name: str
    digest: str
    reason: str | None
    part: int | None
    records: tuple[KmsgRecord, ...]


def decompress(data: bytes) -> bytes:
    """Inflate a `.enc.z` dump: zlib, raw deflate (what pstore writes) or gzip.

    Raises:
        ValueError: none of them.
    """
    for wbits in (zlib.MAX_WBITS | 32, -zlib.MAX_WBITS):  # zlib/gzip auto, raw
        try:
            return zlib.decompress(data, wbits)
        except zlib.error:
            continue
    raise ValueError("not deflate, zlib or gzip data")


def parse_dump(name: str, data: bytes) -> PstoreDump:
    """Parse a dump's (decompressed) text into records; see the module docstring."""
    lines = data.split(b"\n")
    reason: str | None = None
    part: int | None = None
    if lines and (m := _HEADER.fullmatch(lines[0].rstrip(b"\r"))):
        reason, part = m.group(1).decode("latin-1"), int(m.group(3))
        lines = lines[1:]
    while lines and (not lines[-1].strip() or _ECC.fullmatch(lines[-1].strip())):
        lines.pop()
    records: list[KmsgRecord] = []
    level, facility, ts = DEFAULT_LEVEL, 0, 0
    for line in lines:
        m = _LINE.fullmatch(line.rstrip(b"\r").replace(b"\x00", b""))
        assert m is not None  # every group is optional
        prefix, sec, frac, caller, text = m.groups()
        if prefix is not None:
            facility, level = int(prefix) >> 3, int(prefix) & 7
        if sec is not None:
            ts = int(sec) * 1_000_000 + int(frac.ljust(6, b"0")[:6])
        if not text and prefix is None and sec is None:
            continue
        records.append(KmsgRecord(
            facility=facility, level=level, seq=len(records), ts_usec=ts, text=text,
            caller=caller.decode() if caller else None))
    return PstoreDump(name=name, digest=hashlib.sha256(data).hexdigest(), reason=reason,
                      part=part, records=tuple(records))


def read_dump(path: Path) -> PstoreDump:
    """Read and parse one dump file (decompressing `.enc.z`).

    Raises:
        OSError: unreadable; ValueError: too big or not inflatable.
    """
    with path.open("rb") as f:
        data = f.read(MAX_DUMP_BYTES + 1)
    if len(data) > MAX_DUMP_BYTES:
        raise ValueError(f"{path}: larger than {MAX_DUMP_BYTES} bytes")
    raw = data
    if path.name.endswith(".enc.z"):
        data = decompress(data)
    dump = parse_dump(path.name, data)
    # Known by the stored bytes, so the same dump moved elsewhere matches.
    return PstoreDump(name=dump.name, digest=hashlib.sha256(raw).hexdigest(),
                      reason=dump.reason, part=dump.part, records=dump.records)


def _is_dump(path: Path) -> bool:
    return path.name.startswith("dmesg-") and path.is_file()


def find_dumps(dirs: tuple[Path, ...] | list[Path]) -> list[Path]:
    """The dmesg dump files in `dirs` and their direct subdirectories.

    In each directory in natural name order (`dmesg-ramoops-2` before
    `dmesg-ramoops-10`); `order_dumps` puts the parsed parts of one dump
    oldest first.
    """
    found: list[Path] = []
    for top in dirs:
        if not top.is_dir():
            continue
        for d in [top, *sorted(p for p in top.iterdir() if p.is_dir())]:
            try:
                files = sorted(p for p in d.iterdir() if _is_dump(p))
            except OSError:
                continue
            if not files and (d / "dmesg.txt").is_file():
                files = [d / "dmesg.txt"]
            found += sorted(files, key=_natural)
    return found


def _natural(path: Path) -> list[int | str]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def order_dumps(dumps: list[PstoreDump]) -> list[PstoreDump]:
    """Oldest log first: a higher Part is an older chunk of the same dump (stable)."""
    return sorted(dumps, key=lambda d: -(d.part or 1))
