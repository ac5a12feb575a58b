"""modprobe.d files: the `options`, `blacklist` and `install` lines about a module."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from netconsole.kernel.cmdline import parse_cmdline


class ModprobeKind(enum.Enum):
    OPTIONS = "options"
    BLACKLIST = "blacklist"
    INSTALL = "install"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModprobeDirective:
    """A modprobe.d line that concerns netconsole."""

    kind: ModprobeKind
    line: int
    """1-based line number of the directive's first physical line."""
    text: str
    options: tuple[tuple[str, str | None], ...] = ()


def _split_options(text: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for arg in parse_cmdline(text):
        out.append((arg.key, arg.value))
    return out


def parse_modprobe_conf(text: str, module: str = "netconsole") -> tuple[ModprobeDirective, ...]:
    """Find `options|blacklist|install <module>` lines in a modprobe.d file.

    Handles comments, `\\` line continuation and quoted values like kmod.
    """
    found: list[ModprobeDirective] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        first = i
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i]
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        words = stripped.split(None, 2)
        if len(words) < 2 or words[1].replace("-", "_") != module:
            continue
        try:
            kind = ModprobeKind(words[0])
        except ValueError:
            continue
        opts = _split_options(words[2]) if kind is ModprobeKind.OPTIONS and len(words) > 2 else []
        found.append(ModprobeDirective(kind=kind, line=first + 1, text=stripped,
                                       options=tuple(opts)))
    return tuple(found)
