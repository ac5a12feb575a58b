"""`netconsole._terminal`: sender text made safe to print, and still unambiguous."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from netconsole._terminal import printable, text

_ESCAPE = re.compile(r"\\(\\|t|n|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")


def shown_back(shown: str) -> str:
    """What a reader of the display recovers: the inverse of `printable`."""
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e in ("\\", "t", "n"):
            return {"\\": "\\", "t": "\t", "n": "\n"}[e]
        if e[0] == "x":
            n = int(e[1:], 16)
            return chr(n) if n < 0x80 else chr(0xDC00 + n)  # a byte, as surrogateescape
        return chr(int(e[1:], 16))
    return _ESCAPE.sub(one, shown)


def hidden(c: str) -> bool:
    return (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F
            or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp"))


def test_the_hostile_title_string() -> None:
    assert printable("innocent \x1b]0;PWNED\x07\x1b[2J") == \
        "innocent \\x1b]0;PWNED\\x07\\x1b[2J"


def test_c1_bidi_separators_and_bytes() -> None:
    assert printable(b"a\xc2\x9b2J") == "a\\u009b2J"  # U+009B, valid UTF-8: a C1 CSI
    assert printable(b"a\x9b2J") == "a\\x9b2J"  # the lone byte: not UTF-8
    assert printable("\u202eevil\u2066\u200f\u2028\u2029\ufeff") == \
        "\\u202eevil\\u2066\\u200f\\u2028\\u2029\\ufeff"
    assert printable("\U000e0041tag") == "\\U000e0041tag"
    assert printable("tab\there\x7f") == "tab\\there\\x7f"


def test_ordinary_text_is_untouched() -> None:
    for s in ("eth0: NIC Link is Up 1000 Mbps", "ACPI: \\_SB_.PCI0.LPCB: found",
              "[bold]not markup[/]", "Grüße 日本語 ✓", "C:\\Windows"):
        assert printable(s) == s


def test_a_literal_backslash_escape_cannot_pass_for_a_control() -> None:
    assert printable("\\x1b") == "\\\\x1b"
    assert printable("\\\x1b") == "\\\\\\x1b"
    assert printable("\\\\") == "\\\\\\"  # the second is followed by nothing
    assert printable("a\\") == "a\\"


def test_newlines_kept_only_when_asked() -> None:
    assert printable("a\nb") == "a\\nb"
    assert printable("a\nb\\\nc", newlines=True) == "a\nb\\\nc"


def test_text_is_never_markup() -> None:
    t = text("[link=http://evil.example]x[/link]\x1b", "bold")
    assert t.plain == "[link=http://evil.example]x[/link]\\x1b" and not t.spans


@given(st.text())
def test_any_text_prints_safe_and_decodes_back(s: str) -> None:
    shown = printable(s)
    assert not any(hidden(c) for c in shown)
    assert shown_back(shown) == s


@given(st.binary())
def test_any_bytes_print_as_their_surrogateescape_text(b: bytes) -> None:
    shown = printable(b)
    assert not any(hidden(c) for c in shown)
    assert shown_back(shown) == b.decode("utf-8", "surrogateescape")


@given(st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\n\\\x1b")))
def test_with_newlines_only_newlines_stay(s: str) -> None:
    shown = printable(s, newlines=True)
    assert not any(hidden(c) for c in shown if c != "\n")
    assert shown_back(shown) == s
