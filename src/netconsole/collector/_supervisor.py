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
import select
import signal
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from prometheus_client.registry import CollectorRegistry

from netconsole.alerts import RuleError, parse_rules, with_rules
from netconsole.collector._config import ListenConfig, parse_hostport, reloaded
from netconsole.collector._errors import ListenError
from netconsole.collector._http import ApiServer
from netconsole.collector._messages import WorkerAlerts, WorkerCounts, WorkerFailed, WorkerReady
from netconsole.collector._metrics import WorkerMetrics
from netconsole.collector._sockets import open_udp, rmem_max
from netconsole.collector._spool import quarantine_for, replay_spool, spool_dir_for, spool_files
from netconsole.collector._worker import Worker
from netconsole.store import RecordSink, open_store


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
    metrics = WorkerMetrics()
    registry = CollectorRegistry(auto_describe=True)
    registry.register(metrics)
    api = None
    if cfg.http:  # bound before the database exists: a taken port creates nothing
        host, port = parse_hostport(cfg.http)
        try:
            api = ApiServer(host, port, registry, cfg.store_target, lambda: len(metrics.latest))
        except OSError as exc:
            raise ListenError(f"cannot serve HTTP on {cfg.http}: {exc.strerror}") from None
    web = None
    if cfg.web:  # bound early too; Starlette is imported only when asked for
        try:
            from netconsole.web import web_for_listen
        except ImportError as exc:
            if api is not None:
                api.close()
            raise ListenError(str(exc)) from None
        host, port = parse_hostport(cfg.web)
        try:
            web = web_for_listen(host, port, cfg.store_target, cfg.silent_after, announce)
        except OSError as exc:
            if api is not None:
                api.close()
            raise ListenError(f"cannot serve the web view on {cfg.web}: {exc.strerror}"
                              ) from None
    try:
        # Migrate once, before any worker opens the database; and store what an
        # earlier run spooled because its store could not write (collector/_spool.py).
        with open_store(cfg.store_target) as store:
            if store.path is not None and spool_files(store.path):
                _replay(store, store.path, announce)
    except BaseException:
        if api is not None:
            api.close()
        if web is not None:
            web.close()
        raise
    if api is not None:
        api.start()
    if web is not None:
        web.start()
    where = ", ".join(f"udp [{a}]:{p}" if ":" in a else f"udp {a}:{p}"
                      for p in cfg.ports for a in cfg.bind)
    http = f"http://{cfg.http}/metrics" if cfg.http else "no HTTP"
    if web is not None:
        http += f"; web view {web.url}"
    try:
        if cfg.worker_count == 1:
            worker = Worker(cfg, report=lambda m: metrics.latest.__setitem__(0, m.counts),
                            config_loader=config_loader)
            worker.open()
            worker.install_signals()
            announce(f"listening on {where}; 1 worker; store {cfg.store_label}; "
                     f"{http}")
            worker.run()
            return worker.exit_status  # 1: records were lost, and it said how many
        return _serve_forked(cfg, config_loader, metrics, where, http, announce)
    finally:
        if api is not None:
            api.close()
        if web is not None:
            web.close()


def _replay(store: RecordSink, db: Path, announce: Callable[[str], None]) -> None:
    done = replay_spool(store, db)
    if done.records:
        announce(f"stored {done.records} records an earlier run had spooled in "
                 f"{spool_dir_for(db)}")
    if done.quarantined:
        announce(f"set aside {done.quarantined} spooled events the store refuses "
                 f"(kept in {quarantine_for(db)})")
    if done.error is not None:
        announce(f"warning: {done.left} spooled records wait for the next start: {done.error}")


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
                    alerts_out=lambda events: reports.put(WorkerAlerts(index, events)))
    worker.install_signals()
    try:
        worker.open()
    except Exception as exc:
        reports.put(WorkerFailed(index, str(exc)))
        sys.exit(2)
    reports.put(WorkerReady(index))
    worker.run()
    sys.exit(worker.exit_status)  # 1: records were lost (it said how many)


