"""Counters of one receiver process, and their sum over all of them.

Every datagram the sockets delivered ends up in exactly one of: a record
(possibly with others), a duplicate, `rejected{reason}`, or `shed` (a noisy
sender's excess while the receiver was behind: collector/_budget.py). Workers send
their counters to the supervisor once a second; `/metrics` shows the sum in
Prometheus format through prometheus-client.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from netconsole.incidents import Incident, Phase, Silence, SilencePhase
from netconsole.stream import Tally

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the store commit latency histogram."""


@dataclass(slots=True)
class Counters(Tally):
    """A worker's tally of events plus what only the receiver sees."""

    datagrams: int = 0
    bytes: int = 0
    kernel_drops: int = 0
    hosts: int = 0
    buffered_bytes: int = 0
    store_batches: int = 0
    store_seconds: float = 0.0
    store_errors: int = 0
    stored_records: int = 0
    # A store that fails (collector/_spool.py): events it refused, set aside;
    # records held for it now (gauges); records neither it nor the spool took.
    quarantined: int = 0
    held_records: int = 0
    spooled_records: int = 0
    lost_records: int = 0
    express_records: int = 0  # of the stored records, those the C express lane took
    shed: int = 0  # datagrams of senders over their budget while behind (_budget.py)
    incidents: Counter[str] = field(default_factory=Counter)
    silences: int = 0
    # Commits by how long they took: the count per bucket (upper bound, seconds,
    # as a string: the snapshot crosses a process queue), not yet cumulative.
    store_latency: Counter[str] = field(default_factory=Counter)
    alert_outcomes: Counter[str] = field(default_factory=Counter)  # sent, given_up, retried, …
    # --forward and --files (netconsole/outputs): per "OUTPUT OUTCOME" (sent, dropped,
    # replayed, reconnects; queued is a gauge). A URL has no space.
    output_counts: Counter[str] = field(default_factory=Counter)

    store_commit_seconds: float = 0.0

    def commit_took(self, seconds: float) -> None:
        self.store_commit_seconds += seconds
        for bound in LATENCY_BUCKETS:
            if seconds <= bound:
                self.store_latency[repr(bound)] += 1
                return
        self.store_latency["+Inf"] += 1

    def count_outputs(self, stats: Mapping[str, Any]) -> None:
        """The outputs' counters now (each an `outputs.OutputStats`), by output name."""
        self.output_counts = Counter({
            f"{name} {outcome}": getattr(s, outcome)
            for name, s in stats.items()
            for outcome in ("sent", "dropped", "replayed", "reconnects", "queued")})

    def count_incidents(self, outputs: Iterable[object]) -> None:
        """Closed incidents by kind, and hosts gone silent."""
        for o in outputs:
            if isinstance(o, Incident) and o.phase is Phase.CLOSED:
                self.incidents[o.kind.value] += 1
            elif isinstance(o, Silence) and o.phase is SilencePhase.STARTED:
                self.silences += 1

    def as_dict(self) -> dict[str, Any]:
        return {f.name: (dict(v) if isinstance(v, Counter) else v)
                for f in fields(self) for v in (getattr(self, f.name),)}


