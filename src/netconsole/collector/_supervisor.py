"""`listen` as a whole: check, migrate, start the workers, serve HTTP, stop cleanly.

With one worker everything runs in this process. With more, each worker is a
forked process binding the same ports with SO_REUSEPORT; they report their
counters through a queue, and this process forwards SIGTERM/SIGINT/SIGHUP to
them and restarts one that dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import multiprocessing
import os
import queue
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

from prometheus_client.registry import CollectorRegistry

from netconsole.alerts import RuleError, parse_rules, with_rules
from netconsole.collector._config import ListenConfig, parse_hostport
from netconsole.collector._http import ApiServer
from netconsole.collector._metrics import WorkerMetrics
from netconsole.collector._sockets import open_udp, rmem_max
from netconsole.collector._worker import Worker
from netconsole.store import default_db_path, open_store


class ListenError(RuntimeError):
    """`listen` cannot start; the message says why and what to do."""


def check_ports(cfg: ListenConfig) -> list[str]:
    """Fail early when a port is taken; return warnings (receive buffer capped)."""
    warnings = []
    for port in cfg.ports:
        for addr in cfg.bind:
            # Without SO_REUSEPORT this bind fails if anyone holds the port,
            # including another receiver that would silently share it.
            try:
                probe = open_udp(addr, port, rcvbuf=cfg.rcvbuf, reuseport=False)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ListenError(f"UDP port {port} on {addr} is already in use (another "
                                      f"receiver? `ss -ulpn sport = :{port}`)") from None
                if exc.errno == errno.EACCES:
                    raise ListenError(f"no permission to bind UDP port {port}") from None
                raise ListenError(f"cannot bind UDP {addr} port {port}: {exc.strerror}") from None
            if probe.capped:
                cap = rmem_max()
                warnings.append(
                    f"receive buffer capped at {probe.rcvbuf} bytes (wanted {cfg.rcvbuf}) by "
                    f"net.core.rmem_max={cap}; bursts may be dropped. Raise it: "
                    f"sysctl -w net.core.rmem_max={cfg.rcvbuf}")
            probe.sock.close()
    return warnings


def serve(cfg: ListenConfig, *, config_loader: Callable[[], ListenConfig] | None = None,
          announce: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> int:
    """Run the receiver until SIGTERM/SIGINT. Returns the exit status."""
    for w in check_ports(cfg):
        announce(f"warning: {w}")
    # Migrate once, before any worker opens the database.
    open_store(cfg.db).close()
    metrics = WorkerMetrics()
    registry = CollectorRegistry(auto_describe=True)
    registry.register(metrics)
    api = None
    if cfg.http:
        host, port = parse_hostport(cfg.http)
        try:
            api = ApiServer(host, port, registry, cfg.db, lambda: len(metrics.latest))
        except OSError as exc:
            raise ListenError(f"cannot serve HTTP on {cfg.http}: {exc.strerror}") from None
        api.start()
    where = ", ".join(f"udp [{a}]:{p}" if ":" in a else f"udp {a}:{p}"
                      for p in cfg.ports for a in cfg.bind)
    http = f"http://{cfg.http}/metrics" if cfg.http else "no HTTP"
    try:
        if cfg.worker_count == 1:
            worker = Worker(cfg, report=lambda d: metrics.latest.__setitem__(0, d),
                            config_loader=config_loader)
            worker.open()
            worker.install_signals()
            announce(f"listening on {where}; 1 worker; store {cfg.db or default_db_path()}; "
                     f"{http}")
            worker.run()
            return 0
        return _serve_forked(cfg, config_loader, metrics, where, http, announce)
    finally:
        if api is not None:
            api.close()


def _die_with_supervisor() -> None:
    """A worker must not outlive its supervisor (kill -9, OOM killer): it would
    keep a share of the port and steal a restarted receiver's datagrams."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # already orphaned between fork and prctl
        os._exit(1)


