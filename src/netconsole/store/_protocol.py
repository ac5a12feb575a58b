"""The interfaces every store backend offers: a sink, and queries over it.

Typing protocols rather than base classes or plugins: a backend (SQLite now,
ClickHouse, JSONL, per-host files later) satisfies them by shape, and a sink
that cannot answer queries (syslog forward) implements only `RecordSink`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from netconsole.incidents import Output
from netconsole.store._model import (
    HostInfo,
    PrebuiltRecords,
    RecordFilter,
    RetentionResult,
    Shed,
    StoredEvent,
    StoredRecord,
)
from netconsole.stream.events import Record, Sender


class RecordSink(Protocol):
    """Where the collector's writer puts each batch of stream events."""

    def apply(
        self,
        events: Sequence[Output | PrebuiltRecords | Shed],
        states: Mapping[Sender, Mapping[str, Any]] | None = None,
    ) -> None:
        """Store one batch atomically; durable once this returns."""
        ...

    def save_stream_states(self, states: Mapping[Sender, Mapping[str, Any]]) -> None:
        """Save each sender's opaque `SenderStream.snapshot()`."""
        ...

    def load_stream_states(self) -> dict[Sender, dict[str, Any]]:
        """The saved snapshots, to restore each sender after a restart."""
        ...

    def known_senders(self) -> set[Sender]:
        """Every sender the store knows (whose stream a restart resumes)."""
        ...

    def resume_stream(self, sender: Sender) -> tuple[dict[str, Any], list[Record]]:
        """A sender's saved snapshot and the records stored after it, to replay."""
        ...

    def committed_host(self, sender: Sender) -> tuple[int, int] | None:
        """(host id, boot number) of `sender` as committed, or None when this
        sink has not written it yet or has no ids (then `PrebuiltRecords`, which
        carry them, cannot be made for it)."""
        ...

    def reserve_host(self, sender: Sender) -> tuple[int, int] | None:
        """(host id, committed boot) of `sender`, its host written now if the
        store has never seen it; None when that cannot be done at once (then
        `PrebuiltRecords` for it wait for `committed_host`)."""
        ...

    def enforce_retention(self, now: float) -> RetentionResult:
        """Delete what the retention policy no longer keeps."""
        ...

    def close(self) -> None:
        """Flush everything and release the backend."""
        ...


class RecordQueries(Protocol):
    """What `tail`, `search`, `hosts`, `export`, `setup` and the web view ask."""

    def last_id(self) -> int: ...

    def tail(
        self,
        *,
        host: str | None = None,
        level: int | None = None,
        since: float | None = None,
        grep: str | None = None,
        limit: int = 100,
        after_id: int | None = None,
        match: RecordFilter | None = None,
    ) -> list[StoredRecord]: ...

    def search(
        self,
        query: str,
        *,
        host: str | None = None,
        since: float | None = None,
        limit: int = 100,
        fts_syntax: bool = False,
        match: RecordFilter | None = None,
    ) -> list[StoredRecord]: ...

    def export(
        self,
        *,
        host: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int = 0,
        chunk: int = 1000,
        match: RecordFilter | None = None,
    ) -> Iterator[StoredRecord]: ...

    def hosts(self, *, now: float, silent_after: float | None = None) -> list[HostInfo]: ...

    def events(
        self,
        *,
        host: str | None = None,
        since: float | None = None,
        kind: str | None = None,
        limit: int = 100,
        after_id: int = 0,
    ) -> list[StoredEvent]: ...

    def seen_nonce(self, nonce: str, *, since: float | None = None) -> bool: ...

    def close(self) -> None: ...


class Store(RecordSink, Protocol):
    """A backend that both stores and answers: `reader` gives its queries."""

    @property
    def reader(self) -> RecordQueries: ...
