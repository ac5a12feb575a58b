"""Where records go, and where the query commands read them back.

The collector's writer opens `open_store()` and calls `apply(events, states)`
once per batch; `tail`, `search`, `hosts`, `export`, `setup` and the web view
open `open_reader()` (read-only). See docs/store.md for the schema, the
durability guarantee and retention.
"""

from netconsole.store._codec import PrebuiltRow, stored_to_json
from netconsole.store._errors import StoreError, StoreUnavailable
from netconsole.store._model import (
    DEFAULT_SILENT_AFTER,
    HostInfo,
    HostStatus,
    IncidentGroup,
    LaneHostCount,
    PrebuiltRecords,
    RecordFilter,
    Retention,
    RetentionResult,
    Shed,
    StoredEvent,
    StoredIncident,
    StoredRecord,
)
from netconsole.store._open import open_reader, open_store
from netconsole.store._paths import default_db_path
from netconsole.store._protocol import RecordQueries, RecordSink, Store
from netconsole.store._reader import SQLiteReader, follow, fts_query
from netconsole.store._schema import LATEST as SCHEMA_VERSION
from netconsole.store._units import (
    LEVEL_LABELS,
    parse_duration,
    parse_level,
    parse_since,
    parse_size,
)
from netconsole.store._writer import Durability, SQLiteStore

__all__ = [
    "DEFAULT_SILENT_AFTER",
    "LEVEL_LABELS",
    "SCHEMA_VERSION",
    "Durability",
    "HostInfo",
    "HostStatus",
    "IncidentGroup",
    "LaneHostCount",
    "PrebuiltRecords",
    "PrebuiltRow",
    "RecordFilter",
    "RecordQueries",
    "RecordSink",
    "Retention",
    "RetentionResult",
    "SQLiteReader",
    "SQLiteStore",
    "Shed",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredEvent",
    "StoredIncident",
    "StoredRecord",
    "default_db_path",
    "follow",
    "fts_query",
    "open_reader",
    "open_store",
    "parse_duration",
    "parse_level",
    "parse_since",
    "parse_size",
    "stored_to_json",
]
