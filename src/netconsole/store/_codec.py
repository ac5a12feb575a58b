"""Records to rows and back, and stored records to the JSON record schema.

Exactness is the rule: `row_to_record(record_to_row(r)) == r` for every
Record, including text that is not UTF-8 and field bytes of any value.

* `text` is stored decoded (UTF-8, invalid bytes replaced) so humans, FTS and
  `LIKE` see text; the exact bytes go to `text_raw` only when decoding was
  lossy (or the text holds NUL, which some SQLite text functions stop at).
* `fields` is a JSON list of `[key, value]` pairs, in wire order, with bytes
  decoded as UTF-8 with `surrogateescape`: JSON's `\\udcXX` escapes carry any
  invalid byte, so the pairs come back byte for byte.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from netconsole.records_json import record_to_json
from netconsole.store._model import StoredRecord
from netconsole.stream.events import Record, Sender, field_number
from netconsole.wire import Flag, Mode


class RecordRow(NamedTuple):
    """`INSERT_RECORD`'s parameters of one record but `host_id` (first) and `boot`
    (last), which the writer adds inside its transaction (`record_to_row`)."""

    received: float
    mode: str
    release: str | None
    facility: int | None
    level: int | None
    seq: int | None
    ts_usec: int | None
    flag: str
    caller: str | None
    text: str
    text_raw: bytes | None
    fields: str | None
    header_extra: str | None
    msgid: int | None
    cpu: int | None
    taskname: str | None
    complete: bool
    missing: str | None


_RECORD_INSERT_COLUMNS = ("host_id", *RecordRow._fields, "boot")

INSERT_RECORD = (
    f"INSERT INTO records ({', '.join(_RECORD_INSERT_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_RECORD_INSERT_COLUMNS))})"
)


class PrebuiltRow(NamedTuple):
    """`INSERT_PREBUILT`'s parameters of one record: what the receiver's express
    lane builds in C (collector/_lane.c) and `prebuilt_row` in Python. Never None
    nor bool (see `INSERT_PREBUILT`): `''` or `-1` stands for NULL where noted."""

    host_id: int
    received: float
    mode: str
    release: str  # '' for NULL
    facility: int
    level: int
    seq: int
    ts_usec: int
    flag: str
    caller: str  # '' for NULL
    text: str
    fields: str  # '' for NULL
    msgid: int  # -1 for NULL
    cpu: int  # -1 for NULL
    taskname: str  # '' for NULL
    boot: int


_PREBUILT_NULLS = {"release": "''", "caller": "''", "fields": "''", "msgid": "-1",
                   "cpu": "-1", "taskname": "''"}
"""The value that stands for NULL in each `PrebuiltRow` column that has one."""

INSERT_PREBUILT = (
    f"INSERT INTO records ({', '.join(PrebuiltRow._fields)}, complete) VALUES ("
    + ", ".join(f"NULLIF(?, {_PREBUILT_NULLS[c]})" if c in _PREBUILT_NULLS else "?"
                for c in PrebuiltRow._fields)
    + ", 1)"
)
"""The insert of a `PrebuiltRow`. Its parameters are never None nor bool: the
sqlite3 module binds exact int, float and str directly but runs its adapter
protocol (lookups and attribute probes) on anything else. So NULL is sent as
`''` or `-1` and turned back by NULLIF; a value that would collide (an empty
`release`, `caller` or `taskname`) never takes this way; nor does an incomplete
record (`complete` is 1)."""

RECORD_COLUMNS = (
    "r.id, h.address, h.port, h.local_port, h.name, r.received, r.mode, r.release,"
    " r.facility, r.level, r.seq, r.ts_usec, r.flag, r.caller, r.text, r.text_raw,"
    " r.fields, r.header_extra, r.complete, r.missing, r.boot"
)
"""The SELECT list `row_to_stored` expects, over `records r JOIN hosts h`."""

_MODES = {mode.value: mode for mode in Mode}
_FLAGS = {flag.value: flag for flag in Flag}


def _bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


_quote = json.encoder.encode_basestring_ascii  # the C string encoder json.dumps uses


def _fields_json(
    fields: tuple[tuple[bytes, bytes], ...],
) -> tuple[str, bytes | None, bytes | None, bytes | None]:
    """The `fields` JSON, and the last `msgid`, `cpu` and `taskname` values, in one pass.

    Hand-built with json's own C string encoder: this runs once per record
    on the receive path, where `json.dumps` cost a third of the writer's time.
    The output is exactly `json.dumps([[k, v], ...])`.
    """
    parts = []
    msgid = cpu = taskname = None
    for key, value in fields:
        parts.append(
            "["
            + _quote(key.decode("utf-8", "surrogateescape"))
            + ", "
            + _quote(value.decode("utf-8", "surrogateescape"))
            + "]"
        )
        if key == b"msgid":
            msgid = value
        elif key == b"cpu":
            cpu = value
        elif key == b"taskname":
            taskname = value
    return "[" + ", ".join(parts) + "]", msgid, cpu, taskname




def record_to_row(record: Record) -> RecordRow:
    """The `RecordRow` of one record.

    `msgid`, `cpu` and `taskname` are the values `Record.msgid`, `.cpu` and
    `.taskname` give (the last field of that key), computed in one pass.
    """
    raw = record.text
    try:
        text = raw.decode("utf-8")
        text_raw = raw if "\x00" in text else None
    except UnicodeDecodeError:
        text, text_raw = raw.decode("utf-8", "replace"), raw
    fields = msgid = cpu = None
    taskname = None
    if record.fields:
        fields, msgid_b, cpu_b, task_b = _fields_json(record.fields)
        msgid, cpu = field_number(msgid_b), field_number(cpu_b)
        taskname = task_b.decode("utf-8", "replace") if task_b is not None else None
    # tuple.__new__, not RecordRow(...): the NamedTuple's __new__ is a Python-level
    # call that costs a quarter of this function, once per record.
    return tuple.__new__(RecordRow, (
        record.received,
        record.mode._value_,  # not .value (a descriptor) nor a dict keyed by the enum:
        # both cost a Python-level call per record
        record.release,
        record.facility,
        record.level,
        record.seq,
        record.ts_usec,
        record.flag._value_,
        record.caller,
        text,
        text_raw,
        fields,
        json.dumps(record.header_extra) if record.header_extra else None,
        msgid,
        cpu,
        taskname,
        record.complete,
        json.dumps(record.missing) if record.missing else None,
    ))


def prebuilt_row(record: Record, host_id: int, boot: int) -> PrebuiltRow | None:
    """The `PrebuiltRow` of `record`, or None when it cannot be stored that way
    (then `record_to_row` and `INSERT_RECORD`).

    The receiver's express lane builds these rows in C (collector/_lane.c);
    this is the reference it is tested against.
    """
    row = record_to_row(record)
    if (row.text_raw is not None or row.header_extra is not None or row.missing is not None
            or not row.complete or "" in (row.release, row.caller, row.taskname)
            or row.facility is None or row.level is None or row.seq is None
            or row.ts_usec is None):
        return None
    return PrebuiltRow(
        host_id=host_id, received=row.received, mode=row.mode, release=row.release or "",
        facility=row.facility, level=row.level, seq=row.seq, ts_usec=row.ts_usec,
        flag=row.flag, caller=row.caller if row.caller is not None else "", text=row.text,
        fields=row.fields or "", msgid=-1 if row.msgid is None else row.msgid,
        cpu=-1 if row.cpu is None else row.cpu, taskname=row.taskname or "", boot=boot)


def row_to_stored(row: tuple[Any, ...]) -> StoredRecord:
    """A `RECORD_COLUMNS` row back to a `StoredRecord` with the exact Record."""
    (
        rid,
        address,
        port,
        local_port,
        name,
        received,
        mode,
        release,
        facility,
        level,
        seq,
        ts_usec,
        flag,
        caller,
        text,
        text_raw,
        fields,
        header_extra,
        complete,
        missing,
        boot,
    ) = row
    record = Record(
        sender=Sender(host=address, port=port, local_port=local_port),
        mode=_MODES[mode],
        received=received,
        text=bytes(text_raw) if text_raw is not None else text.encode("utf-8"),
        release=release,
        facility=facility,
        level=level,
        seq=seq,
        ts_usec=ts_usec,
        flag=_FLAGS[flag],
        caller=caller,
        fields=tuple((_bytes(k), _bytes(v)) for k, v in json.loads(fields)) if fields else (),
        header_extra=tuple(json.loads(header_extra)) if header_extra else (),
        complete=bool(complete),
        missing=tuple((int(a), int(b)) for a, b in json.loads(missing)) if missing else (),
    )
    return StoredRecord(id=rid, record=record, name=name, boot=boot)


def stored_to_json(stored: StoredRecord) -> dict[str, Any]:
    """The record JSON object (docs/records.md, `records_json.record_to_json`),
    plus the store's own `id`, `name` and `boot`."""
    out = record_to_json(stored.record)
    out["id"] = stored.id
    out["name"] = stored.name
    out["boot"] = stored.boot
    return out
