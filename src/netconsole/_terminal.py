"""Sender text made safe to show on a terminal: the one place that does it.

Everything a sender chose (record text, field values, host names, releases,
incident titles) reaches a person through `printable` or `text`. Any
character a terminal could act on is written out visibly instead, the same
on a terminal and into a pipe (a pager or `less -R` is a terminal too):

* C0 controls and DEL as `\\xHH` (ESC is `\\x1b`), tab as `\\t`, newline as
  `\\n` unless the caller lays out lines itself (`newlines=True`);
* C1 controls (U+0080-U+009F, which some terminals obey as CSI, OSC, ...)
  and Unicode format and separator characters (bidi overrides and isolates,
  zero-width characters, U+2028/U+2029: categories Cf, Zl, Zp) and lone
  surrogates as `\\uHHHH` or `\\UHHHHHHHH`;
* bytes that are not UTF-8 as `\\xHH`: the kernel's own spelling for them
  (docs/records.md `raw`). So `\\xHH` always means one byte and `\\uHHHH`
  one code point: the C1 character U+009B is `\\u009b`, the lone byte 0x9B
  is `\\x9b`.

A backslash the sender wrote is doubled when what follows it would
otherwise read as one of these escapes (`\\`, `t`, `n`, `x`, `u`, `U`, or a
character that is escaped itself), and kept single elsewhere, so ACPI paths
such as `\\_SB_.PCI0` stay as the kernel printed them. A literal `\\x1b`
from a sender therefore shows as `\\\\x1b` and can never pass for an ESC
byte: the display decodes back to exactly the sender's text.

`text` wraps the result in a rich `Text`, which rich never parses as markup
(`[bold]`, `[link=...]`), so sender text cannot style or link either.
`--json` output does not come through here: it stays exact.
"""

from __future__ import annotations

import re
import unicodedata

from rich.text import Text

# Everything outside printable ASCII, and the backslash: only these need a look.
_SUSPECT = re.compile(r"[^\x20-\x5b\x5d-\x7e]")
_ESCAPE_NEXT = frozenset("\\tnxuU")
_HIDDEN_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def _hidden(c: str) -> bool:
    """True for a character written as an escape (newline included)."""
    o = ord(c)
    if o < 0x20 or 0x7F <= o <= 0x9F:
        return True
    return o > 0x9F and unicodedata.category(c) in _HIDDEN_CATEGORIES


def _escaped(c: str) -> str:
    o = ord(c)
    if c == "\t":
        return "\\t"
    if c == "\n":
        return "\\n"
    if o < 0x20 or o == 0x7F:
        return f"\\x{o:02x}"
    if 0xDC80 <= o <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
        return f"\\x{o - 0xDC00:02x}"
    return f"\\u{o:04x}" if o <= 0xFFFF else f"\\U{o:08x}"


def printable(value: str | bytes, *, newlines: bool = False) -> str:
    """`value` with every control and format character written as a visible escape.

    Bytes are read as UTF-8, and a byte that is not is shown as `\\xHH`. With
    `newlines`, a newline stays a line break (the caller indents what
    follows, so a sender cannot forge a line of its own); otherwise it is
    `\\n`. See the module docstring for the whole scheme.
    """
    s = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
    if _SUSPECT.search(s) is None:
        return s
    out: list[str] = []
    pos = 0
    for m in _SUSPECT.finditer(s):
        i = m.start()
        c = s[i]
        if c == "\\":
            nxt = s[i + 1 : i + 2]
            double = nxt in _ESCAPE_NEXT or (
                nxt != "" and _hidden(nxt) and not (newlines and nxt == "\n"))
            if double:
                out.append(s[pos:i])
                out.append("\\\\")
                pos = i + 1
        elif _hidden(c) and not (newlines and c == "\n"):
            out.append(s[pos:i])
            out.append(_escaped(c))
            pos = i + 1
    out.append(s[pos:])
    return "".join(out)


def text(value: str | bytes, style: str = "", *, newlines: bool = False) -> Text:
    """`printable(value)` as a rich `Text`: styled by us, never parsed as markup."""
    return Text(printable(value, newlines=newlines), style=style)
