"""What the host timeline and the incident page list, as rows for the templates:
records with the boots, gaps, reboots, silences and incidents between them put
where they happened, and a call trace with its culprit frame marked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from netconsole.store import StoredEvent, StoredIncident, StoredRecord
from netconsole.store._views import TimelinePage

RowKind = Literal["record", "boot", "event", "incident"]

_REBOOT_REASONS = {
    "seq_back": "its printk seq went back",
    "time_back": "its clock went back",
    "new_release": "it runs another release",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One line of the timeline. `text` (events) is sender text in part (a release
    string): the template escapes it like everything else."""

    kind: RowKind
    record: StoredRecord | None = None
    incident: StoredIncident | None = None
    event: StoredEvent | None = None
    boot: int | None = None
    text: str = ""
    cls: str = ""


def event_row(event: StoredEvent) -> Row:
    d = event.detail
    if event.kind == "gap":
        count, first = d.get("count"), d.get("first")
        gap = d.get("gap")
        if gap == "seq":
            span = f" (seq {first}–{first + count - 1})" if isinstance(first, int) and \
                isinstance(count, int) and count > 1 else f" (seq {first})"
            text = f"{count} records lost{span}"
        elif gap == "msgid":
            text = f"{count} netconsole messages lost on the way (msgid from {first})"
        else:
            text = f"{count} printk messages dropped (the kernel said so)"
        return Row(kind="event", event=event, text=text, cls="ev-gap")
    if event.kind == "reboot":
        reason = _REBOOT_REASONS.get(str(d.get("reason")), str(d.get("reason")))
        text = f"rebooted: {reason}"
        if d.get("reason") == "new_release":
            text += f" ({d.get('previous_release')} → {d.get('release')})"
        return Row(kind="event", event=event, text=text, cls="ev-reboot")
    if event.kind == "silence":
        if d.get("phase") == "start":
            after_crash = d.get("reason") == "after_crash"
            why = "after a crash" if after_crash else "a chatty host went quiet"
            text = f"went silent: {why}"
            if d.get("title"):
                text += f" ({d['title']})"
            return Row(kind="event", event=event, text=text, cls="ev-silence")
        text = "rebooted after its silence" if d.get("rebooted") else "sending again"
        return Row(kind="event", event=event, text=text, cls="ev-silence")
    if event.kind == "incomplete":
        missing = sum(b - a for a, b in d.get("missing", []) if isinstance(a, int)
                      and isinstance(b, int))
        return Row(kind="event", event=event, cls="ev-gap",
                   text=f"record seq {d.get('seq')} incomplete: {missing} of "
                        f"{d.get('total')} bytes never arrived")
    return Row(kind="event", event=event, text=event.kind, cls="ev-other")


def timeline_rows(page: TimelinePage) -> list[Row]:
    """The page's records, oldest first, with a boot separator where a stream's boot
    number changes, each event before the first record that came after it, and each
    incident before its first record."""
    events = sorted(page.events, key=lambda e: (e.at, e.id))
    # By the page's order, not by id: ClickHouse's record ids are hashes.
    place = {stored.id: n for n, stored in enumerate(page.records)}
    after_all = len(place)
    incidents = sorted(page.incidents,
                       key=lambda i: (place.get(i.first_record_id or 0, after_all), i.id))
    boots: dict[Any, int] = {}
    out: list[Row] = []
    e = k = 0
    for n, stored in enumerate(page.records):
        while e < len(events) and events[e].at <= stored.record.received:
            out.append(event_row(events[e]))
            e += 1
        sender = stored.record.sender
        if sender in boots and boots[sender] != stored.boot:
            out.append(Row(kind="boot", boot=stored.boot, record=stored))
        boots[sender] = stored.boot
        while k < len(incidents) and place.get(incidents[k].first_record_id or 0,
                                                after_all) <= n:
            out.append(Row(kind="incident", incident=incidents[k]))
            k += 1
        out.append(Row(kind="record", record=stored))
    out.extend(event_row(ev) for ev in events[e:])
    out.extend(Row(kind="incident", incident=inc) for inc in incidents[k:])
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameRow:
    text: str
    culprit: bool
    reliable: bool
    rip: bool


def frame_text(frame: dict[str, Any]) -> str:
    """A frame as the kernel printed it: `function+0xoff/0xsize [module]`."""
    text = str(frame.get("function"))
    if frame.get("offset") is not None and frame.get("size") is not None:
        text += f"+{frame['offset']:#x}/{frame['size']:#x}"
    if frame.get("module"):
        text += f" [{frame['module']}]"
    return text


def frame_rows(incident: StoredIncident) -> list[FrameRow]:
    """The main call trace (section 0, its `RIP:` first), the culprit frame marked:
    the first of the trace whose text is the incident's culprit, else the first of
    its function."""
    frames = [f for f in incident.frames if f.get("section", 0) == 0]
    frames.sort(key=lambda f: not f.get("rip"))  # stable: RIP first, then the trace
    texts = [frame_text(f) for f in frames]
    culprit = incident.culprit
    mark = -1
    if culprit:
        # A frame of the trace rather than the RIP line, when both read the same.
        order = sorted(range(len(frames)), key=lambda i: bool(frames[i].get("rip")))
        mark = next((i for i in order if texts[i] == culprit), -1)
        if mark < 0:
            name = culprit.split("+", 1)[0].split(" ", 1)[0]
            mark = next((i for i in order if frames[i].get("function") == name), -1)
    return [FrameRow(text=t, culprit=i == mark, reliable=bool(f.get("reliable", True)),
                     rip=bool(f.get("rip"))) for i, (t, f) in enumerate(zip(texts, frames,
                                                                             strict=True))]
