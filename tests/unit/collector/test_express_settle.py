"""Express.settle and after_commit: a lane that is taking records is never reset
to its stream's (older) state, whatever order reserve_host fails and succeeds in."""

from __future__ import annotations

import pytest

from netconsole.collector._express import Express, _lane
from netconsole.incidents import IncidentTable
from netconsole.store import SQLiteStore, open_store
from netconsole.stream import Sender, StreamTable
from netconsole.wire import OutgoingRecord, encode_extended

pytestmark = pytest.mark.skipif(_lane is None, reason="the C express lane is not built")

SENDER = Sender(host="10.0.0.1", port=6665, local_port=6666)
KEY = b"sockaddr"


class FlakyStore:
    """A real store whose `reserve_host` fails while `busy` (another writer's lock)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.busy = True

    def reserve_host(self, sender: Sender) -> tuple[int, int] | None:
        return None if self.busy else self.store.reserve_host(sender)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def _feed(table: StreamTable, seq: int) -> None:
    for d in encode_extended(OutgoingRecord(facility=0, level=6, seq=seq, ts_usec=seq,
                                            text=b"line %d" % seq)):
        table.feed(SENDER, d, 1.0 + seq / 1000)
    table.events()


def test_a_waiting_sender_that_got_its_lane_keeps_what_the_lane_took() -> None:
    table, store = StreamTable(), open_store(":memory:")
    sink = FlakyStore(store)
    express = Express(table, IncidentTable(), sink)  # type: ignore[arg-type]
    express.lanes[SENDER.local_port] = {}
    _feed(table, 1)
    express.settle(SENDER, KEY, None)  # the lock is busy: waits for the commit
    assert SENDER not in express.of
    sink.busy = False
    _feed(table, 2)
    express.settle(SENDER, KEY, None)  # now it has a lane
    lane = express.of[SENDER]
    assert lane.active and lane.seq == 2
    lane.seq = 9  # C took 3..9; the stream has not seen them yet
    express.after_commit()
    assert lane.active and lane.seq == 9
    store.close()
