"""The kernel command line (`/proc/cmdline`), split as the kernel's `next_arg` does.

modprobe.conf `options` lines use the same quoting (modprobe.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class CmdlineArg:
    """One `key[=value]` of /proc/cmdline (quotes removed as the kernel does)."""

    key: str
    value: str | None
    raw: str


def parse_cmdline(text: str) -> tuple[CmdlineArg, ...]:
    """Split a kernel command line like the kernel's `next_arg`.

    Double quotes group spaces (`a="x y"` or `"a=x y"`); everything after a
    lone `--` goes to init and is not a kernel parameter.
    """
    args: list[CmdlineArg] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            break
        start, in_quote = i, False
        while i < n and (in_quote or not text[i].isspace()):
            if text[i] == '"':
                in_quote = not in_quote
            i += 1
        raw = text[start:i]
        if raw == "--":
            break
        token = raw
        if token.startswith('"'):
            token = token[1:]
            if token.endswith('"'):
                token = token[:-1]
        key, eq, value = token.partition("=")
        if eq and value.startswith('"'):
            value = value[1:]
            if value.endswith('"'):
                value = value[:-1]
        args.append(CmdlineArg(key=key, value=value if eq else None, raw=raw))
    return tuple(args)

