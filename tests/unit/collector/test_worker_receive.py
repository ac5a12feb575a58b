"""The worker's all-Python receive (no express lane): what it owes the pipeline
after each wake-up, over a real loopback socket."""

from __future__ import annotations

import socket
import time

from netconsole.collector._budget import NOISY_HOLD
from netconsole.collector._config import ListenConfig
from netconsole.collector._sockets import BatchReceiver
from netconsole.collector._worker import Worker
from netconsole.wire import OutgoingRecord, encode_extended


def test_a_drained_socket_still_ends_the_receive_with_after_receive() -> None:
    """The budgets of senders not shed lately are forgotten once the receiver has
    caught up: also when the socket ran dry before the receive budget."""
    worker = Worker(ListenConfig(sender_budget=100.0))
    budgets = worker.pipeline.budgets
    now = time.time()
    for n in range(3):  # senders met while the receiver was behind, never shed
        assert budgets.admit(("192.0.2.1", 6665 + n), now - 2 * NOISY_HOLD)
    assert len(budgets) == 3
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        for datagram in encode_extended(OutgoingRecord(facility=0, level=6, seq=1, ts_usec=1,
                                                       text=b"eth0: link up")):
            tx.sendto(datagram, rx.getsockname())
        time.sleep(0.05)
        worker._receive(BatchReceiver(rx), rx.getsockname()[1], now)
    finally:
        rx.close()
        tx.close()
    assert worker.counters.datagrams == 1
    assert len(budgets) == 0
