"""Records and events as JSON objects: the schema of docs/records.md.

One place decides the shape, so `decode`, `listen --jsonl` and `export` all
write the same objects.
"""

from __future__ import annotations

from typing import Any

from netconsole.stream.events import (
    Duplicate,
    Event,
    Gap,
    Incomplete,
    Reboot,
    Record,
    Rejected,
)
from netconsole.wire import Flag, escape


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def record_to_json(r: Record) -> dict[str, Any]:
    """The JSON object of one record (docs/records.md)."""
    obj: dict[str, Any] = {
        "host": r.sender.host,
        "port": r.sender.port,
        "local_port": r.sender.local_port,
        "received": r.received,
        "mode": r.mode.value,
        "release": r.kernel_release,
        "facility": r.facility,
        "level": r.level,
        "seq": r.seq,
        "ts_usec": r.ts_usec,
        "cont": r.flag is not Flag.NONE,
        "flag": r.flag.value,
        "caller": r.caller,
        "text": _text(r.text),
        "fields": [[_text(k), _text(v)] for k, v in r.fields],
        "msgid": r.msgid,
        "cpu": r.cpu,
        "taskname": r.taskname,
        "complete": r.complete,
        "missing": [list(m) for m in r.missing],
        "header_extra": list(r.header_extra),
    }
    try:
        r.text.decode("utf-8")
    except UnicodeDecodeError:
        # The kernel's own escaping keeps every byte recoverable.
        obj["raw"] = escape(r.text).decode("ascii")
    return obj


def event_to_json(e: Event) -> dict[str, Any]:
    """The JSON object of any event; records get `record_to_json`, others an `event` key."""
    if isinstance(e, Record):
        return record_to_json(e)
    base: dict[str, Any] = {"host": e.sender.host, "port": e.sender.port,
                            "local_port": e.sender.local_port, "at": e.at}
    if isinstance(e, Gap):
        return {"event": "gap", **base, "kind": e.kind.value, "first": e.first, "count": e.count}
    if isinstance(e, Duplicate):
        return {"event": "duplicate", **base, "seq": e.seq}
    if isinstance(e, Reboot):
        return {"event": "reboot", **base, "reason": e.reason.value,
                "previous_seq": e.previous_seq, "seq": e.seq,
                "previous_release": e.previous_release, "release": e.release}
    if isinstance(e, Incomplete):
        return {"event": "incomplete", **base, "seq": e.seq, "total": e.total,
                "missing": [list(m) for m in e.missing]}
    assert isinstance(e, Rejected)
    return {"event": "rejected", **base, "reason": e.reason.value, "detail": e.detail,
            "size": e.size}
