"""--files: names safe whatever a sender claims, console-style lines, appends only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netconsole.outputs import CommittedBatch, Delivered, FilesOutput, safe_name
from netconsole.outputs.files import day_of, mark_line, record_lines
from netconsole.store import Shed
from netconsole.stream import Gap, GapKind, Reboot, Record, Sender
from netconsole.stream.events import RebootReason
from netconsole.wire import Mode

WEB = Sender(host="192.0.2.10", port=6665, local_port=6666)
V6 = Sender(host="2001:db8::7", port=6665, local_port=6666)


def _record(seq: int, text: bytes = b"hello", sender: Sender = WEB, **kw: object) -> Record:
    return Record(sender=sender, mode=Mode.EXTENDED, received=1_700_000_000.0 + seq,  # type: ignore[arg-type]
                  text=text, facility=0, level=6, seq=seq, ts_usec=seq * 1_000_000 + 5, **kw)


@pytest.mark.parametrize(("claimed", "name"), [
    ("web-1", "web-1"), ("web-1.example.net", "web-1.example.net"),
    ("2001:db8::7", "2001:db8::7"), ("..", "_.."), (".", "_."), (".hidden", "_.hidden"),
    ("../../etc/passwd", "_.._.._etc_passwd"), ("a/b", "a_b"), ("tab\there\n", "tab_here_"),
    ("\x1b[31m", "__31m"), ("café", "caf_"), ("", "_"), ("x" * 500, "x" * 64),
    ("." + "y" * 100, "_." + "y" * 62),
])
def test_safe_name(claimed: str, name: str) -> None:
    assert safe_name(claimed) == name
    assert "/" not in name and "\x00" not in name and len(name) <= 64
    assert name not in (".", "..")


def test_record_lines_like_the_console() -> None:
    assert record_lines(Delivered(record=_record(3), boot=0)) == "[    3.000005] hello\n"
    two = _record(12345, text=b"first\nsecond \x07bell")
    assert record_lines(Delivered(record=two, boot=0)) == (
        "[12345.000005] first\n[12345.000005] second \\x07bell\n")
    basic = Record(sender=WEB, mode=Mode.BASIC, received=0.0, text=b"no time")
    assert record_lines(Delivered(record=basic, boot=None)) == "no time\n"
    cut = _record(1, complete=False)
    assert record_lines(Delivered(record=cut, boot=0)).endswith("hello [incomplete]\n")


def test_mark_lines() -> None:
    assert mark_line(Gap(sender=WEB, at=0, kind=GapKind.SEQ, first=4, count=10)) == (
        "--- netconsole: 10 records lost (seq 4-13) ---\n")
    assert "msgid 7-7" in mark_line(Gap(sender=WEB, at=0, kind=GapKind.MSGID, first=7, count=1))
    assert "3 printk messages dropped" in mark_line(
        Gap(sender=WEB, at=0, kind=GapKind.DROPPED, first=None, count=3))
    reboot = Reboot(sender=WEB, at=0, reason=RebootReason.NEW_RELEASE, previous_seq=9, seq=0,
                    previous_release="6.1.0", release="6.12.0")
    assert mark_line(reboot) == ("--- netconsole: reboot (new kernel release, seq 9 -> 0, "
                                 "release 6.1.0 -> 6.12.0) ---\n")
    assert "5 datagrams shed" in mark_line(Shed(sender=WEB, at=0, count=5))


def test_files_per_host_and_day_appended(tmp_path: Path) -> None:
    day = day_of(1_700_000_001.0)
    existing = tmp_path / "web-1" / f"{day}.log"
    existing.parent.mkdir()
    existing.write_text("written before\n")
    out = FilesOutput(tmp_path)
    named = _record(1, fields=((b"hostname", b"web-1"),))
    gap = Gap(sender=WEB, at=1_700_000_001.5, kind=GapKind.SEQ, first=2, count=1)
    out.deliver(CommittedBatch((Delivered(record=named, boot=0), gap,
                                Delivered(record=_record(3, sender=V6), boot=0))))
    assert existing.read_text() == ("written before\n[    1.000005] hello\n"
                                    "--- netconsole: 1 records lost (seq 2-2) ---\n")
    assert (tmp_path / "2001:db8::7" / f"{day_of(1_700_000_003.0)}.log").read_text() == (
        "[    3.000005] hello\n")
    assert out.stats().sent == 2 and out.stats().dropped == 0
    # logrotate moves the file; SIGHUP (reopen) makes a new one at the path.
    existing.rename(existing.with_name(existing.name + ".1"))
    out.reopen()
    out.deliver(CommittedBatch((Delivered(record=_record(1, text=b"again",
                                                        fields=((b"hostname", b"web-1"),)),
                                          boot=0),)))
    assert existing.read_text() == "[    1.000005] again\n"
    out.close()


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("keep\n")
    logs = tmp_path / "logs"
    (logs / "web-1").mkdir(parents=True)
    os.symlink(target, logs / "web-1" / f"{day_of(1_700_000_001.0)}.log")
    out = FilesOutput(logs)
    out.deliver(CommittedBatch((Delivered(record=_record(1, fields=((b"hostname", b"web-1"),)),
                                          boot=0),)))
    assert target.read_text() == "keep\n"
    assert out.stats().dropped == 1
    out.close()


def test_open_files_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("netconsole.outputs.files.OPEN_FILES", 3)
    out = FilesOutput(tmp_path)
    for i in range(10):
        sender = Sender(host=f"192.0.2.{i}", port=6665, local_port=6666)
        out.deliver(CommittedBatch((Delivered(record=_record(1, sender=sender), boot=0),)))
        assert len(out._fds) <= 3
    assert len(list(tmp_path.iterdir())) == 10
    out.close()
