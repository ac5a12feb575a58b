"""`netconsole decode` through click, on the real captures and on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import IO

from click.testing import CliRunner

from netconsole.cli import main
from tests.helpers import capture, pcap_bytes, udp4_frame

RECORD_KEYS = {"host", "port", "local_port", "mode", "release", "facility", "level", "seq",
               "ts_usec", "cont", "caller", "text", "fields", "msgid", "cpu", "taskname",
               "complete", "missing", "received", "flag", "header_extra"}


def run(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(main, ["decode", *args])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result.exit_code, lines, result.stderr


def test_decode_sysdata_capture_schema() -> None:
    code, objs, err = run(str(capture("7.2.13+deb14-amd64", "sysdata")))
    assert code == 0
    assert all(set(o) >= RECORD_KEYS for o in objs)
    first = next(o for o in objs if o["msgid"] == 1)
    assert first["fields"][0] == ["key1", "value1"]
    assert (first["cpu"], first["taskname"], first["release"]) == (0, "init",
                                                                  "7.2.13+deb14-amd64")
    assert "2049 records from 1 hosts" in err


def test_decode_events_and_port_filter() -> None:
    path = str(capture("6.12.117+deb12-amd64", "configfs"))
    code, objs, _ = run(path, "--events", "--port", "6666")
    assert code == 0
    kinds = {o.get("event") for o in objs}
    assert {"gap", "incomplete", None} <= kinds
    assert {o["local_port"] for o in objs} == {6666}
    [inc] = [o for o in objs if o.get("event") == "incomplete"]
    assert inc["seq"] == 412 and inc["missing"] == [[3868, 3917]]


def test_decode_summary_json_counts_rejects(tmp_path: Path) -> None:
    bad = tmp_path / "mixed.pcap"
    bad.write_bytes(pcap_bytes([
        (1.0, udp4_frame(b"6,1,2,-;fine\n")),
        (1.1, udp4_frame(b"6,2,3,-,ncfrag=0/x;broken")),
        (1.2, udp4_frame(b"6,3,4,-;fine too\n")[:30]),  # cut by the capture's snap length
        (1.3, b"\x00" * 10),
    ]))
    result = CliRunner().invoke(main, ["decode", str(bad), "--events", "--summary", "json"])
    assert result.exit_code == 0
    summary = json.loads(result.stderr.strip().splitlines()[-1])
    assert summary["records"] == 1
    assert summary["rejected"] == {"bad_ncfrag": 1, "truncated_packet": 2}


def test_decode_not_a_capture_exits_2(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    code, objs, err = run(str(f))
    assert code == 2 and objs == [] and "not_a_capture" in err


def test_decode_missing_file_exits_2() -> None:
    code, _, err = run("/nonexistent/file.pcap")
    assert code == 2 and "No such file" in err


def test_decode_truncated_file_still_decodes(tmp_path: Path) -> None:
    data = capture("6.12.117+deb12-amd64", "basic").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 7])
    code, objs, err = run(str(cut))
    assert code == 0 and len(objs) > 400 and "truncated_file" in err


def test_decode_non_utf8_text_has_raw() -> None:
    code, objs, _ = run(str(capture("6.12.117+deb12-amd64", "extended")))
    assert code == 0
    texts = [o for o in objs if "del[" in str(o["text"])]
    assert texts and all("raw" not in o for o in texts)  # valid UTF-8 incl. \x7f, \x1b


def test_help_lists_decode_and_version() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "decode" in result.stdout
    assert CliRunner().invoke(main, ["--version"]).stdout.startswith("netconsole, version")


def test_decode_missing_file_prints_only_the_error() -> None:
    """Issue 13: no summary of nothing after the error (it read as "0 records")."""
    code, objs, err = run("/nonexistent/file.pcap")
    assert code == 2 and objs == []
    assert err.splitlines() == ["netconsole decode: /nonexistent/file.pcap: "
                                "No such file or directory"]


def _decode_process(stdout: int | IO[bytes], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "netconsole", "decode",
         str(capture("6.12.117+deb12-amd64", "basic")), *args],
        stdout=stdout, stderr=subprocess.PIPE)


def test_decode_to_a_full_disk_is_one_line_not_a_traceback() -> None:
    """Issue 13: `decode > /dev/full` ended in a traceback."""
    with open("/dev/full", "wb") as full:
        proc = _decode_process(full)
        _, err = proc.communicate(timeout=120)
    lines = err.decode().splitlines()
    assert proc.returncode == 1, err
    assert lines == ["netconsole decode: cannot write the output: "
                     "No space left on device"], err


def test_decode_into_a_closed_pipe_is_quiet() -> None:
    """`decode … | head -1`: the reader has what it wanted; no traceback, no message
    (click's own handling of EPIPE: exit 1, quietly)."""
    proc = _decode_process(subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert err == b"" and proc.returncode == 1


def test_decode_read_error_is_one_line() -> None:
    """A file that opens but cannot be read (EIO: /proc/self/mem at address 0)."""
    code, objs, err = run("/proc/self/mem")
    assert code == 2 and objs == []
    assert err.splitlines()[0] == "netconsole decode: /proc/self/mem: Input/output error"
    assert "Traceback" not in err
