"""Fixtures for the store tests: stores (in memory and on disk) and record builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netconsole.store import SQLiteStore, open_store
from netconsole.stream.events import Record, Sender
from netconsole.wire import Mode

WEB1 = Sender(host="192.0.2.10", port=6665, local_port=6666)
DB1 = Sender(host="2001:db8::7", port=6665, local_port=6666)

MakeRecord = Callable[..., Record]


@pytest.fixture
def fresh_store() -> Iterator[SQLiteStore]:
    store = open_store(":memory:")
    yield store
    store.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "netconsole.db"


@pytest.fixture
def file_store(db_path: Path) -> Iterator[SQLiteStore]:
    store = open_store(db_path)
    yield store
    store.close()


def make_record(
    seq: int = 0,
    *,
    sender: Sender = WEB1,
    text: bytes | None = None,
    received: float | None = None,
    level: int | None = 6,
    hostname: bytes | None = None,
    **kwargs: Any,
) -> Record:
    """An extended record with the sysdata a 6.x kernel sends."""
    fields: list[tuple[bytes, bytes]] = []
    if hostname is not None:
        fields.append((b"hostname", hostname))
    fields += [(b"cpu", b"1"), (b"taskname", b"kworker/1:0"), (b"msgid", str(seq).encode())]
    return Record(
        sender=sender,
        mode=Mode.EXTENDED,
        received=1_700_000_000.0 + seq if received is None else received,
        text=f"message {seq}".encode() if text is None else text,
        facility=0,
        level=level,
        seq=seq,
        ts_usec=seq * 1000,
        fields=kwargs.pop("fields", tuple(fields)),
        **kwargs,
    )


@pytest.fixture
def record() -> MakeRecord:
    return make_record
