"""Service metrics in Prometheus' text exposition format (version 0.0.4).

A few counters, one histogram and gauges are all ``/metrics`` needs, so they are kept
here (thread-safe, per worker process) rather than pulling in a client library.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + body + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._hist: dict[Labels, list[float]] = {}  # per route: bucket counts + [sum, count]
        self._gauges: dict[str, Callable[[], float]] = {}
        self._help = {
            "arbx_http_requests_total": "HTTP requests by method, route and status code.",
            "arbx_webhook_deliveries_total": "Price webhooks by outcome.",
            "arbx_rate_limited_total": "Requests rejected by the rate limiter, by scope.",
            "arbx_auth_failures_total": "Requests rejected for a missing or wrong API key.",
            "arbx_events_published_total": "Events this worker published, by type.",
            "arbx_sse_connections_total": "SSE connections opened on this worker.",
        }

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._counters[name][key] += amount

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.inc("arbx_http_requests_total", method=method, route=route, status=str(status))
        key = (("route", route),)
        with self._lock:
            row = self._hist.setdefault(key, [0.0] * (len(LATENCY_BUCKETS) + 2))
            index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
            if index < len(LATENCY_BUCKETS):
                row[index] += 1
            row[-2] += seconds
            row[-1] += 1

    def gauge(self, name: str, read: Callable[[], float], help_text: str) -> None:
        self._gauges[name] = read
        self._help[name] = help_text

    def counter_value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    def counter_total(self, name: str) -> float:
        with self._lock:
            return sum(self._counters[name].values())

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self._counters.items()):
                lines.append(f"# HELP {name} {self._help.get(name, name)}")
                lines.append(f"# TYPE {name} counter")
                for labels, value in sorted(series.items()):
                    lines.append(f"{name}{_labels(labels)} {value:g}")
            name = "arbx_http_request_duration_seconds"
            lines.append(f"# HELP {name} Request latency by route.")
            lines.append(f"# TYPE {name} histogram")
            for labels, row in sorted(self._hist.items()):
                cumulative = 0.0
                for bound, count in zip(LATENCY_BUCKETS, row, strict=False):
                    cumulative += count
                    le = (*labels, ("le", f"{bound:g}"))
                    lines.append(f"{name}_bucket{_labels(le)} {cumulative:g}")
                lines.append(f"{name}_bucket{_labels((*labels, ('le', '+Inf')))} {row[-1]:g}")
                lines.append(f"{name}_sum{_labels(labels)} {row[-2]:.6f}")
                lines.append(f"{name}_count{_labels(labels)} {row[-1]:g}")
        for name, read in sorted(self._gauges.items()):
            lines.append(f"# HELP {name} {self._help.get(name, name)}")
            lines.append(f"# TYPE {name} gauge")
            try:
                lines.append(f"{name} {float(read()):g}")
            except Exception:  # a gauge must never break the scrape
                lines.append(f"{name} NaN")
        return "\n".join(lines) + "\n"
