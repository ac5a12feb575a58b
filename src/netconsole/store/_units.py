"""Parsing the human units the store's options take: durations, sizes, times, levels.

They live here, not in the CLI, because `listen --retain 30d --max-size 10GB`
and `tail --since 10m --level warn` must agree on what they accept.
"""

from __future__ import annotations

import re
from datetime import datetime

from netconsole.store._errors import StoreError

_DURATION = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$")
_DURATION_UNITS = {
    None: 1.0,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}

_SIZE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$")
_SIZE_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}

# printk's level names (include/linux/kern_levels.h), plus the aliases people type.
LEVEL_NAMES: dict[str, int] = {
    "emerg": 0,
    "alert": 1,
    "crit": 2,
    "err": 3,
    "error": 3,
    "warning": 4,
    "warn": 4,
    "notice": 5,
    "info": 6,
    "debug": 7,
}
LEVEL_LABELS: tuple[str, ...] = (
    "emerg",
    "alert",
    "crit",
    "err",
    "warn",
    "notice",
    "info",
    "debug",
)


def parse_duration(text: str) -> float:
    """`30s`, `10m`, `2h`, `3d`, `1w` (or a bare number of seconds) → seconds.

    Raises:
        StoreError: on anything else, or a zero duration (a retention of zero
            would delete everything, which is never what was meant).
    """
    match = _DURATION.match(text)
    if match is None:
        raise StoreError(f"not a duration: {text!r} (use e.g. 30s, 10m, 2h, 3d, 1w)")
    unit = match.group(2).lower() if match.group(2) else None
    seconds = float(match.group(1)) * _DURATION_UNITS[unit]
    if seconds <= 0:
        raise StoreError(f"duration must be positive: {text!r}")
    return seconds


def parse_size(text: str) -> int:
    """`500MB`, `10GB`, `1GiB`, `2T` (or a bare number of bytes) → bytes.

    Decimal units (kB, MB, GB, TB) are powers of 1000 and binary ones (KiB, MiB,
    GiB, TiB) powers of 1024, as `df -H`/`df -h` print them.
    """
    match = _SIZE.match(text)
    if match is None:
        raise StoreError(f"not a size: {text!r} (use e.g. 500MB, 10GB, 1GiB)")
    unit = (match.group(2) or "").lower()
    binary = "i" in unit
    letter = unit.rstrip("b").rstrip("i")
    if letter not in _SIZE_UNITS:
        raise StoreError(f"not a size: {text!r}")
    scale = _SIZE_UNITS[letter]
    if binary:
        if not letter:
            raise StoreError(f"not a size: {text!r}")
        scale = 1024 ** "kmgt".index(letter) * 1024
    size = int(float(match.group(1)) * scale)
    if size <= 0:
        raise StoreError(f"size must be positive: {text!r}")
    return size


def parse_since(text: str, now: float) -> float:
    """A duration back from `now` (`10m`) or an ISO 8601 time → unix time.

    An ISO time without a zone is local time, as `date` would print it.
    """
    try:
        return now - parse_duration(text)
    except StoreError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise StoreError(
            f"not a duration or ISO time: {text!r} (use e.g. 10m, 2h, 3d or 2026-11-26T08:00)"
        ) from None
    return when.timestamp() if when.tzinfo else when.astimezone().timestamp()


def parse_level(text: str) -> int:
    """A printk level name (`err`, `warning`, ...) or number 0-7 → the number."""
    value = text.strip().lower()
    if value.isdigit() and 0 <= int(value) <= 7:
        return int(value)
    if value in LEVEL_NAMES:
        return LEVEL_NAMES[value]
    raise StoreError(f"not a level: {text!r} (use 0-7 or {', '.join(LEVEL_LABELS)})")
