"""Types of the C express lane (`_lane.c`); see collector/_express.py."""

from collections.abc import Callable
from typing import Any

from netconsole.collector._express import HandedOut
from netconsole.store import PrebuiltRow
from netconsole.stream import Sender
from netconsole.stream._sender import ExpressGap

DATAGRAM_MAX: int
MAX_DIGITS: int

class Lane:
    sender: Sender
    key: bytes
    host_id: int
    boot: int
    release: str | None
    name: bytes | None
    gaps: list[ExpressGap] | None
    seq: int
    ts: int
    msgid: int
    msgid_base: int
    seq_limit: int
    msgid_limit: int
    last: float
    active: int
    fresh: int
    batch: int
    first: float
    tokens: float
    stamp: float
    noisy_until: float
    shed: int


class Receiver:
    ts_back: int
    window: int
    rate: float
    burst: float
    hold: float
    noisy_hold: float
    behind_fill: float
    behind_until: float
    def __init__(self, fd: int, lanes: dict[bytes, Lane], trigger: Callable[[bytes], Any],
                 literals: tuple[bytes, ...] = (), *, row_type: type[PrebuiltRow],
                 gap_type: type[ExpressGap] | None = None,
                 handed_type: type[HandedOut] | None = None) -> None: ...
    def step(self, now: float, more: bool) -> list[PrebuiltRow] | HandedOut | None: ...
    def counts(self) -> tuple[int, int]: ...
    def touched(self) -> list[Lane]: ...
    def batched(self) -> list[Lane]: ...
    def shedding(self) -> list[Lane]: ...
