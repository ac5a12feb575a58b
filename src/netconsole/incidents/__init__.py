"""Crash intelligence, sans-IO: one host's records → incidents, and hosts gone silent.

`IncidentDetector` watches one sender; `IncidentTable` keeps one per sender
and merges their output into the collector's batches. They read no clock
and do no I/O: time is an argument (`feed(event, now)`, `expire(now)`,
`next_deadline()`). See docs/incidents.md for the kinds, titles and
fingerprints.
"""

from netconsole.incidents._detector import (
    DEFAULT_CONFIG,
    DetectorConfig,
    IncidentDetector,
    lane_of,
)
from netconsole.incidents._model import (
    CRASH_KINDS,
    SEVERITY,
    Frame,
    Incident,
    IncidentEvent,
    Kind,
    Phase,
    Severity,
    Silence,
    SilencePhase,
    SilenceReason,
)
from netconsole.incidents._table import IncidentTable, Output
from netconsole.incidents._trace import (
    culprit,
    fingerprint,
    is_helper,
    normalise_title,
    parse_frame,
    parse_frames,
)

__all__ = [
    "CRASH_KINDS",
    "DEFAULT_CONFIG",
    "SEVERITY",
    "DetectorConfig",
    "Frame",
    "Incident",
    "IncidentDetector",
    "IncidentEvent",
    "IncidentTable",
    "Kind",
    "Output",
    "Phase",
    "Severity",
    "Silence",
    "SilencePhase",
    "SilenceReason",
    "culprit",
    "fingerprint",
    "is_helper",
    "lane_of",
    "normalise_title",
    "parse_frame",
    "parse_frames",
]
