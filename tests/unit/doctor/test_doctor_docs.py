"""docs/doctor.md lists every finding code the doctor can emit."""

from __future__ import annotations

import re
from pathlib import Path

from netconsole.kernel.configfs import ProblemKind
from netconsole.kernel.dmesg import CATALOGUE
from netconsole.kernel.netconsole_param import ErrorKind

ROOT = Path(__file__).parents[3]


def emitted_codes() -> set[str]:
    codes = {e.value for e in ErrorKind} | {p.value for p in ProblemKind}
    codes |= {e.code for e in CATALOGUE}
    for path in (ROOT / "src" / "netconsole" / "doctor").rglob("*.py"):
        text = path.read_text()
        codes |= set(re.findall(r'code="([a-z0-9-]+)"', text))
        codes |= set(re.findall(r'"((?:console|kernel)-[a-z-]+)" if ', text))
        codes |= set(re.findall(r'else\s+"((?:console|kernel)-[a-z-]+)"', text))
        codes |= set(re.findall(r'\("CONFIG_\w+", "([a-z-]+)"', text))
    return codes


def test_docs_list_every_code() -> None:
    doc = (ROOT / "docs" / "doctor.md").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \|", doc, flags=re.M))
    missing = emitted_codes() - documented
    assert not missing, f"codes missing from docs/doctor.md: {sorted(missing)}"
    assert {"console-not-enabled", "kernel-extended-log", "netpoll-unsupported"} <= documented