def total(snapshots: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum worker snapshots (Counter-valued keys are summed per label)."""
    out: dict[str, Any] = {}
    for snap in snapshots:
        for k, v in snap.items():
            if isinstance(v, dict):
                c = out.setdefault(k, Counter())
                c.update(v)
            else:
                out[k] = out.get(k, 0) + v
    return out


class WorkerMetrics(Collector):
    """A prometheus-client collector over the latest snapshot of every worker."""

    def __init__(self) -> None:
        self.latest: dict[int, dict[str, Any]] = {}
        # The supervisor's own alert manager (several workers), when it has one.
        self.alert_stats: Callable[[], Mapping[str, int]] = dict

    def collect(self) -> Iterator[Metric]:
        t = total(self.latest.values())
        simple = [
            ("datagrams", "UDP datagrams received", "datagrams"),
            ("bytes", "UDP payload bytes received", "bytes"),
            ("records", "records reassembled", "records"),
            ("stored_records", "records committed to the store", "stored_records"),
            ("express_records", "stored records the C express lane took whole",
             "express_records"),
            ("duplicates", "records or fragments seen twice", "duplicates"),
            ("incomplete", "records emitted without all their fragments", "incomplete"),
            ("reboots", "sender reboots detected", "reboots"),
            ("shed_datagrams", "datagrams shed: their sender was over its budget while the "
             "receiver was behind", "shed"),
            ("store_batches", "store transactions committed", "store_batches"),
            ("store_errors", "store transactions that failed", "store_errors"),
            ("quarantined_events", "events the store refused, set aside so the rest is stored",
             "quarantined"),
            ("lost_records", "records neither the store nor the spool could take",
             "lost_records"),
        ]
        for name, doc, key in simple:
            yield CounterMetricFamily(f"netconsole_{name}", doc, value=t.get(key, 0))
        rejected = CounterMetricFamily("netconsole_rejected_datagrams",
                                       "datagrams that became no record, by reason",
                                       labels=["reason"])
        for reason, n in sorted(t.get("rejected", {}).items()):
            rejected.add_metric([reason], n)
        yield rejected
        gaps = CounterMetricFamily("netconsole_lost", "numbers lost by kind: seq, msgid, dropped",
                                   labels=["kind"])
        for kind, n in sorted(t.get("gaps", {}).items()):
            gaps.add_metric([kind], n)
        yield gaps
        incidents = CounterMetricFamily("netconsole_incidents", "incidents closed, by kind",
                                        labels=["kind"])
        for kind, n in sorted(t.get("incidents", {}).items()):
            incidents.add_metric([kind], n)
        yield incidents
        yield CounterMetricFamily("netconsole_silences", "hosts that went silent",
                                  value=t.get("silences", 0))
        yield CounterMetricFamily("netconsole_kernel_drops",
                                  "datagrams the kernel dropped on our sockets (buffer full)",
                                  value=t.get("kernel_drops", 0))
        yield CounterMetricFamily("netconsole_store_seconds",
                                  "time spent committing batches", value=t.get("store_seconds", 0))
        per_bucket = t.get("store_latency", {})
        buckets, seen = [], 0.0
        for bound in [*map(repr, LATENCY_BUCKETS), "+Inf"]:
            seen += per_bucket.get(bound, 0)
            buckets.append((bound, seen))
        yield HistogramMetricFamily(
            "netconsole_store_commit_seconds", "how long each store transaction took",
            buckets=buckets, sum_value=t.get("store_commit_seconds", 0.0))
        alerts = CounterMetricFamily(
            "netconsole_alerts", "alert messages by outcome: sent, given_up (every retry "
            "failed), retried, dropped (the alert queue was full)", labels=["outcome"])
        sent = {"sent": 0, "given_up": 0, "retried": 0, "dropped": 0}
        sent.update(t.get("alert_outcomes", {}))
        sent.update(self.alert_stats())
        for outcome, n in sorted(sent.items()):
            alerts.add_metric([outcome], n)
        yield alerts
        outputs = t.get("output_counts", {})
        records = CounterMetricFamily(
            "netconsole_output_records", "records each output (--forward URL, files) handed on "
            "(sent), gave up on (dropped: queue full, server gone at shutdown, disk error) or sent "
            "again after a TCP connection broke (replayed)", labels=["output", "outcome"])
        reconnects = CounterMetricFamily(
            "netconsole_output_reconnects", "TCP connections to a syslog server made again after "
            "one broke or failed", labels=["output"])
        queued = GaugeMetricFamily("netconsole_output_queued",
                                   "records waiting in a syslog forwarder's queue",
                                   labels=["output"])
        for key, n in sorted(outputs.items()):
            name, _, outcome = key.rpartition(" ")
            if outcome == "reconnects":
                reconnects.add_metric([name], n)
            elif outcome == "queued":
                queued.add_metric([name], n)
            else:
                records.add_metric([name, outcome], n)
        yield records
        yield reconnects
        yield queued
        yield GaugeMetricFamily("netconsole_held_records",
                                "records waiting for the store to write again (memory and spool)",
                                value=t.get("held_records", 0))
        yield GaugeMetricFamily("netconsole_spooled_records",
                                "of the held records, those spilled to the spool on disk",
                                value=t.get("spooled_records", 0))
        yield GaugeMetricFamily("netconsole_hosts", "senders with stream state",
                                value=t.get("hosts", 0))
        yield GaugeMetricFamily("netconsole_reassembly_bytes", "bytes held for reassembly",
                                value=t.get("buffered_bytes", 0))
        yield GaugeMetricFamily("netconsole_workers", "receiver processes reporting",
                                value=len(self.latest))
