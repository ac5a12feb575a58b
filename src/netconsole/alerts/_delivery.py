"""AlertManager: the I/O side of alerts, on a thread of its own.

The receiver calls `submit(events)` after each committed batch: it puts the
closed incidents and started silences on a bounded queue and returns at once
(a full queue drops and counts, it never waits). The manager's thread groups
them (`Grouper`), sends each due message to the rule's webhook and/or
command, and retries a failed delivery with exponential backoff
(`backoff`, 2x, 4x, ... up to `attempts` tries), logging each failure. One
slow or dead endpoint delays only other alerts, never the receiver.
"""

from __future__ import annotations

import heapq
import itertools
import json
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from netconsole.alerts._grouping import Grouper, alertable
from netconsole.alerts._message import Alert
from netconsole.alerts._rules import AlertRule
from netconsole.incidents import Incident, Silence

QUEUE_SIZE = 10_000
"""Events waiting for the alert thread; a flood beyond this is dropped and counted
(the incidents are stored all the same)."""


def _stderr(message: str) -> None:
    print(f"netconsole listen: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Job:
    alert: Alert
    action: str  # "webhook" or "command"
    attempt: int = 0


_STOP = object()


class AlertManager:
    """Rules → grouped messages → webhooks and commands, off the receiver's thread."""

    def __init__(self, rules: tuple[AlertRule, ...], *, log: Callable[[str], None] = _stderr,
                 attempts: int = 5, backoff: float = 1.0, timeout: float = 5.0,
                 queue_size: int = QUEUE_SIZE, clock: Callable[[], float] = time.time) -> None:
        self.grouper = Grouper(rules)
        self.log = log
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._retries: list[tuple[float, int, _Job]] = []
        self._tiebreak = itertools.count()
        self._thread = threading.Thread(target=self._run, name="netconsole-alerts", daemon=True)
        self._lock = threading.Lock()
        self.sent: list[Alert] = []  # the last messages delivered (bounded), for tests/metrics

    @property
    def rules(self) -> tuple[AlertRule, ...]:
        return self.grouper.rules

    def start(self) -> AlertManager:
        self._thread.start()
        return self

    def set_rules(self, rules: tuple[AlertRule, ...]) -> None:
        """New rules (SIGHUP); groups in progress keep the rule they started with."""
        self._put(("rules", rules))

    def submit(self, events: Iterable[object]) -> int:
        """Queue the alertable events of a committed batch; never blocks. Returns how many."""
        n = 0
        now = self.clock()
        for event in events:
            if alertable(event):
                self._put((now, event))
                n += 1
        return n

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.stats["dropped"] += 1
            if self.stats["dropped"] in (1, 10, 100) or self.stats["dropped"] % 1000 == 0:
                self.log(f"alert queue full: {self.stats['dropped']} events dropped")

    def close(self, timeout: float = 5.0) -> None:
        """Send what is waiting (groups still gathering are sent now), then stop.

        Retries still pending after `timeout` are given up and logged.
        """
        if not self._thread.is_alive():
            return
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            self.log("alert queue full at shutdown; alerts lost")
            return
        self._thread.join(timeout)

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while True:
            now = self.clock()
            wake = [t for t in (self.grouper.next_deadline(),
                                self._retries[0][0] if self._retries else None) if t is not None]
            wait = max(0.0, min(wake) - now) if wake else 1.0
            try:
                item = self._queue.get(timeout=min(wait, 1.0))
            except queue.Empty:
                item = None
            while item is not None:
                if item is _STOP:
                    stopping = True
                else:
                    self._take(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            now = self.clock()
            for alert in self.grouper.due(float("inf") if stopping else now):
                for action in ("webhook", "command"):
                    if getattr(alert.rule, action) is not None:
                        self._attempt(_Job(alert=alert, action=action))
            while self._retries and (self._retries[0][0] <= now or stopping):
                _, _, job = heapq.heappop(self._retries)
                if stopping:
                    self.stats["given_up"] += 1
                    self.log(f"alert {job.alert.rule.name!r}: {job.action} not delivered "
                             "(shutting down)")
                    continue
                self._attempt(job)
            if stopping:
                return

    def _take(self, item: object) -> None:
        if isinstance(item, tuple) and len(item) == 2 and item[0] == "rules":
            self.grouper.rules = item[1]
            return
        assert isinstance(item, tuple)
        at, event = item
        assert isinstance(event, (Incident, Silence))
        self.grouper.offer(event, at)

    def _attempt(self, job: _Job) -> None:
        try:
            self._deliver(job)
        except Exception as exc:  # any failure is retried, never raised into the loop
            attempt = job.attempt + 1
            if attempt >= self.attempts:
                self.stats["given_up"] += 1
                self.log(f"alert {job.alert.rule.name!r}: {job.action} failed {attempt} times, "
                         f"giving up: {exc}")
                return
            delay = self.backoff * 2 ** job.attempt
            self.stats["retried"] += 1
            self.log(f"alert {job.alert.rule.name!r}: {job.action} failed ({exc}); "
                     f"retry {attempt} in {delay:g}s")
            heapq.heappush(self._retries, (self.clock() + delay, next(self._tiebreak),
                                           _Job(alert=job.alert, action=job.action,
                                                attempt=attempt)))
            return
        self.stats["sent"] += 1
        with self._lock:
            self.sent.append(job.alert)
            del self.sent[:-100]

    def _deliver(self, job: _Job) -> None:
        body = json.dumps(job.alert.payload(), ensure_ascii=False).encode()
        rule = job.alert.rule
        if job.action == "webhook":
            assert rule.webhook is not None
            request = urllib.request.Request(
                rule.webhook, data=body, method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "netconsole"})
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                if not 200 <= response.status < 300:
                    raise OSError(f"HTTP {response.status}")
            return
        assert rule.command is not None
        # A shell, so a rule can be `mail -s crash oncall@example` or use a pipe; the
        # command comes from the operator's own configuration file.
        done = subprocess.run(rule.command, shell=True, input=body, capture_output=True,
                              timeout=max(self.timeout, 30.0), check=False)
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()[-200:]
            raise OSError(f"exit status {done.returncode}" + (f": {err}" if err else ""))


def with_rules(manager: AlertManager | None, rules: tuple[AlertRule, ...], *,
               start: bool) -> AlertManager | None:
    """The manager for `rules`: the running one given the new rules (SIGHUP;
    groups in progress keep theirs), a new one when the first rules appear
    (started if `start`), None while there are no rules and no manager."""
    if manager is not None:
        manager.set_rules(rules)
        return manager
    if not rules:
        return None
    manager = AlertManager(rules)
    return manager.start() if start else manager
