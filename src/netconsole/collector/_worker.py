"""One receiver process: the I/O shell around its Pipeline (collector/_pipeline.py).

`Pipeline` decides everything about what arrives (streams, incidents, budgets,
the allow list, the express lane's books, what goes into the next batch) and
reads no clock; `Worker` does the rest, as aioquic's asyncio adapter does
around its connection: sockets, signals, timers, the store.

The loop waits on its sockets (poll) until data, the pipeline's next deadline
(a gap's wait, a report that stopped arriving, a host gone silent) or the batch
interval; takes every waiting datagram in `recvmmsg` batches (in C with the
express lane) and feeds them to the pipeline with the time; runs its timers
(`Pipeline.expire`); and when the batch is due (`Pipeline.flush_at`: the
`batch_interval`, longer under load, sooner when full) commits
`Pipeline.take_batch` in one store transaction through the
BatchWriter (collector/_spool.py). Only after that commit are records shown,
written to `--jsonl` and outputs, and incidents handed to the AlertManager's
queue (its own thread: a slow webhook never stalls the receiver; with several
workers, to the supervisor's, which groups across workers): what was shown
is stored.

Signals: SIGTERM/SIGINT stop the loop and flush everything; SIGHUP re-reads
the configuration file (allow list, quiet, jsonl, alert rules) and reopens
the jsonl file.
"""

from __future__ import annotations

import functools
import gc
import ipaddress
import json
import os
import select
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from netconsole.alerts import AlertManager, RuleError, alertable, parse_rules, with_rules
from netconsole.collector._budget import BEHIND_FILL, HOLD
from netconsole.collector._config import ConfigError, ListenConfig, reloaded
from netconsole.collector._errors import ListenError
from netconsole.collector._express import available as express_available
from netconsole.collector._live import LiveView
from netconsole.collector._messages import WorkerCounts
from netconsole.collector._metrics import Counters
from netconsole.collector._pipeline import MAX_BATCH, LaneReport, Pipeline
from netconsole.collector._sockets import (
    BatchReceiver,
    Bound,
    kernel_drops,
    open_udp,
    queue_state,
)
from netconsole.collector._spool import BatchWriter, Item
from netconsole.incidents import Incident, Output, Silence
from netconsole.outputs import Output as RecordOutput
from netconsole.outputs import committed_batch, open_outputs
from netconsole.records_json import record_to_json
from netconsole.store import (
    PrebuiltRecords,
    RecordSink,
    Retention,
    Shed,
    open_store,
    parse_duration,
    parse_size,
)
from netconsole.stream import Record, Sender

if TYPE_CHECKING:
    from netconsole.collector._lane import Receiver

# A wake-up that found fewer datagrams than this was a trickle: the loop lets the next
# ones gather for TRICKLE_WAIT. At 50,000 records/s a receiver that keeps up woke
# about 5,000 times a second for ten datagrams each, each with a fixed cost (poll,
# the lanes' books, a list per run of rows). A cProfile at 1,000 senders showed
# that cost; bench/mix.py's CPU per record moved less than its run-to-run spread.
# The socket holds 2 ms easily; a batch waits `batch_interval` anyway.
TRICKLE = 256
TRICKLE_WAIT = 0.002
# Datagrams taken per wake-up before the loop looks at its timers again.
RECV_BUDGET = 4096
RETENTION_EVERY = 60.0
GC_THRESHOLD = 50_000
SHED_RUN = 256
"""What a receive buffer of shed records counts against RECV_BUDGET (the C batch)."""


