"""What the store's queries return, and how retention is configured.

These are the dataclasses that cross from `store/` to the CLI and web view;
`--json` output is built from them, so their field names are part of the
interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from netconsole.stream.events import Record, Sender

if TYPE_CHECKING:
    from netconsole.store._codec import PrebuiltRow  # which imports this module

HostStatus = Literal["live", "silent"]

DEFAULT_SILENT_AFTER = 300.0
"""A host with no record for this many seconds is `silent`. netconsole traffic
is a few records per host per minute at rest, so five minutes of nothing is
worth a look without flapping on quiet hosts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRecord:
    """A record as the store gave it back.

    Attributes:
        id: the row id; increasing in insertion order, so `tail -f` polls
            `after_id` and an export can resume.
        record: the record, rebuilt exactly (text and fields byte for byte).
        name: the host's name (its `hostname=` userdata) when known.
        boot: which boot of the host this record belongs to, counting the
            reboots the store has seen for that sender (0 = first seen).
    """

    id: int
    record: Record
    name: str | None
    boot: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HostInfo:
    """One sender as the `hosts` table counts it.

    `lost_seq` counts printk records never seen (filtered by loglevel, ring
    overrun, or network); `lost_msgid` counts datagram-level messages that
    netconsole sent and never arrived (network or sender loss); `dropped`
    counts basic-mode `** N printk messages dropped **` lines; `shed` counts
    datagrams the receiver shed while it was behind and the host over its
    budget (collector/_budget.py).
    """

    id: int
    address: str
    port: int
    local_port: int
    name: str | None
    release: str | None
    first_seen: float | None
    last_seen: float | None
    last_record: float | None
    records: int
    lost_seq: int
    lost_msgid: int
    dropped: int
    duplicates: int
    reboots: int
    incomplete: int
    rejected: int
    shed: int
    boot: int
    status: HostStatus

    @property
    def label(self) -> str:
        """What to call the host on screen: its name, else its address."""
        return self.name or self.address

    @property
    def sender(self) -> Sender:
        return Sender(host=self.address, port=self.port, local_port=self.local_port)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """A row of the `events` table: a gap, a reboot or an incomplete record.

    `detail` is the event's own fields as JSON (e.g. gap `kind`, `first`,
    `count`), kept as a dict because each kind has different ones.
    """

    id: int
    sender: Sender
    name: str | None
    at: float
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """How much the store keeps; None means no limit of that kind.

    Attributes:
        max_age: seconds; older records (and events) are deleted.
        max_bytes: the database's used size; the oldest records go first.
        chunk: rows deleted per transaction (about 40 ms), so other writers
            wait briefly for the lock.
        budget: rows deleted per `enforce_retention` call at most; the rest
            waits for the next call, so that a first run over a large database
            (say `--retain` added to a year of records) stalls the caller for
            a fraction of a second (~0.4 s at 140k rows/s), not for minutes.
    """

    max_age: float | None = None
    max_bytes: int | None = None
    chunk: int = 5000
    budget: int = 50_000

    def __post_init__(self) -> None:
        if self.max_age is not None and self.max_age <= 0:
            raise ValueError("max_age must be positive")
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if self.chunk <= 0 or self.budget <= 0:
            raise ValueError("chunk and budget must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionResult:
    """What one `enforce_retention` call deleted; `more` when it used its whole
    budget, so the policy may not be met yet (call again soon)."""

    records: int
    events: int
    more: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordFilter:
    """Record facts a query must match (`tail`, `search`, `export`); None: any.

    `fields` are (key, value) pairs the record must all carry: any userdata,
    sysdata or printk dictionary key, compared exactly.
    """

    cpu: int | None = None
    task: str | None = None
    msgid: int | None = None
    release: str | None = None
    boot: int | None = None
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return (self.cpu is None and self.task is None and self.msgid is None
                and self.release is None and self.boot is None and not self.fields)


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredIncident:
    """A row of `incidents`: one crash report of one host (see docs/incidents.md).

    `state` is `open` until the detector closed the report. `frames` are the
    parsed call trace (`function`, `offset`, `size`, `module`, `reliable`,
    `section`, `rip`); `culprit` is the blamed frame as printed. The record
    ids are rows of the same host (`tail`/`export` can fetch them); `boot`
    and `first_seq`/`last_seq` locate the records even after the ids change
    hands to retention.
    """

    id: int
    sender: Sender
    name: str | None
    key: str
    boot: int
    kind: str
    severity: str
    state: Literal["open", "closed"]
    title: str
    fingerprint: str
    culprit: str | None
    frames: tuple[dict[str, Any], ...]
    text: str
    release: str | None
    first_seq: int | None
    last_seq: int | None
    first_received: float
    last_received: float
    first_ts_usec: int | None
    last_ts_usec: int | None
    first_record_id: int | None
    last_record_id: int | None
    lines: int
    dropped_lines: int
    count: int
    truncated: bool
    fatal: bool
    lane: str | None
    task: str | None
    updated_at: float
    closed_at: float | None
    previous_boot: bool = False
    """Replayed from pstore after a reboot: it happened in boot `boot`, the one
    before the boot the host was in when it was received."""

    @property
    def label(self) -> str:
        return self.name or self.sender.host


@dataclass(frozen=True, slots=True, kw_only=True)
class IncidentGroup:
    """Incidents with one fingerprint: the same crash, on how many hosts, how often."""

    fingerprint: str
    kind: str
    title: str
    culprit: str | None
    incidents: int
    hosts: int
    first: float
    last: float
    latest_id: int
    host_names: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shed:
    """`count` datagrams of `sender` the receiver shed (it was behind, the sender
    over its budget: collector/_budget.py) since the last batch, up to `at`."""

    sender: Sender
    at: float
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneHostCount:
    """What the express lane's records of one sender add to its host since the
    store last counted them (`PrebuiltRecords.hosts`)."""

    sender: Sender
    records: int
    first_received: float
    last_received: float
    name: bytes | None
    """The newest `hostname=` value of those records, or None."""
    release: str | None
    """The release of the sender's stream, or None."""


@dataclass(slots=True)
class PrebuiltRecords:
    """Records already in `INSERT_PREBUILT` form (`store._codec.PrebuiltRow`): the
    receiver's express lane builds them in C (collector/_express.py). They go into
    a batch among the stream events, in arrival order.

    `hosts` is what they add to each host.
    """

    rows: list[PrebuiltRow]
    hosts: list[LaneHostCount] = field(default_factory=list)
