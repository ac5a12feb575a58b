"""What a store keeps of the receiver's events, whatever the backend.

The `events` row of an accounting event or a silence, the `incidents` columns
of an incident, the marks a saved stream state carries, and the bound that
loss counts saturate at. The SQLite writer (store/_batch.py) and the ClickHouse
sink (store/clickhouse/_sink.py) both build their rows with these, so the two
stores say the same thing about the same traffic.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from netconsole.incidents import Incident, Phase, Silence
from netconsole.store._model import Shed
from netconsole.stream.events import Gap, Incomplete, Reboot

STATE_THROUGH, STATE_BOOT = "_through", "_boot"
"""Marks the SQLite writer adds to a saved stream state: the last record id it
covers (every record stored by then) and the host's boot number then. The
ClickHouse store keeps them as columns and drops them from a state handed in
with them (one restored from SQLite)."""

INT64_MAX = (1 << 63) - 1
"""Loss counts saturate here: SQLite's INTEGER is signed 64-bit, and an
addition past it turns the column into a REAL. A hostile sender can jump seq
by 2**63 (`wire` takes numbers up to this); such a jump is counted as the loss
it claims, so `lost_seq` reads "at least this much", never wraps nor fails."""


class EventRow(NamedTuple):
    """One `events` row, without its host id."""

    at: float
    kind: str
    detail: str
    """JSON."""


def event_row(event: Gap | Reboot | Incomplete) -> EventRow:
    """The `events` row for an accounting event, without its host id."""
    detail: dict[str, Any]
    if isinstance(event, Gap):
        kind = "gap"
        detail = {"gap": event.kind.value, "first": event.first, "count": event.count}
    elif isinstance(event, Reboot):
        kind = "reboot"
        detail = {
            "reason": event.reason.value,
            "previous_seq": event.previous_seq,
            "seq": event.seq,
            "previous_release": event.previous_release,
            "release": event.release,
        }
    else:
        kind = "incomplete"
        detail = {
            "seq": event.seq,
            "total": event.total,
            "missing": [list(span) for span in event.missing],
        }
    return EventRow(event.at, kind, json.dumps(detail))


def shed_row(event: Shed) -> EventRow:
    """The `events` row of records shed from one sender (kind `shed`)."""
    return EventRow(event.at, "shed", json.dumps({"count": event.count}))


def silence_row(event: Silence) -> EventRow:
    """The `events` row of a silence (kind `silence`), without its host id."""
    detail = {
        "phase": event.phase.value,
        "reason": event.reason.value,
        "last_record": event.last_record,
        "incident": event.incident,
        "title": event.title,
        "rebooted": event.rebooted,
    }
    return EventRow(event.at, "silence", json.dumps(detail))


def incident_columns(incident: Incident) -> dict[str, Any]:
    """The `incidents` columns of an incident event, without host, boot and record ids."""
    closed = incident.phase in (Phase.CLOSED, Phase.AMENDED)
    return {
        "key": incident.key,
        "kind": incident.kind.value,
        "severity": incident.severity.name.lower(),
        "state": "closed" if closed else "open",
        "title": incident.title,
        "fingerprint": incident.fingerprint,
        "culprit": str(incident.culprit) if incident.culprit is not None else None,
        "frames": json.dumps([
            {"function": f.function, "offset": f.offset, "size": f.size, "module": f.module,
             "reliable": f.reliable, "section": f.section, "rip": f.rip}
            for f in incident.frames
        ], separators=(",", ":")),
        "text": incident.text,
        "release": incident.release,
        "first_seq": incident.first_seq,
        "last_seq": incident.last_seq,
        "first_received": incident.first_received,
        "last_received": incident.last_received,
        "first_ts_usec": incident.first_ts_usec,
        "last_ts_usec": incident.last_ts_usec,
        "lines": incident.lines,
        "dropped_lines": incident.dropped_lines,
        "count": incident.count,
        "truncated": int(incident.truncated),
        "fatal": int(incident.fatal),
        "lane": incident.lane,
        "task": incident.task,
        "previous_boot": int(incident.previous_boot),
        "updated_at": incident.at,
        "closed_at": incident.at if closed else None,
    }