class Worker:
    """A receiver process: sockets, signals, timers and the store around its
    `pipeline`; `run()` is its loop."""

    def __init__(self, cfg: ListenConfig, *, index: int = 0,
                 report: Callable[[WorkerCounts], None] | None = None,
                 config_loader: Callable[[], ListenConfig] | None = None,
                 sink: RecordSink | None = None,
                 alerts_out: Callable[[list[Any]], None] | None = None) -> None:
        self.cfg = cfg
        self.index = index
        self.report = report
        self.config_loader = config_loader
        self.counters = Counters()
        self.pipeline = Pipeline(counters=self.counters, sender_budget=cfg.sender_budget,
                                 silent_after=cfg.silent_after, resume=self._resumed)
        self._behind_until = 0.0  # budgets apply until then (the all-Python receive)
        self._drops: dict[int, int] = {}  # socket fd -> the kernel's drop count last seen
        self.sockets: list[Bound] = []
        self.stopping = False
        self._reload = False
        self.sink = sink
        self._resume: set[Sender] = set()
        self._jsonl: IO[str] | None = None
        self._live: LiveView | None = None
        self._writer: BatchWriter | None = None  # made at the first flush (collector/_spool.py)
        self.exit_status = 0  # 1 when records were lost (neither stored nor spooled)
        self.alerts: AlertManager | None = None
        # With several workers the supervisor alerts for all of them (grouping
        # by fingerprint must see every host): this worker only hands over.
        self._alerts_out = alerts_out
        self._opened = False
        self._rule_error: str | None = None
        # --forward and --files (netconsole/outputs): fed each committed batch.
        self.outputs: list[RecordOutput] = []
        self._apply_config(cfg)

    # -- setup ------------------------------------------------------------------------

    def open(self) -> None:
        """Bind the sockets and open the store (before `run`, so errors surface early)."""
        if self._rule_error is not None:
            raise ListenError(self._rule_error)
        for port in self.cfg.ports:
            for addr in self.cfg.bind:
                self.sockets.append(open_udp(addr, port, rcvbuf=self.cfg.rcvbuf))
        if self.sink is None:
            retention = Retention(
                max_age=parse_duration(self.cfg.retain) if self.cfg.retain else None,
                max_bytes=parse_size(self.cfg.max_size) if self.cfg.max_size else None,
            )
            self.sink = open_store(self.cfg.store_target, retention=retention,
                                   silent_after=self.cfg.silent_after)
        self._resume = self.sink.known_senders()
        try:
            self.outputs = open_outputs(self.cfg.forward, self.cfg.files)
        except OSError as exc:
            raise ListenError(f"--files {self.cfg.files}: {exc.strerror or exc}") from None
        if express_available():  # the C express lane (collector/_express.py)
            self.pipeline.open_express(self.sink)
        self._opened = True
        if self.alerts is not None:
            self.alerts.start()

    def _apply_config(self, cfg: ListenConfig) -> None:
        """Switch to `cfg`, reopening the jsonl file. What can fail (opening
        that file, the `[[alerts]]` rules) is done first, so a failure leaves
        the running configuration whole.

        Raises:
            ConfigError: once running (SIGHUP), with what failed. Before `open()`
                the error is kept for `open()` to raise as a ListenError.
        """
        try:
            allow = [ipaddress.ip_network(c, strict=False) for c in cfg.allow]
            rules = None
            if self._alerts_out is None:  # else the supervisor's rules
                try:
                    rules = parse_rules(cfg.extra.get("alerts"))
                except RuleError as exc:
                    raise ConfigError(str(exc)) from None
            jsonl: IO[str] | None = None
            if cfg.jsonl == "-":
                jsonl = sys.stdout
            elif cfg.jsonl:
                try:
                    jsonl = open(cfg.jsonl, "a", encoding="utf-8")  # noqa: SIM115
                except OSError as exc:
                    raise ConfigError(f"cannot open {cfg.jsonl}: {exc.strerror}") from None
        except ConfigError as exc:
            if self._opened:
                raise
            self._rule_error = str(exc)  # open() raises it: a start that cannot work
            return
        # Nothing below fails.
        self.pipeline.set_allow(allow)
        self.cfg = cfg
        if self._jsonl is not None and self._jsonl is not sys.stdout:
            self._jsonl.close()
        self._jsonl = jsonl
        self._live = None if (cfg.quiet or cfg.jsonl == "-") else LiveView()
        if rules is not None:
            self.alerts = with_rules(self.alerts, rules, start=self._opened)  # open() starts it

    # -- the loop -----------------------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_hup)

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, frame: object) -> None:
        self._reload = True

    def run(self) -> None:
        """Receive until told to stop, then flush everything."""
        # Each record allocates a few tuples; with the default threshold (700)
        # the cyclic collector ran hundreds of times a second, scanning the young
        # rows every time. The receiver makes few cycles: collect less often.
        gc.set_threshold(GC_THRESHOLD, 20, 20)
        pipeline = self.pipeline
        poller = select.poll()
        receivers: dict[int, Callable[[float], None]] = {}
        for b in self.sockets:
            fd = b.sock.fileno()
            poller.register(fd, select.POLLIN)
            if pipeline.express is not None:
                receivers[fd] = functools.partial(
                    self._receive_express, pipeline.express.receiver(fd, b.port, pipeline.budgets),
                    b.port)
            else:
                receivers[fd] = functools.partial(self._receive, BatchReceiver(b.sock), b.port)
        batch_started = time.time()
        next_report = time.time() + 1.0
        next_retention = time.time() + 5.0
        purged = 0  # records deleted so far by a retention of several passes
        while not self.stopping:
            now = time.time()
            deadline = pipeline.next_deadline()
            waiting = pipeline.pending or (self._writer is not None and self._writer.holding)
            flush_at = pipeline.flush_at(batch_started, self.cfg.batch_interval)
            wake = min(flush_at if waiting else now + 1.0, next_report,
                       deadline if deadline is not None else now + 1.0)
            try:
                ready = poller.poll(max(0.0, wake - now) * 1000)
            except InterruptedError:
                ready = []
            if self._reload:  # before receiving: what arrives now meets the new rules
                self._reload = False
                self._reload_config()
                pipeline.set_budget(self.cfg.sender_budget)
            now = time.time()
            received = self.counters.datagrams
            for fd, _ in ready:
                receivers[fd](now)
            trickle = 0 < self.counters.datagrams - received < TRICKLE
            pipeline.expire(now)
            # Held records (the store failing) are retried at flushes even when idle.
            waiting = pipeline.pending or (self._writer is not None and self._writer.holding)
            if waiting and now >= pipeline.flush_at(batch_started, self.cfg.batch_interval):
                self.flush()
                batch_started = now
            elif not waiting:
                batch_started = now
            if now >= next_report:
                self._send_report()
                next_report = now + 1.0
            if trickle and not self.stopping:
                time.sleep(TRICKLE_WAIT)
            if self.index == 0 and now >= next_retention and (self.cfg.retain or self.cfg.max_size):
                assert self.sink is not None
                try:
                    done = self.sink.enforce_retention(now)
                except Exception:  # the store cannot write (full, locked): try again later
                    self.counters.store_errors += 1
                    next_retention = now + RETENTION_EVERY
                else:
                    # A pass deletes a bounded number of rows; go on soon while more is due.
                    next_retention = now + (1.0 if done.more else RETENTION_EVERY)
                    # A deletion of several passes (a first start with --retain on a
                    # large store) says how far it got; the routine pass says nothing.
                    if done.more or purged:
                        purged += done.records
                        print(f"netconsole listen: retention: {purged} records deleted"
                              + (", more to delete" if done.more else ", done"),
                              file=sys.stderr)
                        purged = 0 if not done.more else purged
        self.close()

    def _receive(self, receiver: BatchReceiver, local_port: int, now: float) -> None:
        """Take what `receiver`'s socket holds (up to RECV_BUDGET) through the
        Python path, budgets applying while the socket is in danger."""
        c, feed = self.counters, self.pipeline.feed_datagram
        taken = 0
        while taken < RECV_BUDGET:
            batch = receiver.receive()
            if not batch:
                break  # drained: after_receive still runs
            taken += len(batch)
            c.datagrams += len(batch)
            if len(batch) == receiver.batch and self._in_danger(receiver.sock):
                self._behind_until = now + HOLD  # more waiting, and the socket in danger
            behind = now < self._behind_until
            for payload, host, port, truncated in batch:
                c.bytes += len(payload)
                feed(payload, host, port, truncated, local_port, now, behind)
        self.pipeline.after_receive(now, behind=now < self._behind_until)

    def _in_danger(self, sock: socket.socket) -> bool:
        """The socket's queue past BEHIND_FILL, or the kernel dropped on it since last time."""
        state = queue_state(sock)
        fd = sock.fileno()
        dropped = state.drops != self._drops.get(fd, 0)
        self._drops[fd] = state.drops
        return dropped or state.fill > BEHIND_FILL

    def _receive_express(self, rx: Receiver, local_port: int, now: float) -> None:
        """`_receive` with the express lane: the C receiver turns the common
        records into store rows itself and hands out the rest, in order."""
        pipeline = self.pipeline
        taken = 0
        while True:
            item = rx.step(now, taken < RECV_BUDGET)
            if item is None:
                break
            if isinstance(item, list):
                if not item:  # a buffer of shed records: count it against the budget
                    taken += SHED_RUN
                    continue
                taken += len(item)
                pipeline.feed_rows(item)
                continue
            taken += 1
            pipeline.feed_handed_out(item.payload, item.host, item.port, item.truncated,
                                     local_port, now, now < rx.behind_until, key=item.key,
                                     lane=item.lane)
        datagrams, size = rx.counts()
        self.counters.datagrams += datagrams
        self.counters.bytes += size
        pipeline.after_receive(now, behind=now < rx.behind_until,
                               lanes=LaneReport(shedding=rx.shedding(), touched=rx.touched()))

    def _resumed(self, sender: Sender) -> tuple[dict[str, Any], list[Record]] | None:
        """The table's `resume`: a sender the store knew at start, back after a
        restart, continues from its saved state and the records stored since."""
        if sender not in self._resume:
            return None
        self._resume.discard(sender)
        assert self.sink is not None
        return self.sink.resume_stream(sender)

    def flush(self, *, final: bool = False) -> None:
        """Commit the pipeline's next batch, after what a failing store left held,
        then show it.

        `BatchWriter` sets aside an event the store refuses and holds the rest
        while the store cannot write (collector/_spool.py); what it commits is
        shown. `final`: at shutdown, try the store now whatever its backoff.
        """
        writer = self._writer
        batch = self.pipeline.take_batch(time.time(), final=final,
                                         holding=writer is not None and writer.holding)
        if batch is None:
            return
        if writer is None:
            assert self.sink is not None
            # The spool is named after the database (a ClickHouse store's `path` is local).
            db: Path | None = getattr(self.sink, "path", None)
            writer = self._writer = BatchWriter(self.sink, self.counters, db=db,
                                                piece=MAX_BATCH)
        t0 = time.perf_counter()
        written = writer.write(batch.events, batch.states, final=final)
        self.counters.store_seconds += time.perf_counter() - t0
        self.pipeline.after_write(batch, states_saved=written.states_saved,
                                  holding=writer.holding)
        for committed in written.committed:
            self._show_committed(committed)

    def _show_committed(self, events: list[Item]) -> None:
        """Count, alert, write to `--jsonl` and show one committed batch."""
        c = self.counters
        unshown = 0  # express records counted here, not as Record events below
        outputs: list[Output | Shed]
        if self.pipeline.express is not None:
            prebuilt = sum(len(e.rows) for e in events if isinstance(e, PrebuiltRecords))
            c.express_records += prebuilt
            if self._jsonl is not None or self._live is not None or self.outputs:
                outputs = self._with_records(events)
            else:
                outputs = [e for e in events if not isinstance(e, PrebuiltRecords)]
                unshown = prebuilt
        else:
            outputs = cast(list[Output | Shed], events)  # only the lane makes PrebuiltRecords
        if self.alerts is not None:
            self.alerts.submit(outputs)  # only now: an alert is for a stored incident
        elif self._alerts_out is not None:
            picked = [e for e in outputs if alertable(e)]
            if picked:
                self._alerts_out(picked)
        stream_events = [e for e in outputs if not isinstance(e, (Incident, Silence, Shed))]
        c.count(stream_events)
        c.count_incidents(outputs)
        records = [e for e in stream_events if type(e) is Record]
        c.records += unshown
        c.stored_records += len(records) + unshown
        if self._jsonl is not None and records:
            self._jsonl.write("".join(json.dumps(record_to_json(r), ensure_ascii=False) + "\n"
                                      for r in records))
            self._jsonl.flush()
        if self._live is not None:
            self._live.show(outputs)
        if self.outputs:  # after the commit: what is forwarded or written was stored
            assert self.sink is not None
            batch = committed_batch(outputs, self.sink.committed_host)
            for output in self.outputs:
                output.deliver(batch)

    def _with_records(self, events: list[Item]) -> list[Output | Shed]:
        """The batch with each `PrebuiltRecords` replaced by its Records, to show."""
        express = self.pipeline.express
        assert express is not None
        out: list[Output | Shed] = []
        for e in events:
            if isinstance(e, PrebuiltRecords):
                out.extend(express.records(e))
            else:
                out.append(e)
        return out

    def close(self) -> None:
        """Flush everything (what the streams hold, every state), spool what the
        store cannot take, then close the store, outputs and sockets."""
        self.pipeline.close(time.time())
        self.flush(final=True)
        lost_now = 0
        if self._writer is not None and self._writer.holding:
            kept = self._writer.persist()  # the spool, for the next start
            lost_now = kept.lost
            if kept.spooled:
                print(f"netconsole listen: the store could not take {kept.spooled} records "
                      f"before stopping; they are spooled in {kept.spool} and will be stored "
                      "at the next start", file=sys.stderr)
            if kept.lost:
                print(f"netconsole listen: lost {kept.lost} records at shutdown: the store "
                      f"cannot write and the spool cannot take them ({kept.error})",
                      file=sys.stderr)
        if self.counters.lost_records:
            self.exit_status = 1
            if self.counters.lost_records > lost_now:  # earlier losses were said as they came
                print(f"netconsole listen: {self.counters.lost_records} records were lost in "
                      "all (neither stored nor spooled)", file=sys.stderr)
        if self.alerts is not None:
            self.alerts.close()
        if self.sink is not None:
            self.sink.close()
        for output in self.outputs:  # each drains within a bounded time
            output.close()
        self._send_report()
        for b in self.sockets:
            b.sock.close()
        self.sockets = []
        if self._jsonl is not None and self._jsonl is not sys.stdout:
            self._jsonl.close()

    def _send_report(self) -> None:
        c = self.counters
        c.kernel_drops = kernel_drops(b.sock for b in self.sockets) if self.sockets else 0
        c.hosts = len(self.pipeline.table.streams)
        c.buffered_bytes = self.pipeline.table.buffered_bytes
        if self.alerts is not None:  # one worker: it alerts itself
            c.alert_outcomes = Counter(self.alerts.stats)
        if self.outputs:
            c.count_outputs({o.name: o.stats() for o in self.outputs})
        if self.report is not None:
            self.report(WorkerCounts(self.index, {"pid": os.getpid(), **c.as_dict()}))

    def _reload_config(self) -> None:
        """SIGHUP: the configuration again (from the file, or with several
        workers as the supervisor read and checked it) and the jsonl file
        reopened. A bad configuration is one line and the old one goes on;
        the old file is still reopened (a rotation must not wait for a fix)."""
        for output in self.outputs:  # --files: what logrotate moved away is made again
            output.reopen()
        cfg = self.cfg
        if self.config_loader is not None:
            try:
                fresh = self.config_loader()
            except Exception as exc:  # a bad edit must not stop the daemon
                print(f"netconsole listen: SIGHUP: keeping the old configuration: {exc}",
                      file=sys.stderr)
            else:
                cfg, ignored = reloaded(self.cfg, fresh)
                if ignored:
                    print(f"netconsole listen: SIGHUP: {', '.join(ignored)} change on restart "
                          "only", file=sys.stderr)
        try:
            self._apply_config(cfg)
        except ConfigError as exc:
            what = "configuration" if cfg is not self.cfg else "jsonl file"
            print(f"netconsole listen: SIGHUP: keeping the old {what}: {exc}", file=sys.stderr)
