"""The C express lane is built wherever the test suite says it must be."""

from __future__ import annotations

import os

import pytest

from netconsole.collector._express import _lane, available


def test_lane_is_built_where_required() -> None:
    """scripts/test sets NETCONSOLE_REQUIRE_EXPRESS: there, a failed (optional)
    build of the extension fails the suite instead of skipping its tests."""
    if os.environ.get("NETCONSOLE_REQUIRE_EXPRESS") == "1":
        assert _lane is not None, "src/netconsole/collector/_lane.c was not built"


def test_express_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETCONSOLE_EXPRESS", "0")
    assert available() is False
