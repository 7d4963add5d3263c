"""Prometheus text exposition (format 0.0.4), written by hand: counters, gauges and histograms."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

Labels = tuple[tuple[str, str], ...]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: Iterable[tuple[str, str]] = ()) -> str:
    items = list(labels) + list(extra)
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _num(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(k)} {_num(v)}" for k, v in sorted(self.values.items())]
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help_text
        self.buckets = tuple(buckets)
        self.series: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, labels: Labels, value: float) -> None:
        counts, total = self.series.setdefault(labels, ([0] * (len(self.buckets) + 1), [0.0]))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        counts[-1] += 1
        total[0] += value

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for labels, (counts, total) in sorted(self.series.items()):
            for bound, count in zip(self.buckets + (float("inf"),), counts):
                lines.append(f"{self.name}_bucket{_labels(labels, [('le', _num(bound))])} {count}")
            lines.append(f"{self.name}_sum{_labels(labels)} {_num(total[0])}")
            lines.append(f"{self.name}_count{_labels(labels)} {counts[-1]}")
        return lines


def gauge(name: str, help_text: str, values: Iterable[tuple[Labels, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    lines += [f"{name}{_labels(k)} {_num(v)}" for k, v in values]
    return lines


def counter_lines(name: str, help_text: str, values: Iterable[tuple[Labels, float]]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    lines += [f"{name}{_labels(k)} {_num(v)}" for k, v in values]
    return lines


class Metrics:
    """The server's HTTP-level metrics; the scheduler's token counters are rendered beside them."""

    ROUTES = (
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/models",
        "/health",
        "/metrics",
        "/openapi.json",
        "/docs",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = Counter("cactus_requests_total", "HTTP requests by route, method and status.")
        self.latency = Histogram(
            "cactus_request_duration_seconds",
            "Time from request to the end of the response.",
            LATENCY_BUCKETS,
        )
        self.ttft = Histogram(
            "cactus_time_to_first_token_seconds",
            "Time from request arrival to the first generated token (queueing included).",
            TTFT_BUCKETS,
        )
        self.queue_wait = Histogram(
            "cactus_queue_wait_seconds", "Time a request waited for a model worker.", TTFT_BUCKETS
        )

    def route(self, path: str) -> str:
        return path if path in self.ROUTES else "other"

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        route = self.route(path)
        with self._lock:
            self.requests.inc((("route", route), ("method", method), ("status", str(status))))
            self.latency.observe((("route", route),), seconds)

    def observe_job(self, model: str, ttft: float, queue_wait: float) -> None:
        with self._lock:
            if ttft >= 0:
                self.ttft.observe((("model", model),), ttft)
            if queue_wait >= 0:
                self.queue_wait.observe((("model", model),), queue_wait)

    def render(self, extra: Iterable[str] = ()) -> str:
        with self._lock:
            lines = (
                self.requests.render() + self.latency.render() + self.ttft.render() + self.queue_wait.render()
            )
        return "\n".join(lines + list(extra)) + "\n"
