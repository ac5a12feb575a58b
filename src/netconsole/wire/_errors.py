"""Why a datagram was rejected. Every rejection carries one of these reasons."""

from __future__ import annotations

import enum


class RejectReason(enum.Enum):
    """A stable, countable reason; the value is what metrics and JSON show."""

    EMPTY = "empty"
    BAD_HEADER = "bad_header"
    BAD_NCFRAG = "bad_ncfrag"
    FRAGMENT_TOO_LARGE = "fragment_too_large"
    FRAGMENT_MISMATCH = "fragment_mismatch"
    NOT_NETCONSOLE = "not_netconsole"
    DUPLICATE_FRAGMENT = "duplicate_fragment"
    TOO_MANY_PENDING = "too_many_pending"
    NUMBER_TOO_LARGE = "number_too_large"  # a header number past what a store can hold


class WireError(ValueError):
    """A datagram that is not valid netconsole traffic.

    Attributes:
        reason: the counted reason.
        detail: a sentence for people, naming what was wrong.
    """

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
