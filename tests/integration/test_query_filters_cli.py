"""tail, search and export: the record-fact filters, and "nothing matched" as grep says it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from netconsole.cli import main
from netconsole.store import open_store
from netconsole.stream.events import Reboot, RebootReason, Record, Sender
from netconsole.wire import Mode

WEB = Sender(host="192.0.2.10", port=6665, local_port=6666)


def _record(seq: int, text: bytes, cpu: int, task: bytes, rack: bytes) -> Record:
    return Record(sender=WEB, mode=Mode.EXTENDED, received=time.time() - 100 + seq, text=text,
                  facility=0, level=4, seq=seq, ts_usec=seq, release="6.12.0-1-amd64",
                  fields=((b"hostname", b"web-1"), (b"rack", rack), (b"cpu", str(cpu).encode()),
                          (b"taskname", task), (b"msgid", str(seq).encode())))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "q.db"
    store = open_store(path)
    store.apply([
        _record(1, b"watchdog: BUG: soft lockup", 2, b"kworker/2:1", b"b12"),
        _record(2, b"eth0: link down", 0, b"swapper/0", b"b12"),
        Reboot(sender=WEB, at=time.time() - 10, reason=RebootReason.SEQ_BACK, previous_seq=2,
               seq=1, previous_release=None, release=None),
        _record(1, b"Linux version 6.12.0", 0, b"swapper/0", b"c7"),
    ])
    store.close()
    return path


def _run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--db", str(db)], catch_exceptions=False)


def _seqs_texts(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [json.loads(line)["text"] for line in result.stdout.splitlines()]


@pytest.mark.parametrize(("args", "texts"), [
    (("--cpu", "2"), ["watchdog: BUG: soft lockup"]),
    (("--task", "swapper/0"), ["eth0: link down", "Linux version 6.12.0"]),
    (("--msgid", "2"), ["eth0: link down"]),
    (("--boot", "1"), ["Linux version 6.12.0"]),
    (("--release", "6.12.0-1-amd64", "--boot", "0"),
     ["watchdog: BUG: soft lockup", "eth0: link down"]),
    (("--field", "rack=c7"), ["Linux version 6.12.0"]),
    (("--field", "rack=b12", "--field", "hostname=web-1", "--cpu", "0"), ["eth0: link down"]),
])
def test_tail_and_export_filters(db: Path, args: tuple[str, ...], texts: list[str]) -> None:
    assert _seqs_texts(_run(db, "tail", "--json", *args)) == texts
    assert _seqs_texts(_run(db, "export", *args)) == texts


def test_search_finds_userdata_and_filters(db: Path) -> None:
    assert _seqs_texts(_run(db, "search", "--json", "b12")) == [
        "watchdog: BUG: soft lockup", "eth0: link down"]
    assert _seqs_texts(_run(db, "search", "--json", "b12", "--cpu", "0")) == ["eth0: link down"]


@pytest.mark.parametrize("command", [
    ("tail", "--cpu", "9"), ("search", "nothing-like-this"), ("search", "b12", "--boot", "5"),
    ("tail", "--host", "no-such-host"), ("export", "--field", "rack=zz"),
])
def test_nothing_matched_says_so_and_exits_1(db: Path, command: tuple[str, ...]) -> None:
    result = _run(db, *command)
    assert result.exit_code == 1
    assert result.stdout == "" and result.stderr == "no records match\n"
    if command[0] != "export":
        as_json = _run(db, *command, "--json")
        assert as_json.exit_code == 1 and as_json.stdout == "[]\n"


def test_bad_field_is_a_usage_error(db: Path) -> None:
    result = _run(db, "tail", "--field", "no-equals-sign")
    assert result.exit_code == 2 and "KEY=VALUE" in result.stderr


def test_no_progress_bar_when_piped(db: Path, tmp_path: Path) -> None:
    """stderr is a pipe here: export writes its summary and nothing else."""
    out = tmp_path / "out.jsonl"
    done = subprocess.run([sys.executable, "-m", "netconsole", "export", "--db", str(db),
                           "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr == f"exported 3 records to {out}\n"
