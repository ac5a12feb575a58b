"""Per-sender stream state machines, sans-IO: datagrams and times in, events out."""

from netconsole.stream._sender import SenderStream
from netconsole.stream._table import StreamTable
from netconsole.stream._tally import Tally
from netconsole.stream.events import (
    Duplicate,
    Event,
    Gap,
    GapKind,
    Incomplete,
    Reboot,
    RebootReason,
    Record,
    Rejected,
    Sender,
)

__all__ = [
    "Duplicate",
    "Event",
    "Gap",
    "GapKind",
    "Incomplete",
    "Reboot",
    "RebootReason",
    "Record",
    "Rejected",
    "Sender",
    "SenderStream",
    "StreamTable",
    "Tally",
]
