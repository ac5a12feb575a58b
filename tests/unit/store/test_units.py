"""Durations, sizes, times and levels as the options spell them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from netconsole.store import StoreError, parse_duration, parse_level, parse_since, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 30), ("30s", 30), ("10m", 600), ("2h", 7200), ("3d", 259200), ("1w", 604800),
     ("1.5h", 5400), (" 10 MIN ", 600)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "10x", "-5m", "m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(StoreError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("100", 100), ("10GB", 10 * 10**9), ("500MB", 500 * 10**6), ("1GiB", 2**30),
     ("2k", 2000), ("1.5 TB", 1_500_000_000_000), ("64KiB", 65536), ("1gb", 10**9)],
)  # fmt: skip
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "0", "GB", "10XB", "1iB", "-1GB"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(StoreError):
        parse_size(text)


def test_parse_since_duration_and_iso() -> None:
    now = 1_800_000_000.0
    assert parse_since("10m", now) == now - 600
    assert (
        parse_since("2026-11-26T08:00:00+00:00", now)
        == datetime(2026, 11, 26, 8, tzinfo=UTC).timestamp()
    )
    assert parse_since("2026-11-26T08:00", now) == datetime(2026, 11, 26, 8).timestamp()
    with pytest.raises(StoreError, match="ISO"):
        parse_since("yesterday", now)


@pytest.mark.parametrize(
    ("text", "level"),
    [("0", 0), ("7", 7), ("emerg", 0), ("ERR", 3), ("error", 3), ("warn", 4), ("warning", 4),
     ("info", 6), ("debug", 7)],
)  # fmt: skip
def test_parse_level(text: str, level: int) -> None:
    assert parse_level(text) == level


@pytest.mark.parametrize("text", ["8", "-1", "loud", ""])
def test_parse_level_rejects(text: str) -> None:
    with pytest.raises(StoreError):
        parse_level(text)
