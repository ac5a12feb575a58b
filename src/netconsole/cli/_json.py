"""The JSON every command prints with `--json`, encoded one way.

Text stays UTF-8 (`ensure_ascii=False`): names and kernel text read as sent,
not as `\\u` escapes. Control characters are escaped by JSON itself, and the
other characters a terminal acts on (DEL, the C1 controls such as CSI, bidi
overrides, line separators) by `_TERMINAL_ACTIVE`: host names and text come from
the network, and `--json` output is read on terminals too. Three shapes, by
what the output is:

- one document (a report, a list of incidents): indented by 2, for people and jq;
- a stream of records (`tail`, `search`, `export`, `decode`): JSON Lines, one
  compact object per line, so a reader can take them as they come;
- a list that can be long (`hosts` at fleet scale): an array with one compact
  item per line, because `indent=` takes json's pure-Python encoder, three times
  slower.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import click

# Built once: `json.dumps` with any non-default argument builds a new encoder per call.
_LINE_ENCODER = json.JSONEncoder(ensure_ascii=False)
_DOCUMENT_ENCODER = json.JSONEncoder(ensure_ascii=False, indent=2)


# Never structural in JSON, so escaping them anywhere in the output only touches strings.
_TERMINAL_ACTIVE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _safe(encoded: str) -> str:
    return _TERMINAL_ACTIVE.sub(_escaped, encoded)


def json_line(value: Any) -> str:
    """`value` as one line of compact JSON (no newline), for a writer of its own."""
    return _safe(_LINE_ENCODER.encode(value))


def emit_json(value: Any, *, lines: bool = False, err: bool = False) -> None:
    """Print `--json` output: `value` as one indented document; with `lines`,
    `value` is an iterable of records, each printed as one line (JSON Lines)."""
    if lines:
        for item in value:
            click.echo(json_line(item), err=err)
    else:
        click.echo(_safe(_DOCUMENT_ENCODER.encode(value)), err=err)


def emit_json_array(items: Iterable[Any]) -> None:
    """Print a JSON array with one compact item per line (`[]` when empty)."""
    body = ",\n".join(map(json_line, items))
    click.echo(f"[\n{body}\n]" if body else "[]")
