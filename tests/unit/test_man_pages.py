"""man/*.1 are what the click definitions say now, and groff reads them cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MAN = Path(__file__).resolve().parents[2] / "man"


def test_man_pages_are_generated_from_the_current_help(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    subprocess.run([sys.executable, "-m", "netconsole.cli._man", str(tmp_path)], env=env,
                   capture_output=True, text=True, check=True, timeout=60)
    made = {p.name: p.read_text() for p in tmp_path.glob("*.1")}
    shipped = {p.name: p.read_text() for p in MAN.glob("*.1")}
    assert {"netconsole.1", "netconsole-listen.1", "netconsole-incidents-show.1"} <= set(made)
    assert made == shipped, "man/ is stale: python -m netconsole.cli._man man"


def test_man_pages_render_without_errors() -> None:
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    for page in sorted(MAN.glob("*.1")):
        done = subprocess.run([groff, "-man", "-Tutf8", "-ww", "-z", str(page)],
                              capture_output=True, text=True, timeout=30)
        # Lines too long to justify are typesetting, not errors.
        problems = [line for line in done.stderr.splitlines() if "cannot adjust" not in line]
        assert done.returncode == 0 and not problems, (page.name, problems)


def test_listen_page_has_the_options() -> None:
    text = (MAN / "netconsole-listen.1").read_text()
    assert '.TH "NETCONSOLE-LISTEN" "1"' in text
    assert "\\-\\-forward URL" in text and "\\-\\-files DIR" in text
