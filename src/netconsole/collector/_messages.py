"""What a forked worker tells its supervisor, over the multiprocessing queue.

One dataclass per kind of message, so the supervisor dispatches on the type
rather than on which keys a dict happens to hold (a counter once named like a
message key was taken for an alert batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class WorkerReady:
    """The worker bound its sockets and opened the store."""

    worker: int


@dataclass(frozen=True, slots=True)
class WorkerFailed:
    """The worker could not start (a port in use, a store it cannot open)."""

    worker: int
    error: str


@dataclass(frozen=True, slots=True)
class WorkerAlerts:
    """Incidents and silences the worker committed, for the supervisor's AlertManager
    (grouping by fingerprint must see every worker's)."""

    worker: int
    events: list[Any]


@dataclass(frozen=True, slots=True)
class WorkerCounts:
    """The worker's counters (`Counters.as_dict()` and its pid), once a second and at
    stop: the latest of each worker makes `/metrics`."""

    worker: int
    counts: dict[str, Any]


WorkerMessage = WorkerReady | WorkerFailed | WorkerAlerts | WorkerCounts
