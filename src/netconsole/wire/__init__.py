"""The netconsole wire format, sans-IO: one datagram in, a decoded value out;
one record in, the kernel's exact datagrams out. See kernel-netconsole.md §4."""

from netconsole.wire._decode import MAX_FRAGMENTED_TOTAL, decode_datagram, parse_body
from netconsole.wire._encode import (
    LATEST,
    SYSDATA_ORDER,
    EncodeError,
    KernelVersion,
    encode_basic,
    encode_extended,
    format_console_text,
    format_extradata,
    format_message,
)
from netconsole.wire._errors import RejectReason, WireError
from netconsole.wire._escape import escape, unescape
from netconsole.wire._model import (
    MAX_PRINT_CHUNK,
    BasicChunk,
    Body,
    Datagram,
    ExtendedMessage,
    Flag,
    Fragment,
    Header,
    Mode,
    OutgoingRecord,
)

__all__ = [
    "LATEST",
    "MAX_FRAGMENTED_TOTAL",
    "MAX_PRINT_CHUNK",
    "SYSDATA_ORDER",
    "BasicChunk",
    "Body",
    "Datagram",
    "EncodeError",
    "ExtendedMessage",
    "Flag",
    "Fragment",
    "Header",
    "KernelVersion",
    "Mode",
    "OutgoingRecord",
    "RejectReason",
    "WireError",
    "decode_datagram",
    "encode_basic",
    "encode_extended",
    "escape",
    "format_console_text",
    "format_extradata",
    "format_message",
    "parse_body",
    "unescape",
]