def _serve_forked(cfg: ListenConfig, config_loader: Callable[[], ListenConfig] | None,
                  metrics: WorkerMetrics, where: str, http: str,
                  announce: Callable[[str], None]) -> int:
    alerts = _Alerts(cfg, announce)  # raises ListenError on a bad rule
    metrics.alert_stats = lambda: alerts.manager.stats if alerts.manager is not None else {}
    ctx = multiprocessing.get_context("fork")
    reports = ctx.Queue()
    procs: dict[int, Any] = {}
    stopping = False
    reload = False
    # The configuration a worker started now gets: the startup one, then that
    # of each SIGHUP that passed its checks. Read here only and handed to the
    # workers, so a worker restarted later runs what the others run.
    current = cfg
    handoff: dict[int, Connection] = {}  # this end of each worker's pipe

    def start(i: int) -> None:
        if i in handoff:
            handoff.pop(i).close()
        loader: _Handed | None = None
        if config_loader is not None:
            theirs, ours = ctx.Pipe(duplex=False)
            loader = _Handed(current, theirs)
        p = ctx.Process(target=_worker_main, args=(current, i, reports, loader),
                        name=f"netconsole-worker-{i}", daemon=False)
        p.start()
        if loader is not None:
            loader.conn.close()  # the worker's end, which it has now
            handoff[i] = ours
        procs[i] = p

    def hand_over() -> None:
        """SIGHUP: read and check the configuration once, take it (or keep the
        old one, in one line), hand it to every worker, then signal them: each
        reopens its jsonl file, with the new configuration or the old."""
        nonlocal current
        if config_loader is not None:
            try:
                fresh = config_loader()
            except Exception as exc:  # a bad edit must not stop the daemon
                announce(f"SIGHUP: keeping the old configuration: {exc}")
            else:
                current, ignored = reloaded(current, fresh)
                if ignored:
                    announce(f"SIGHUP: {', '.join(ignored)} change on restart only")
                alerts.reload(current)
                for conn in handoff.values():
                    # A worker reads its pipe at each SIGHUP; one that has not for
                    # long (a full pipe) is not worth blocking the supervisor for.
                    if select.select([], [conn], [], 0)[1]:
                        with contextlib.suppress(OSError):  # it died: restarted with `current`
                            conn.send(current)
        for p in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGHUP)

    def on_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for p in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)

    def on_hup(signum: int, frame: object) -> None:
        nonlocal reload
        reload = True  # handled in the loop (`hand_over`), not in a signal handler

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
                hand_over()
            if isinstance(msg, WorkerAlerts):
                alerts.submit(msg.events)
            elif isinstance(msg, WorkerFailed):
                announce(f"worker {msg.worker} could not start: {msg.error}")
                on_stop(signal.SIGTERM, None)
                status = 2
            elif isinstance(msg, WorkerReady):
                ready.add(msg.worker)
                if len(ready) == n:
                    announce(f"listening on {where}; {n} workers; store "
                             f"{cfg.store_label}; {http}")
            elif isinstance(msg, WorkerCounts):
                metrics.latest[msg.worker] = msg.counts
            for i, p in list(procs.items()):
                if not p.is_alive():
                    p.join()
                    if stopping:
                        if p.exitcode and not status:  # a worker lost records at stop
                            status = 1
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
                        if isinstance(msg, WorkerAlerts):
                            alerts.submit(msg.events)
                        elif isinstance(msg, WorkerCounts):
                            metrics.latest[msg.worker] = msg.counts
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

    def __init__(self, cfg: ListenConfig, announce: Callable[[str], None]) -> None:
        self.announce = announce
        try:
            rules = parse_rules(cfg.extra.get("alerts"))
        except RuleError as exc:
            raise ListenError(str(exc)) from None
        self.manager = with_rules(None, rules, start=True)

    def submit(self, events: list[Any]) -> None:
        if self.manager is not None:
            self.manager.submit(events)

    def reload(self, cfg: ListenConfig) -> None:
        """SIGHUP: the rules of a configuration that passed its checks
        (ListenConfig checks them; a bad one keeps the old: a typo must not stop paging)."""
        try:
            rules = parse_rules(cfg.extra.get("alerts"))
        except RuleError as exc:
            self.announce(f"SIGHUP: keeping the old alert rules: {exc}")
            return
        self.manager = with_rules(self.manager, rules, start=True)

    def close(self) -> None:
        if self.manager is not None:
            self.manager.close()


class _Handed:
    """A forked worker's `config_loader`: the configuration the supervisor read
    and checked at the last SIGHUP, from the pipe it came down (read at the
    worker's SIGHUP, which follows it)."""

    def __init__(self, cfg: ListenConfig, conn: Connection) -> None:
        self.cfg = cfg
        self.conn = conn

    def __call__(self) -> ListenConfig:
        while self.conn.poll():
            cfg = self.conn.recv()
            assert isinstance(cfg, ListenConfig)
            self.cfg = cfg
        return self.cfg


def free_udp_port() -> int:
    """A UDP port free on loopback right now (tests and benchmarks)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::", 0))
        return int(s.getsockname()[1])
