"""printk's `\\xHH` escaping of extended-mode text (kernel-netconsole.md §4.4).

`msg_add_ext_text` turns every byte below 0x20, at or above 0x7f, and the
backslash itself into `\\xHH` (lowercase hex). So a kernel-sent body never has a
bare backslash, and `unescape(escape(b)) == b` for every byte string.
`unescape` is forgiving: a backslash not followed by `x` and two hex digits
(a foreign sender) is kept as it is.
"""

from __future__ import annotations

import re

_NEEDS_ESCAPE = re.compile(rb"[\x00-\x1f\x7f-\xff\\]")
_ESCAPE_SEQ = re.compile(rb"\\x([0-9a-fA-F]{2})")
_ESCAPED = {bytes([b]): b"\\x%02x" % b for b in range(256)}


def escape(data: bytes) -> bytes:
    """Escape `data` exactly as the kernel does for extended consoles."""
    if _NEEDS_ESCAPE.search(data) is None:
        return data
    return _NEEDS_ESCAPE.sub(lambda m: _ESCAPED[m.group(0)], data)


def _unhex(m: re.Match[bytes]) -> bytes:
    return bytes((int(m.group(1), 16),))


def unescape(data: bytes) -> bytes:
    """Turn `\\xHH` sequences back into the bytes they stand for."""
    if b"\\" not in data:
        return data
    return _ESCAPE_SEQ.sub(_unhex, data)
