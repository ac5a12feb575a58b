"""One receiver process: sockets -> StreamTable -> store, in batches.

The loop waits on its sockets (poll) until data, a stream deadline or the
batch interval; takes every waiting datagram in `recvmmsg` batches; feeds
them to the StreamTable; and once per `batch_interval` (or every
`MAX_BATCH` events) commits the events in one store transaction, with the
stream states of the senders that changed more than STATE_EVERY ago. Only
after that commit are records shown or written to `--jsonl`: what was shown
is stored.

Incidents: each batch of stream events goes through the IncidentTable as it
leaves the StreamTable, so the incidents (and silences) it finds sit among
their records and are committed in the same transaction; after the commit
they go to the AlertManager's queue (its own thread: a slow webhook never
stalls the receiver); with several workers they go to the supervisor's
AlertManager instead, which groups across workers. The loop also wakes for
the detectors' deadlines (reports that stopped arriving, hosts gone silent).

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
from netconsole.collector._budget import BEHIND_FILL, HOLD, Budgets
from netconsole.collector._config import ConfigError, ListenConfig, reloaded
from netconsole.collector._errors import ListenError
from netconsole.collector._express import Express
from netconsole.collector._express import available as express_available
from netconsole.collector._live import LiveView
from netconsole.collector._metrics import Counters
from netconsole.collector._sockets import (
    BatchReceiver,
    Bound,
    kernel_drops,
    open_udp,
    queue_state,
)
from netconsole.collector._spool import BatchWriter, Item
from netconsole.incidents import DetectorConfig, Incident, IncidentTable, Output, Silence
from netconsole.incidents._patterns import TRIGGER_BYTES
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
from netconsole.stream import Record, Sender, StreamTable

if TYPE_CHECKING:
    from netconsole.collector._lane import Receiver

# Events in one transaction at most; a burst is written in several.
MAX_BATCH = 5000
# Datagrams taken per wake-up before the loop looks at its timers again.
RECV_BUDGET = 4096
RETENTION_EVERY = 60.0
# A sender's stream state is saved at most this long after it changed (and
# at shutdown), not with every batch: saving 100,000 states a second cost a
# fifth of the receiver's time. A restart after `kill -9` replays the records
# stored since (SQLiteStore.resume_stream), so no gap or reboot is invented.
STATE_EVERY = 30.0
GC_THRESHOLD = 50_000
BURST_SECONDS = 1.0
SHED_RUN = 256
"""What a receive buffer of shed records counts against RECV_BUDGET (the C batch)."""
"""A sender's budget (`sender_budget` records/s) saves up to this many seconds' worth."""


class Worker:
    """A receiver process's state; `run()` is its loop."""

    def __init__(self, cfg: ListenConfig, *, index: int = 0,
                 report: Callable[[dict[str, Any]], None] | None = None,
                 config_loader: Callable[[], ListenConfig] | None = None,
                 sink: RecordSink | None = None,
                 alerts_out: Callable[[list[Any]], None] | None = None) -> None:
        self.cfg = cfg
        self.index = index
        self.report = report
        self.config_loader = config_loader
        self.counters = Counters()
        self.table = StreamTable(resume=self._resumed)
        self.budgets = Budgets(cfg.sender_budget, cfg.sender_budget * BURST_SECONDS)
        # Datagrams shed per sender since the last batch (collector/_budget.py).
        self._shed: dict[Sender, int] = {}
        self._behind_until = 0.0  # budgets apply until then (the all-Python receive)
        self._drops: dict[int, int] = {}  # socket fd -> the kernel's drop count last seen
        self.sockets: list[Bound] = []
        self.stopping = False
        self._reload = False
        self.sink = sink
        self._resume: set[Sender] = set()
        self._allow: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._allowed: dict[str, bool] = {}
        self._jsonl: IO[str] | None = None
        self._live: LiveView | None = None
        self._pending: list[Item] = []
        self._writer: BatchWriter | None = None  # made at the first flush (collector/_spool.py)
        self.exit_status = 0  # 1 when records were lost (neither stored nor spooled)
        # Senders whose state changed since it was saved, with when it first did
        # (insertion order is that order, so the due ones are at the front).
        self._dirty: dict[Sender, float] = {}
        self.incidents = IncidentTable(DetectorConfig(quiet_after=cfg.silent_after))
        self.alerts: AlertManager | None = None
        # With several workers the supervisor alerts for all of them (grouping
        # by fingerprint must see every host): this worker only hands over.
        self._alerts_out = alerts_out
        self._opened = False
        self._rule_error: str | None = None
        # The C express lane (collector/_express.py), when built (set in `open`).
        self.express: Express | None = None
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
        if express_available():
            self.express = Express(self.table, self.incidents, self.sink)
            self.table.before_evict = self.express.sync_all
            self.table.evicted = self.express.drop
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
        if self.express is not None:
            self.express.drop_all()  # the allow list may have changed
        self.cfg = cfg
        self._allow = allow
        self._allowed = {}
        if self._jsonl is not None and self._jsonl is not sys.stdout:
            self._jsonl.close()
        self._jsonl = jsonl
        self._live = None if (cfg.quiet or cfg.jsonl == "-") else LiveView()
        if rules is not None:
            self.alerts = with_rules(self.alerts, rules, start=self._opened)  # open() starts it

    def _is_allowed(self, host: str) -> bool:
        ok = self._allowed.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                ok = False
            else:
                ok = any(ip in net for net in self._allow)
            if len(self._allowed) > 100_000:
                self._allowed.clear()
            self._allowed[host] = ok
        return ok

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
        poller = select.poll()
        receivers: dict[int, Callable[[float], None]] = {}
        for b in self.sockets:
            fd = b.sock.fileno()
            poller.register(fd, select.POLLIN)
            if self.express is not None:
                receivers[fd] = functools.partial(
                    self._receive_express, self.express.receiver(fd, b.port, self.budgets),
                    b.port)
            else:
                receivers[fd] = functools.partial(self._receive, BatchReceiver(b.sock), b.port)
        next_flush = time.time() + self.cfg.batch_interval
        next_report = time.time() + 1.0
        next_retention = time.time() + 5.0
        purged = 0  # records deleted so far by a retention of several passes
        while not self.stopping:
            now = time.time()
            deadline = self.table.next_deadline()
            incident_deadline = self.incidents.next_deadline()
            waiting = self._pending or (self._writer is not None and self._writer.holding)
            wake = min(next_flush if waiting else now + 1.0, next_report,
                       deadline if deadline is not None else now + 1.0,
                       incident_deadline if incident_deadline is not None else now + 1.0)
            try:
                ready = poller.poll(max(0.0, wake - now) * 1000)
            except InterruptedError:
                ready = []
            if self._reload:  # before receiving: what arrives now meets the new rules
                self._reload = False
                self._reload_config()
                self.budgets = Budgets(self.cfg.sender_budget,
                                       self.cfg.sender_budget * BURST_SECONDS)
                if self.express is not None:
                    self.express.budget(self.budgets)
            now = time.time()
            for fd, _ in ready:
                receivers[fd](now)
            deadline = self.table.next_deadline()
            if deadline is not None and deadline <= now:
                self.table.expire(now)
            events = self.table.events()
            if events and self.express is not None:
                self.express.note_reboots(events)  # a reboot decided by a timer
            self._pending.extend(self.incidents.process(events, now, open_reports=False))
            incident_deadline = self.incidents.next_deadline()
            if incident_deadline is not None and incident_deadline <= now:
                decided = self.incidents.expire(now)
                self._pending.extend(decided)
                if self.express is not None:
                    for event in decided:  # a silence: its end must be seen record by record
                        self.express.drop(event.sender)
            # Held records (the store failing) are retried at flushes even when idle.
            waiting = self._pending or (self._writer is not None and self._writer.holding)
            if waiting and (now >= next_flush or len(self._pending) >= MAX_BATCH):
                self.flush()
                next_flush = now + self.cfg.batch_interval
            elif not waiting:
                next_flush = now + self.cfg.batch_interval
            if now >= next_report:
                self._send_report()
                next_report = now + 1.0
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
        c = self.counters
        taken = 0
        while taken < RECV_BUDGET:
            batch = receiver.receive()
            if not batch:
                return
            taken += len(batch)
            c.datagrams += len(batch)
            if len(batch) == receiver.batch and self._in_danger(receiver.sock):
                self._behind_until = now + HOLD  # more waiting, and the socket in danger
            behind = now < self._behind_until
            for payload, host, port, truncated in batch:
                c.bytes += len(payload)
                self._ordinary(payload, host, port, truncated, local_port, now, behind)
        if now >= self._behind_until:
            self.budgets.forget(now)

    def _ordinary(self, payload: bytes, host: str, port: int, truncated: bool,
                  local_port: int, now: float, behind: bool) -> Sender | None:
        """One datagram through the Python path: the sender it was fed to, or
        None when it was rejected (not allowed, too large) or shed (`behind`:
        the receiver is, and the sender is over its budget)."""
        if self._allow and not self._is_allowed(host):
            self.counters.rejected["not_allowed"] += 1
            return None
        if truncated:
            self.counters.rejected["too_large"] += 1
            return None
        sender = Sender(host=host, port=port, local_port=local_port)
        budgets = self.budgets
        if ((behind or budgets.noisy(sender, now)) and not budgets.admit(sender, now)
                and not self._crash(sender, payload)):
            self._shed[sender] = self._shed.get(sender, 0) + 1
            self.counters.shed += 1
            return None
        self.table.feed(sender, payload, now)
        if sender not in self._dirty:
            self._dirty[sender] = now
        return sender

    def _in_danger(self, sock: socket.socket) -> bool:
        """The socket's queue past BEHIND_FILL, or the kernel dropped on it since last time."""
        state = queue_state(sock)
        fd = sock.fileno()
        dropped = state.drops != self._drops.get(fd, 0)
        self._drops[fd] = state.drops
        return dropped or state.fill > BEHIND_FILL

    def _crash(self, sender: Sender, payload: bytes) -> bool:
        """Never shed: a report's first line, and the rest of an open report."""
        return TRIGGER_BYTES.search(payload) is not None or self.incidents.busy(sender)

    def _receive_express(self, rx: Receiver, local_port: int, now: float) -> None:
        """`_receive` with the express lane: the C receiver turns the common
        records into store rows itself and hands out the rest, in order."""
        express, c, pending = self.express, self.counters, self._pending
        assert express is not None
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
                pending.append(PrebuiltRecords(item))
                continue
            taken += 1
            payload, host, port, truncated, key, lane = item
            if lane is not None:
                counted = express.retire(lane, now)
                if counted is not None:
                    pending.append(counted)
            sender = self._ordinary(payload, host, port, truncated, local_port, now,
                                    now < rx.behind_until)
            if sender is None:
                continue  # rejected; a lane it had reopens with its next datagram
            events = self.table.events()
            if events:
                pending.extend(self.incidents.process(events, now, open_reports=False))
            express.note_reboots(events)
            express.settle(sender, key, lane)
        datagrams, size = rx.counts()
        c.datagrams += datagrams
        c.bytes += size
        for lane in rx.shedding():  # what C shed: in-order records, the stream moved on
            self._shed[lane.sender] = self._shed.get(lane.sender, 0) + lane.shed
            c.shed += lane.shed
            lane.shed = 0
        if now >= rx.behind_until:
            self.budgets.forget(now)
        touched = rx.touched()
        if touched:
            express.took(touched, now)
            dirty = self._dirty
            for lane in touched:
                if lane.sender not in dirty:
                    dirty[lane.sender] = now

    def _resumed(self, sender: Sender) -> tuple[dict[str, Any], list[Record]] | None:
        """The table's `resume`: a sender the store knew at start, back after a
        restart, continues from its saved state and the records stored since."""
        if sender not in self._resume:
            return None
        self._resume.discard(sender)
        assert self.sink is not None
        return self.sink.resume_stream(sender)

    def flush(self, *, final: bool = False) -> None:
        """Commit what is pending, after what a failing store left held, then show it.

        `BatchWriter` sets aside an event the store refuses and holds the rest
        while the store cannot write (collector/_spool.py); what it commits is
        shown. `final`: at shutdown, try the store now whatever its backoff.
        """
        if self.express is not None:
            counted = self.express.counted()
            if counted is not None:
                self._pending.append(counted)
        self._pending.extend(self.incidents.open_reports())  # once per batch, not per record
        if self._shed:  # one count per noisy sender and batch, not one event per datagram
            at = time.time()
            self._pending.extend(Shed(sender=s, at=at, count=n) for s, n in self._shed.items())
            self._shed = {}
        events, self._pending = self._pending, []
        writer = self._writer
        if not events and (writer is None or not writer.holding):
            return
        if writer is None:
            assert self.sink is not None
            # The spool is named after the database (a ClickHouse store's `path` is local).
            db: Path | None = getattr(self.sink, "path", None)
            writer = self._writer = BatchWriter(self.sink, self.counters, db=db,
                                                piece=MAX_BATCH)
        # While records are held the states wait too: saved ahead of their
        # records, they would hide those from the replay after a restart.
        states = self._due_states(time.time()) if final or not writer.holding else {}
        t0 = time.perf_counter()
        written = writer.write(events, states, final=final)
        self.counters.store_seconds += time.perf_counter() - t0
        if states and not written.states_saved:
            self._dirty = {**dict.fromkeys(states, 0.0), **self._dirty}  # due again, first
        if self.express is not None and not writer.holding:
            self.express.after_commit()  # every boot and host row is committed now
        for batch in written.committed:
            self._show_committed(batch)

    def _show_committed(self, events: list[Item]) -> None:
        """Count, alert, write to `--jsonl` and show one committed batch."""
        c = self.counters
        unshown = 0  # express records counted here, not as Record events below
        outputs: list[Output | Shed]
        if self.express is not None:
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
        assert self.express is not None
        out: list[Output | Shed] = []
        for e in events:
            if isinstance(e, PrebuiltRecords):
                out.extend(self.express.records(e))
            else:
                out.append(e)
        return out

    def _due_states(self, now: float) -> dict[Sender, dict[str, Any]]:
        """Snapshots of the senders whose state changed more than STATE_EVERY ago."""
        due: dict[Sender, dict[str, Any]] = {}
        taken: list[Sender] = []
        streams = self.table.streams
        lanes = self.express.of if self.express is not None else {}
        for sender, since in self._dirty.items():
            if since > now - STATE_EVERY:
                break
            taken.append(sender)
            lane = lanes.get(sender)
            if lane is not None and lane.active:
                assert self.express is not None
                self.express.sync(lane)
            stream = streams.get(sender)
            if stream is not None:
                due[sender] = stream.snapshot()
        for sender in taken:
            del self._dirty[sender]
        return due

    def close(self) -> None:
        now = time.time()
        if self.express is not None:
            self.express.sync_all()
        self.table.flush(now)
        self._pending.extend(self.incidents.process(self.table.events(), now,
                                                    open_reports=False))
        self._dirty = dict.fromkeys([*self._dirty, *self.table.streams], 0.0)  # all due now
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
        c.hosts = len(self.table.streams)
        c.buffered_bytes = self.table.buffered_bytes
        if self.alerts is not None:  # one worker: it alerts itself
            c.alert_outcomes = Counter(self.alerts.stats)
        if self.outputs:
            c.count_outputs({o.name: o.stats() for o in self.outputs})
        if self.report is not None:
            self.report({"worker": self.index, "pid": os.getpid(), **c.as_dict()})

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
