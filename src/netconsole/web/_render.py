"""The Jinja2 environment the pages render with, and its filters.

Autoescape is on for every template whatever its name (pages, fragments, the
SVG macros): whatever a sender chose (record text, host names, userdata,
releases, incident titles) is HTML-escaped where it is placed, and never
marked safe. Before that, `show` writes control and format characters (ESC,
bidi overrides, zero-width characters) as visible escapes, exactly as the
terminal commands do (`netconsole._terminal.printable`), so a sender cannot
hide or reorder text on the page either.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import jinja2

from netconsole._terminal import printable
from netconsole.store import LEVEL_LABELS

_env: jinja2.Environment | None = None

_TOKEN = re.compile(r"\w+", re.UNICODE)
_FTS_WORDS = frozenset({"AND", "OR", "NOT", "NEAR"})


def show(value: str | bytes | None) -> str:
    """Sender text as it may be shown: control characters escaped (not yet HTML)."""
    if value is None:
        return ""
    return printable(value, newlines=True)


def when(ts: float | None) -> str:
    """Local time, to the second, as the terminal commands print it."""
    if ts is None:
        return "never"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def ago(ts: float | None, now: float | None = None) -> str:
    """`12s ago`, `5m ago`, `3h ago`, `2d ago`, or `never`."""
    if ts is None:
        return "never"
    seconds = max(0.0, (time.time() if now is None else now) - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def level_name(level: int | None) -> str:
    return LEVEL_LABELS[level] if level is not None and 0 <= level <= 7 else "-"


def level_class(level: int | None) -> str:
    return f"lvl{level}" if level is not None and 0 <= level <= 7 else "lvlnone"


def uptime(ts_usec: int | None) -> str:
    if ts_usec is None:
        return ""
    seconds, micros = divmod(ts_usec, 1_000_000)
    return f"[{seconds:5d}.{micros:06d}]"


def query(params: Mapping[str, Any], **changes: Any) -> str:
    """A query string: `params` with `changes` applied; empty values left out."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "", False)})


def highlight_terms(query_text: str, *, fts_syntax: bool) -> re.Pattern[str] | None:
    """What to mark in search hits: the query's words (FTS operators left out)."""
    words = {w for w in _TOKEN.findall(query_text) if not (fts_syntax and w in _FTS_WORDS)}
    if not words:
        return None
    alternatives = sorted((re.escape(w) for w in words), key=len, reverse=True)
    return re.compile("|".join(alternatives), re.IGNORECASE)


def segments(text: str, pattern: re.Pattern[str] | None) -> Iterable[tuple[str, bool]]:
    """`text` cut into (piece, matched) for the template to mark; it stays text."""
    if pattern is None:
        yield text, False
        return
    pos = 0
    for m in pattern.finditer(text):
        if m.start() > pos:
            yield text[pos:m.start()], False
        if m.end() > m.start():
            yield m.group(), True
        pos = m.end()
    if pos < len(text):
        yield text[pos:], False


def fields_text(fields: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """A record's KEY=value lines (dictionary, userdata, sysdata) as shown text."""
    return [show(k + b"=" + v) for k, v in fields]


def environment() -> jinja2.Environment:
    """The one environment (templates are compiled once and cached)."""
    global _env
    if _env is None:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("netconsole.web", "templates"),
            autoescape=True,  # every template, .html or .svg or anything
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(show=show, when=when, ago=ago, level_name=level_name,
                           level_class=level_class, uptime=uptime, fields_text=fields_text)
        env.globals.update(query=query, segments=segments)
        _env = env
    return _env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
