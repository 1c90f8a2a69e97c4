"""A tiny Prometheus text-format registry for the gateway's ``/metrics``.

Why our own: ``prometheus_client`` is not installed here (``pip show prometheus_client`` finds nothing) and
the gateway needs three metric kinds with labels, rendered as text; ~80 lines beat a new dependency.

>>> r = Registry(prefix="civiq_gw_")
>>> m = r.counter("messages_total", "MQTT messages received", ["leaf"])
>>> m.inc(leaf="event"); m.inc(2, leaf="event")
>>> print(r.render().splitlines()[2])
civiq_gw_messages_total{leaf="event"} 3.0
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

LabelKey = tuple[str, ...]


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.labels = name, help, tuple(labels)
        self._values: dict[LabelKey, float] = {}
        self._lock = threading.Lock()
        self._fn: Callable[[], dict[LabelKey, float] | float] | None = None

    def _key(self, labels: dict[str, str]) -> LabelKey:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labels)

    def get(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def total(self) -> float:
        """Sum over every label set (handy in tests and summaries)."""
        with self._lock:
            return sum(self._values.values())

    def samples(self) -> list[tuple[str, LabelKey, float]]:
        if self._fn is not None:
            got = self._fn()
            values = got if isinstance(got, dict) else {(): float(got)}
        else:
            with self._lock:
                values = dict(self._values)
        return [(self.name, k, v) for k, v in sorted(values.items())]


class Counter(_Metric):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def set_function(self, fn: Callable[[], dict[LabelKey, float] | float]) -> None:
        """Compute the value(s) at render time: a number, or ``{label-values tuple: number}``."""
        self._fn = fn


class Summary(_Metric):
    """Count and sum of observations (e.g. seconds per store write); rendered as ``_count``/``_sum``."""

    kind = "summary"

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key + ("count",)] = self._values.get(key + ("count",), 0.0) + 1
            self._values[key + ("sum",)] = self._values.get(key + ("sum",), 0.0) + value

    def count(self, **labels: str) -> float:
        key = self._key(labels)
        with self._lock:
            return self._values.get(key + ("count",), 0.0)

    def sum(self, **labels: str) -> float:
        key = self._key(labels)
        with self._lock:
            return self._values.get(key + ("sum",), 0.0)

    def samples(self) -> list[tuple[str, LabelKey, float]]:
        with self._lock:
            return [(f"{self.name}_{k[-1]}", k[:-1], v) for k, v in sorted(self._values.items())]


class Registry:
    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def _add(self, metric: _Metric) -> _Metric:
        with self._lock:
            existing = self._metrics.get(metric.name)
            if existing is not None:
                if type(existing) is not type(metric) or existing.labels != metric.labels:
                    raise ValueError(f"metric {metric.name} already registered differently")
                return existing
            self._metrics[metric.name] = metric
            return metric

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(self.prefix + name, help, labels))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(self.prefix + name, help, labels))  # type: ignore[return-value]

    def summary(self, name: str, help: str, labels: Sequence[str] = ()) -> Summary:
        return self._add(Summary(self.prefix + name, help, labels))  # type: ignore[return-value]

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        out: list[str] = []
        with self._lock:
            metrics = list(self._metrics.values())
        for m in metrics:
            out.append(f"# HELP {m.name} {m.help}")
            out.append(f"# TYPE {m.name} {m.kind}")
            try:
                samples = m.samples()
            except Exception:  # noqa: BLE001 - a broken gauge function must not break /metrics
                samples = []
            for name, key, value in samples:
                if key:
                    lab = ",".join(f'{n}="{_escape(v)}"' for n, v in zip(m.labels, key, strict=False))
                    out.append(f"{name}{{{lab}}} {_fmt(value)}")
                else:
                    out.append(f"{name} {_fmt(value)}")
        return "\n".join(out) + "\n"


class GatewayMetrics:
    """The gateway's metrics, in one registry. The web layer serves ``render()`` on ``/metrics``;
    other parts (alerts, balance) may add their own with ``registry.counter(...)``."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = r = registry or Registry(prefix="civiq_gw_")
        self.messages = r.counter("messages_total", "Valid MQTT messages received, by topic leaf", ["leaf"])
        self.malformed = r.counter("malformed_total", "Messages dropped as malformed, by reason", ["reason"])
        self.duplicates = r.counter("duplicates_total", "Events already stored (re-sent), ignored")
        self.seq_conflicts = r.counter(
            "seq_conflicts_total", "Re-used (node, seq) with different content (an edge that lost its log?)")
        self.gaps = r.counter("gaps_total", "Sequence gaps opened in a node's event stream")
        self.rebirths = r.counter("rebirths_sent_total", "Rebirth commands sent to nodes with a gap")
        self.commands = r.counter("commands_sent_total", "Commands published to edges, by name", ["name"])
        self.store_write = r.summary("store_write_seconds", "Time spent committing one batch to SQLite")
        self.batch_size = r.summary("store_batch_messages", "Messages per committed batch")
        self.queue_depth = r.gauge("ingest_queue_depth", "Validated messages waiting for the writer")
        self.connected = r.gauge("mqtt_connected", "1 while the gateway is connected to the broker")
        self.influx_pending = r.gauge("influx_spool_pending", "Points spooled for InfluxDB, not yet sent")
        self.influx_sent = r.gauge("influx_sent_points", "Points written to InfluxDB since start")
        self.influx_failed = r.gauge("influx_failed_attempts", "Failed InfluxDB write attempts since start")
        self.nodes = r.gauge("nodes", "Known nodes by status", ["status"])
        self.ingest_lag = r.gauge("ingest_lag_seconds", "Age of the newest own probe the writer has applied: "
                                  "how far behind real time the silence watch sees (NaN before the first)")

    def render(self) -> str:
        return self.registry.render()
