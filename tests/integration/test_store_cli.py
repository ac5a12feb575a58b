"""The store's commands end to end: exit codes, --json output, follow mode."""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from netconsole.cli import main
from netconsole.store import open_store
from netconsole.stream.events import Gap, GapKind, Reboot, RebootReason, Record, Sender
from netconsole.wire import Mode

WEB = Sender(host="192.0.2.10", port=6665, local_port=6666)
DB = Sender(host="192.0.2.20", port=6665, local_port=6666)
NOW = time.time()


@pytest.fixture(autouse=True)
def _now() -> None:
    """Ages are relative to each test's start, not to when the suite imported
    this module (minutes earlier in a full run: "5m ago" had become silent)."""
    global NOW
    NOW = time.time()


def _record(seq: int, sender: Sender, text: bytes, level: int, age: float) -> Record:
    fields: tuple[tuple[bytes, bytes], ...] = ((b"msgid", str(seq).encode()),)
    if sender == WEB:
        fields = ((b"hostname", b"web-1"), *fields)
    return Record(
        sender=sender,
        mode=Mode.EXTENDED,
        received=NOW - age,
        text=text,
        facility=0,
        level=level,
        seq=seq,
        ts_usec=seq * 1_000_000,
        release="6.12.0-1-amd64",
        fields=fields,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    store = open_store(path)
    store.apply(
        [
            _record(1, WEB, b"e1000e 0000:00:19.0 eth0: NIC Link is Down", 3, 7200),
            _record(2, WEB, b"e1000e 0000:00:19.0 eth0: NIC Link is Up", 6, 3000),
            _record(7, DB, b"sd 0:0:0:0: [sda] I/O error, dev sda, sector 2048", 3, 2000),
            Gap(sender=DB, at=NOW - 1990, kind=GapKind.SEQ, first=8, count=4),
            _record(12, DB, b"bad bytes \xff\xfe here", 4, 1000),
            Reboot(
                sender=WEB,
                at=NOW - 60,
                reason=RebootReason.SEQ_BACK,
                previous_seq=2,
                seq=0,
                previous_release=None,
                release=None,
            ),
            _record(0, WEB, b"Linux version 6.12.0-1-amd64", 5, 60),
        ]
    )
    store.close()
    return path


def _invoke(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--db", str(db)], catch_exceptions=False)


def _lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_tail_json_is_newest_last_with_record_keys(db: Path) -> None:
    records = _lines(_invoke(db, "tail", "--json", "-n", "3"))
    assert [r["seq"] for r in records] == [7, 12, 0]
    assert records[-1]["name"] == "web-1"
    assert records[-1]["boot"] == 1
    assert records[1]["text"] == "bad bytes \ufffd\ufffd here"
    assert "raw" in records[1]


@pytest.mark.parametrize(
    ("args", "seqs"),
    [
        (["--host", "web-1"], [1, 2, 0]),
        (["--host", "192.0.2.20"], [7, 12]),
        (["--level", "err"], [1, 7]),
        (["--level", "4"], [1, 7, 12]),
        (["--since", "30m"], [12, 0]),
        (["--grep", r"Link is (Up|Down)"], [1, 2]),
        (["--host", "web-1", "--since", "2h", "--level", "notice"], [0]),
    ],
)
def test_tail_filters(db: Path, args: list[str], seqs: list[int]) -> None:
    assert [r["seq"] for r in _lines(_invoke(db, "tail", "--json", *args))] == seqs


def test_tail_text_is_host_prefixed(db: Path) -> None:
    result = _invoke(db, "tail", "-n", "2")
    assert result.exit_code == 0
    first, second = result.output.splitlines()
    assert first.startswith("192.0.2.20 ") and "warn" in first and "bad bytes" in first
    assert second.startswith("web-1      ") and "Linux version" in second


def test_tail_bad_options_exit_2(db: Path) -> None:
    result = _invoke(db, "tail", "--level", "loud")
    assert result.exit_code == 2
    assert "not a level" in result.output
    assert _invoke(db, "tail", "--since", "yesterday").exit_code == 2


def test_tail_bad_regex_and_missing_db_exit_1(db: Path, tmp_path: Path) -> None:
    result = _invoke(db, "tail", "--grep", "(")
    assert (result.exit_code, "bad --grep" in result.output) == (1, True)
    result = _invoke(tmp_path / "nothing.db", "tail")
    assert result.exit_code == 1
    assert "no database at" in result.output


def test_db_from_environment(db: Path) -> None:
    result = CliRunner().invoke(main, ["tail", "--json"], env={"NETCONSOLE_DB": str(db)})
    assert len(_lines(result)) == 5


def test_search_json(db: Path) -> None:
    assert [r["seq"] for r in _lines(_invoke(db, "search", "link", "--json"))] == [1, 2]
    assert [r["seq"] for r in _lines(_invoke(db, "search", "eth0:", "down", "--json"))] == [1]
    nothing = _invoke(db, "search", "sda", "--json", "--host", "web-1")
    assert nothing.exit_code == 1 and nothing.stdout == "[]\n"  # grep's habit (issue 17)
    fts = _lines(_invoke(db, "search", "--fts", "--json", "version OR sector"))
    assert [r["seq"] for r in fts] == [7, 0]


def test_search_errors(db: Path) -> None:
    assert _invoke(db, "search", "--fts", '"open').exit_code == 1
    assert _invoke(db, "search", "::").exit_code == 1
    assert _invoke(db, "search").exit_code == 2


def test_hosts_json(db: Path) -> None:
    result = _invoke(db, "hosts", "--json", "--silent-after", "10m")
    assert result.exit_code == 0
    hosts = {h["address"]: h for h in json.loads(result.output)}
    web, dbh = hosts["192.0.2.10"], hosts["192.0.2.20"]
    assert (web["name"], web["records"], web["reboots"], web["status"]) == ("web-1", 3, 1, "live")
    assert (dbh["records"], dbh["lost_seq"], dbh["status"]) == (2, 4, "silent")
    assert web["release"] == "6.12.0-1-amd64"


def test_hosts_table(db: Path) -> None:
    result = _invoke(db, "hosts")
    assert result.exit_code == 0
    assert "web-1" in result.output and "live" in result.output and "silent" in result.output


def test_hosts_machines_group_streams_by_hostname(db: Path) -> None:
    """web-1 sends from a second stream too (an IPv6 extended target); db has no
    hostname= and stays one machine by address."""
    web6 = Sender(host="2001:db8::10", port=6665, local_port=6667)
    store = open_store(db)
    named = ((b"hostname", b"web-1"),)
    store.apply([
        replace(_record(5, web6, b"e1000e 0000:00:19.0 eth0: NIC Link is Up", 6, 30),
                fields=named),
        Reboot(sender=web6, at=NOW - 20, reason=RebootReason.SEQ_BACK, previous_seq=5,
               seq=0, previous_release=None, release=None),
        replace(_record(0, web6, b"Linux version 6.12.0-1-amd64", 5, 20), fields=named),
    ])
    store.close()
    result = _invoke(db, "hosts", "--machines", "--json", "--silent-after", "10m")
    assert result.exit_code == 0, result.output
    found = {m["machine"]: m for m in json.loads(result.output)}
    web, dbm = found["web-1"], found["192.0.2.20"]
    assert web["addresses"] == ["192.0.2.10", "2001:db8::10"]
    assert (len(web["streams"]), web["records"], web["reboots"], web["status"]) == (
        2, 5, 1, "live")
    assert (len(dbm["streams"]), dbm["records"], dbm["lost_seq"], dbm["status"]) == (
        1, 2, 4, "silent")
    table = _invoke(db, "hosts", "--machines")
    assert table.exit_code == 0 and "web-1" in table.output and "2001:db8::10" in table.output


def test_hosts_machines_release_from_any_stream(db: Path) -> None:
    """Issue 13: a machine's newest stream is a basic-mode one (no release prefix);
    its other stream has a release, and the machine must show it, not `-`."""
    basic = Sender(host=DB.host, port=DB.port, local_port=6667)
    store = open_store(db)
    store.apply([Record(sender=basic, mode=Mode.BASIC, received=NOW - 10, level=3,
                        text=b"sd 0:0:0:0: [sda] I/O error, dev sda, sector 4096")])
    store.close()
    result = _invoke(db, "hosts", "--machines", "--json")
    machine = next(m for m in json.loads(result.output) if m["machine"] == DB.host)
    assert [s["release"] for s in machine["streams"]] == ["6.12.0-1-amd64", None]
    assert machine["release"] == "6.12.0-1-amd64"
    table = _invoke(db, "hosts", "--machines").output.splitlines()
    assert "6.12.0-1-amd64" in next(line for line in table if DB.host in line)


def test_export_jsonl_to_file(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = _invoke(db, "export", "--format", "jsonl", "-o", str(out), "--host", "web-1")
    assert result.exit_code == 0
    assert "exported 3 records" in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["seq"] for r in rows] == [1, 2, 0]
    assert _lines(_invoke(db, "export", "--json", "--host", "web-1")) == rows


def test_export_csv(db: Path) -> None:
    result = _invoke(db, "export", "--format", "csv", "--since", "45m")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [row["seq"] for row in rows] == ["7", "12", "0"]
    assert list(rows[0])[:3] == ["id", "name", "boot"]
    assert list(rows[0])[-1] == "raw"
    assert rows[1]["raw"] and not rows[0]["raw"]
    assert json.loads(rows[2]["fields"])[0] == ["hostname", "web-1"]


def test_every_store_command_has_help_ending_with_an_example() -> None:
    for name in ("tail", "search", "hosts", "export"):
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0
        assert "Example:" in result.output or "Examples:" in result.output
        assert "--db" in result.output


def _lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """The child's stdout lines, read by a thread (a pipe's buffering would fool select)."""
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _next(lines: queue.Queue[str]) -> dict[str, Any]:
    """The next JSON line; fails instead of hanging if none comes (not a speed test)."""
    try:
        return dict(json.loads(lines.get(timeout=60)))
    except queue.Empty:
        pytest.fail("tail -f printed nothing")


def test_tail_follow_prints_new_records_and_stops_cleanly_on_ctrl_c(db: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "netconsole", "tail", "-f", "--json", "-n", "1",
         "--interval", "0.1", "--level", "warn", "--db", str(db)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines = _lines_of(proc)
    try:
        assert _next(lines)["seq"] == 12
        store = open_store(db)
        store.apply(
            [_record(1, WEB, b"not shown: info", 6, 0), _record(2, WEB, b"oops: shown", 2, 0)]
        )
        store.close()
        assert _next(lines)["text"] == "oops: shown"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert proc.returncode == 0
