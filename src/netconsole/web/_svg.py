"""The pictures, as geometry: bars and marks that `templates/_charts.html` draws as
inline SVG. Computed on the server, so the pages need no chart library, no
script and no network; every label goes through the template's autoescape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from netconsole.store._views import Activity

WIDTH = 960
"""The drawing's width in SVG units; it scales to the page."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    cls: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    x: float
    y1: float
    y2: float
    cls: str
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True, slots=True, kw_only=True)
class Chart:
    width: float
    height: float
    rects: list[Rect]
    lines: list[Line]
    labels: list[Label]
    title: str


RECORDS_TOP, RECORDS_HEIGHT = 14.0, 96.0
INCIDENTS_TOP, INCIDENTS_HEIGHT = 118.0, 26.0
HEIGHT = 166.0
LEFT = 44.0


def _clock(ts: float, step: float) -> str:
    t = datetime.fromtimestamp(ts)
    return t.strftime("%H:%M") if step < 3600 else t.strftime("%a %H:%M")


def _span_text(step: float) -> str:
    return "minute" if step == 60 else "hour" if step == 3600 else f"{step:g} s"


def activity_chart(activity: Activity, *, what: str = "records") -> Chart:
    """Records per bucket as bars (top band), incidents per bucket below them in
    red, and for a host its reboots (blue) and loss gaps (orange) as lines."""
    buckets = activity.buckets
    n = len(buckets)
    plot = WIDTH - LEFT
    slot = plot / n
    top = max((b.records for b in buckets), default=0)
    top_inc = max((b.incidents for b in buckets), default=0)
    unit = _span_text(activity.step)
    rects: list[Rect] = []
    for i, b in enumerate(buckets):
        x = LEFT + i * slot
        stamp = _clock(b.start, activity.step)
        if b.records:
            h = max(1.0, RECORDS_HEIGHT * b.records / top)
            rects.append(Rect(x=x + 0.5, y=RECORDS_TOP + RECORDS_HEIGHT - h, w=max(1.0, slot - 1),
                              h=h, cls="bar-records",
                              label=f"{stamp}: {b.records} {what}"))
        if b.incidents:
            h = max(2.0, INCIDENTS_HEIGHT * b.incidents / top_inc)
            rects.append(Rect(x=x + 0.5, y=INCIDENTS_TOP + INCIDENTS_HEIGHT - h,
                              w=max(1.0, slot - 1), h=h, cls="bar-incidents",
                              label=f"{stamp}: {b.incidents} incidents"))
    end = activity.since + n * activity.step
    lines: list[Line] = []
    for event in activity.marks:
        x = LEFT + plot * (event.at - activity.since) / (end - activity.since)
        if event.kind == "reboot":
            lines.append(Line(x=x, y1=RECORDS_TOP, y2=INCIDENTS_TOP + INCIDENTS_HEIGHT,
                              cls="mark-reboot", label=f"reboot at {_clock(event.at, 60)}"))
        else:
            count = event.detail.get("count", "?")
            lines.append(Line(x=x, y1=RECORDS_TOP, y2=INCIDENTS_TOP + INCIDENTS_HEIGHT,
                              cls="mark-gap",
                              label=f"{count} lost ({event.detail.get('gap', '?')}) at "
                                    f"{_clock(event.at, 60)}"))
    labels = [
        Label(x=LEFT - 4, y=RECORDS_TOP + 8, text=str(top), anchor="end"),
        Label(x=LEFT - 4, y=RECORDS_TOP + RECORDS_HEIGHT, text="0", anchor="end"),
        Label(x=LEFT - 4, y=INCIDENTS_TOP + 10, text=str(top_inc), anchor="end"),
    ]
    ticks = 6 if n >= 6 else n
    for k in range(ticks + 1):
        i = round(k * n / ticks)
        ts = activity.since + i * activity.step
        anchor = "start" if k == 0 else "end" if k == ticks else "middle"
        labels.append(Label(x=LEFT + i * slot, y=HEIGHT - 4, text=_clock(ts, activity.step),
                            anchor=anchor))
    total = sum(b.records for b in buckets)
    incidents = sum(b.incidents for b in buckets)
    return Chart(width=WIDTH, height=HEIGHT, rects=rects, lines=lines, labels=labels,
                 title=f"{total} {what} and {incidents} incidents, per {unit}")


STATUS_ORDER = ("live", "silent", "crashed")


def status_chart(counts: dict[str, int]) -> Chart:
    """Machines by status: one bar each, in proportion to the fleet, with counts."""
    total = sum(counts.get(s, 0) for s in STATUS_ORDER)
    width, left, row = 400.0, 64.0, 30.0
    plot = width - left - 56
    rects: list[Rect] = []
    labels: list[Label] = []
    for i, status in enumerate(STATUS_ORDER):
        n = counts.get(status, 0)
        y = 6 + i * row
        w = plot * n / total if total else 0.0
        labels.append(Label(x=left - 8, y=y + 15, text=status, anchor="end"))
        rects.append(Rect(x=left, y=y, w=plot, h=20, cls="st-track",
                          label=f"{n} of {total} machines {status}"))
        if n:
            rects.append(Rect(x=left, y=y, w=max(2.0, w), h=20, cls=f"st-{status}",
                              label=f"{n} of {total} machines {status}"))
        labels.append(Label(x=left + plot + 8, y=y + 15, text=str(n), anchor="start"))
    return Chart(width=width, height=6 + row * len(STATUS_ORDER), rects=rects, lines=[],
                 labels=labels, title=f"{total} machines by status")
