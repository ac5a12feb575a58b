"""The forwarder's sans-IO core: records in, per-target queues out, a resume point.

Driven by three calls and no clock of its own:

* `offer(record)`: one `/dev/kmsg` record, in seq order; the policy decides
  (level, rate limit, crash window) and an accepted record is encoded and
  queued on every target, each with its own msgid;
* `offer_pstore(dump)`: every record of a pstore dump, always accepted,
  marked ` pstore=<name>` ` boot=previous`;
* `flush(send, now)`: hand queued datagrams to `send`.

`done_seq()` is the resume point for the state file: the highest seq such
that every record at or below it has been dealt with on every target (sent,
filtered, or dropped from a full backlog). A record still queued anywhere
holds it back, so after a restart it is sent rather than lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from netconsole.forward.kmsg import KmsgRecord
from netconsole.forward.policy import Policy, Verdict
from netconsole.forward.pstore import PstoreDump
from netconsole.forward.sender import EncodeConfig, Send, Target, encode, outgoing

TasknameOf = Callable[[str], bytes | None]


def _no_taskname(caller: str) -> bytes | None:
    return None


class Forwarder:
    """Policy + encoding + per-target backlogs; see the module docstring.

    Args:
        targets: one per receiver.
        config: what every record carries (release, labels, sysdata).
        policy: the level filter and rate limit.
        taskname_of: `caller` (`T<pid>`) -> the task's name, for the
            `taskname` sysdata; the default knows none.
    """

    __slots__ = ("_last_seq", "_taskname_of", "config", "policy", "targets", "verdicts")

    def __init__(self, targets: list[Target], config: EncodeConfig, policy: Policy,
                 taskname_of: TasknameOf = _no_taskname) -> None:
        if not targets:
            raise ValueError("at least one target")
        self.targets = targets
        self.config = config
        self.policy = policy
        self.verdicts: Counter[Verdict] = Counter()
        self._taskname_of = taskname_of
        self._last_seq: int | None = None

    def offer(self, rec: KmsgRecord) -> Verdict:
        """Judge one `/dev/kmsg` record and queue it on every target if it passes."""
        verdict = self.policy.judge(rec)
        self.verdicts[verdict] += 1
        self._last_seq = rec.seq
        if verdict in (Verdict.SEND, Verdict.CRASH):
            taskname = None
            if "taskname" in self.config.sysdata and rec.caller and rec.caller[0] == "T":
                taskname = self._taskname_of(rec.caller)
            with_msgid = "msgid" in self.config.sysdata
            for t in self.targets:
                out = outgoing(rec, self.config, taskname=taskname,
                               msgid=t.next_msgid() if with_msgid else None)
                t.queue(rec.seq, encode(out))
        return verdict

    def offer_pstore(self, dump: PstoreDump) -> int:
        """Queue every record of `dump` on every target; returns how many records."""
        for rec in dump.records:
            out = outgoing(rec, self.config, msgid=None, pstore=dump.name)
            datagrams = encode(out)
            for t in self.targets:
                t.queue(None, datagrams, tag=dump.digest)
        return len(dump.records)

    def flush(self, send: Send, now: float) -> bool:
        """Send what every target has queued; True when all backlogs are empty."""
        done = True
        for t in self.targets:
            done = t.flush(send, now) and done
        return done

    def pending_tags(self) -> set[str]:
        """pstore dumps (by digest) that still have records queued somewhere."""
        out: set[str] = set()
        for t in self.targets:
            out |= t.backlog.tags()
        return out

    def queued(self) -> int:
        return sum(len(t.backlog) for t in self.targets)

    def next_retry(self) -> float | None:
        """When a target with queued records will try again (caller's clock)."""
        times = [t.retry_at for t in self.targets if len(t.backlog)]
        return min(times) if times else None

    def done_seq(self) -> int | None:
        """The resume point: see the module docstring. None before any record."""
        if self._last_seq is None:
            return None
        done = self._last_seq
        for t in self.targets:
            first = t.backlog.first_seq()
            if first is not None:
                done = min(done, first - 1)
        return done if done >= 0 else None
