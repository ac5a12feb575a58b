"""docs/cli.md is what the commands' `--help` says now."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_md_is_generated_from_the_current_help() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    made = subprocess.run([sys.executable, "-m", "netconsole.cli._docs"], env=env,
                          capture_output=True, text=True, check=True, timeout=60).stdout
    assert "### `netconsole listen`" in made and "#### `netconsole incidents show`" in made
    assert made == DOC.read_text(), (
        "docs/cli.md is stale: python -m netconsole.cli._docs > docs/cli.md")
