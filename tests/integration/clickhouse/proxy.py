"""A TCP relay in front of a ClickHouse server that can lose its answers.

While `losing`, every request still reaches the server, which executes it (an
INSERT is stored), but the answer never reaches the client: the connection is
cut as the answer arrives, as when a network or a load balancer fails between
the two. That is the one failure after which a client cannot know whether its
insert was stored -- the case the store's deterministic row keys are for.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.integration.listen_harness import free_tcp_port


class LossyRelay:
    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = free_tcp_port()
        self.losing = False
        self.lost = 0  # answers lost
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, upstream, False),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True),
                             daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if answers and self.losing:
                    self.lost += 1
                    break  # the server did its work; the client never hears of it
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._stop = True
        self._server.close()
