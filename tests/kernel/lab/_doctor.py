"""`netconsole doctor` snapshots taken in the guest, examined on the host.

The guest runs `python3 -m netconsole doctor --collect /tmp/<name>.tar.gz` and
prints the tarball base64-encoded to its second serial port (`lab.log`) between
`LAB: snapshot-begin <name>` and `LAB: snapshot-end <name>` (see
`lab.scenarios.doctor_collect`). Here the tarball is cut out of the log, written
next to the run's other files, and examined with the host's
`python -m netconsole doctor --root FILE --json`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab._errors import LabError

BEGIN = "snapshot-begin"
END = "snapshot-end"
DOCTOR_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: str
    target: str | None
    title: str


@dataclass(frozen=True, slots=True)
class DoctorReport:
    """`netconsole doctor --root <snapshot> --json`, and its exit status."""

    snapshot: Path
    works: bool
    exit_code: int
    returncode: int
    findings: tuple[Finding, ...]
    raw: dict[str, Any]

    def codes(self, target: str | None = None) -> list[str]:
        return [f.code for f in self.findings if target is None or f.target == target]

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def find(self, code: str, target: str | None = None) -> Finding:
        found = [f for f in self.findings if f.code == code
                 and (target is None or f.target == target)]
        if not found:
            raise AssertionError(f"doctor did not report {code!r} for {target!r}:\n"
                                 + self.describe())
        return found[0]

    def describe(self) -> str:
        lines = [f"{self.snapshot.name}: works={self.works} exit={self.returncode}"]
        lines += [f"  {f.severity:8} {f.code} [{f.target}] {f.title}" for f in self.findings
                  if f.severity != "ok"]
        return "\n".join(lines)


def snapshot_text(lab_log: str, name: str) -> str:
    """The base64 text the guest printed between the markers of snapshot `name`."""
    m = re.search(rf"^LAB: {BEGIN} {re.escape(name)}\r?$(.*?)^LAB: {END} {re.escape(name)}\r?$",
                  lab_log, re.S | re.M)
    if m is None:
        raise LabError(f"snapshot {name!r} is not in the lab log")
    return "".join(m.group(1).split())


def extract_snapshot(lab_log: str, name: str, workdir: Path) -> Path:
    """Write snapshot `name` from the lab log to `workdir/snapshot-<name>.tar.gz`."""
    try:
        data = base64.b64decode(snapshot_text(lab_log, name), validate=True)
    except binascii.Error as exc:
        raise LabError(f"snapshot {name!r}: bad base64 in the lab log: {exc}") from exc
    out = workdir / f"snapshot-{name}.tar.gz"
    out.write_bytes(data)
    return out


def snapshot_member(path: Path, member: str) -> str | None:
    """The text of one file of a snapshot tarball (None when it is not there)."""
    with tarfile.open(path) as tar:
        for info in tar.getmembers():
            if info.name.lstrip("./") == member and info.isfile():
                f = tar.extractfile(info)
                return None if f is None else f.read().decode(errors="replace")
    return None


def run_doctor(snapshot: Path) -> DoctorReport:
    """`python -m netconsole doctor --root SNAPSHOT --json` on the host."""
    cmd = [sys.executable, "-m", "netconsole", "doctor", "--root", str(snapshot), "--json"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=DOCTOR_TIMEOUT,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{' '.join(cmd)} timed out") from exc
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise LabError(f"{' '.join(cmd)} (rc {proc.returncode}) printed no JSON:\n"
                       f"{proc.stdout[-1000:]}{proc.stderr[-2000:]}") from exc
    findings = tuple(Finding(code=str(f["code"]), severity=str(f["severity"]),
                             target=f.get("target"), title=str(f.get("title", "")))
                     for f in data.get("findings", []))
    report = DoctorReport(snapshot=snapshot, works=bool(data["works"]),
                          exit_code=int(data["exit_code"]), returncode=proc.returncode,
                          findings=findings, raw=data)
    snapshot.with_suffix("").with_suffix(".doctor.json").write_text(proc.stdout)
    return report


def live_json(lab_log: str, name: str) -> dict[str, Any]:
    """The `netconsole doctor --json` report the guest printed between
    `LAB: doctor-json-begin <name>` and `LAB: doctor-json-end <name>`
    (lab.scenarios.doctor_json)."""
    m = re.search(rf"^LAB: doctor-json-begin {re.escape(name)}\r?$(.*?)"
                  rf"^LAB: doctor-json-end {re.escape(name)}\r?$", lab_log, re.S | re.M)
    if m is None:
        raise LabError(f"doctor report {name!r} is not in the lab log")
    try:
        data = json.loads(m.group(1))
    except json.JSONDecodeError as exc:
        raise LabError(f"doctor report {name!r}: not JSON: {exc}") from exc
    assert isinstance(data, dict)
    return data
