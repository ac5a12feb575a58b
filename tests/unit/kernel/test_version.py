from __future__ import annotations

import pytest

from netconsole.kernel.version import parse_proc_version, parse_release, parse_version_number


@pytest.mark.parametrize(
    ("text", "triple", "suffix"),
    [
        ("4.4.0-1072-aws", (4, 4, 0), "-1072-aws"),
        ("6.12.117+deb12-amd64", (6, 12, 117), "+deb12-amd64"),
        ("5.14.0-362.8.1.el9_3.x86_64", (5, 14, 0), "-362.8.1.el9_3.x86_64"),
        ("6.8.0-31-generic", (6, 8, 0), "-31-generic"),
        ("3.10", (3, 10, 0), ""),
        ("6.18.44-fc-v595", (6, 18, 44), "-fc-v595"),
    ],
)
def test_parse_release_distro_strings(text: str, triple: tuple[int, int, int],
                                      suffix: str) -> None:
    v = parse_release(text)
    assert v is not None
    assert (v.major, v.minor, v.patch) == triple and v.suffix == suffix and str(v) == text


def test_parse_release_orders_numerically() -> None:
    old, new = parse_release("4.4.0-1072-aws"), parse_release("4.19.0")
    assert old is not None and new is not None
    assert old < new and not old.at_least(4, 19) and new.at_least(4, 19)


def test_parse_release_garbage_is_none() -> None:
    assert parse_release("garbage") is None and parse_release("") is None


def test_parse_proc_version() -> None:
    v = parse_proc_version("Linux version 4.4.0-1072-aws (buildd@lcy01) (gcc 5.4.0) #82-Ubuntu")
    assert v is not None and v.release == "4.4.0-1072-aws" and v.is_distro


def test_parse_version_number_driver_strings() -> None:
    assert parse_version_number("2.0.1K") == (2, 0, 1)
    assert parse_version_number("5.6.0-k") == (5, 6, 0)
    assert parse_version_number("v1.5.0g") == (1, 5, 0)
    assert parse_version_number("none") is None