def _worker_main(cfg: ListenConfig, index: int, reports: Any,
                 config_loader: Callable[[], ListenConfig] | None) -> None:
    _die_with_supervisor()
    worker = Worker(cfg, index=index, report=reports.put, config_loader=config_loader,
                    alerts_out=lambda events: reports.put({"worker": index, "alerts": events}))
    worker.install_signals()
    try:
        worker.open()
    except Exception as exc:
        reports.put({"worker": index, "error": str(exc)})
        sys.exit(2)
    reports.put({"worker": index, "ready": True})
    worker.run()


def _serve_forked(cfg: ListenConfig, config_loader: Callable[[], ListenConfig] | None,
                  metrics: WorkerMetrics, where: str, http: str,
                  announce: Callable[[str], None]) -> int:
    alerts = _Alerts(cfg, config_loader, announce)  # raises ListenError on a bad rule
    ctx = multiprocessing.get_context("fork")
    reports = ctx.Queue()
    procs: dict[int, Any] = {}
    stopping = False
    reload = False

    def start(i: int) -> None:
        p = ctx.Process(target=_worker_main, args=(cfg, i, reports, config_loader),
                        name=f"netconsole-worker-{i}", daemon=False)
        p.start()
        procs[i] = p

    def on_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)

    def on_hup(signum: int, frame: object) -> None:
        nonlocal reload
        reload = True
        for p in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGHUP)

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    n = cfg.worker_count
    for i in range(n):
        start(i)
    ready: set[int] = set()
    status = 0
    try:
        while True:
            try:
                msg = reports.get(timeout=0.5)
            except queue.Empty:
                msg = None
            except (EOFError, OSError):
                break
            if reload:
                reload = False
                alerts.reload()
            if msg is not None:
                i = msg["worker"]
                if "alerts" in msg:
                    alerts.submit(msg["alerts"])
                elif "error" in msg:
                    announce(f"worker {i} could not start: {msg['error']}")
                    on_stop(signal.SIGTERM, None)
                    status = 2
                elif msg.get("ready"):
                    ready.add(i)
                    if len(ready) == n:
                        announce(f"listening on {where}; {n} workers; store "
                                 f"{cfg.db or default_db_path()}; {http}")
                else:
                    metrics.latest[i] = msg
            for i, p in list(procs.items()):
                if not p.is_alive():
                    p.join()
                    if stopping:
                        del procs[i]
                    else:
                        announce(f"worker {i} exited with status {p.exitcode}; restarting it")
                        time.sleep(0.2)
                        start(i)
            if stopping and not procs:
                # drain the final reports
                with contextlib.suppress(queue.Empty, EOFError, OSError):
                    while True:
                        msg = reports.get(timeout=0.1)
                        if "alerts" in msg:
                            alerts.submit(msg["alerts"])
                        elif "worker" in msg and "datagrams" in msg:
                            metrics.latest[msg["worker"]] = msg
                break
    finally:
        alerts.close()
        for s, h in old.items():
            signal.signal(s, h)
        for p in procs.values():
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return status


class _Alerts:
    """The forked supervisor's alerting: one AlertManager for every worker, so
    that an incident on hosts of different workers groups into one message."""

    def __init__(self, cfg: ListenConfig, config_loader: Callable[[], ListenConfig] | None,
                 announce: Callable[[str], None]) -> None:
        self.config_loader = config_loader
        self.announce = announce
        try:
            rules = parse_rules(cfg.extra.get("alerts"))
        except RuleError as exc:
            raise ListenError(str(exc)) from None
        self.manager = with_rules(None, rules, start=True)

    def submit(self, events: list[Any]) -> None:
        if self.manager is not None:
            self.manager.submit(events)

    def reload(self) -> None:
        """SIGHUP: new rules; a bad one keeps the old (a typo must not stop paging)."""
        if self.config_loader is None:
            return
        try:
            rules = parse_rules(self.config_loader().extra.get("alerts"))
        except Exception as exc:  # a bad edit must not stop the daemon
            self.announce(f"SIGHUP: keeping the old alert rules: {exc}")
            return
        self.manager = with_rules(self.manager, rules, start=True)

    def close(self) -> None:
        if self.manager is not None:
            self.manager.close()


def free_udp_port() -> int:
    """A UDP port free on loopback right now (tests and benchmarks)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::", 0))
        return int(s.getsockname()[1])
