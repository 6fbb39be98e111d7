"""Service metrics for ``/metrics``, kept by ``prometheus_client``.

Two modes, chosen by the library when it is first imported:

- **one process** (tests, ``arbx serve`` with one worker, an app embedded elsewhere): each
  :class:`Metrics` has a registry of its own, so apps created side by side in one process
  (tests do) count separately;
- **several worker processes** (``arbx serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR``
  before the workers start, or a deployment that sets it itself): every worker writes its
  samples to files in that directory and a scrape merges all of them, so ``/metrics`` and
  the request count of ``/api/metrics`` read the same whichever worker answers. Counters
  of a worker that died stay counted; its gauges stop counting. One ``Metrics`` (one
  app) per worker process: two in one process would write the same samples.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_DURATION = "arbx_http_request_duration_seconds"

# name -> (help, label names). Every counter the service increments is declared here.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "arbx_http_requests_total": (
        "HTTP requests by method, route and status code.",
        ("method", "route", "status"),
    ),
    "arbx_webhook_deliveries_total": ("Price webhooks by outcome.", ("outcome",)),
    "arbx_rate_limited_total": ("Requests rejected by the rate limiter, by scope.", ("scope",)),
    "arbx_auth_failures_total": ("Requests rejected for a missing or wrong API key.", ()),
    "arbx_events_published_total": ("Events the service published, by type.", ("type",)),
    "arbx_sse_connections_total": ("SSE connections opened.", ()),
}

# The ``_created`` series would appear in one mode and not the other (the multiprocess
# collector has none): leave them out so both modes expose the same series.
disable_created_metrics()

_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def multiprocess_dir() -> str | None:
    """The directory the workers share, if prometheus_client runs in multiprocess mode.

    The library decides when it is imported (``PROMETHEUS_MULTIPROC_DIR`` set then); a
    variable set later changes nothing, so both conditions are checked.
    """
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and getattr(values.ValueClass, "_multiprocess", False):
        return path
    if path:
        log.warning(
            "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported: "
            "metrics are this process's only"
        )
    return None


class Metrics:
    """Counters, the request-latency histogram and gauges of one app (one worker)."""

    def __init__(self) -> None:
        self._shared = multiprocess_dir()
        # In multiprocess mode samples live in the shared files and a scrape reads them
        # through a collector; metric objects must not also be in the scraped registry.
        self._registry = CollectorRegistry()
        owner = None if self._shared else self._registry
        self._counters = {
            name: Counter(name, help_text, labels, registry=owner)
            for name, (help_text, labels) in COUNTERS.items()
        }
        self._latency = Histogram(
            REQUEST_DURATION,
            "Request latency by route.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=owner,
        )
        self._gauges: dict[str, tuple[Gauge, Callable[[], float]]] = {}
        self._owner = owner

    @property
    def multiprocess(self) -> bool:
        return self._shared is not None

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter of :data:`COUNTERS` (a name not declared there is a bug)."""
        counter = self._counters[name]
        (counter.labels(**labels) if labels else counter).inc(amount)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self._counters["arbx_http_requests_total"].labels(
            method=method, route=route, status=str(status)
        ).inc()
        self._latency.labels(route=route).observe(seconds)

    def gauge(self, name: str, read: Callable[[], float], help_text: str) -> None:
        """A gauge read from ``read()`` at each scrape and by :meth:`refresh_gauges`.

        Across workers it is the sum over the live ones (``livesum``): each worker's value
        is the one it last wrote, at most a housekeeping tick (1 s) old.
        """
        gauge = Gauge(name, help_text, registry=self._owner, multiprocess_mode="livesum")
        self._gauges[name] = (gauge, read)

    def refresh_gauges(self) -> None:
        """Write this worker's current gauge values (where other workers' scrapes read
        them); a gauge whose reading fails shows NaN rather than breaking the scrape."""
        for gauge, read in self._gauges.values():
            try:
                gauge.set(float(read()))
            except Exception:
                gauge.set(float("nan"))

    def counter_total(self, name: str) -> float:
        """A counter summed over its labels (and, in multiprocess mode, over workers)."""
        return sum(
            sample.value
            for family in self._families()
            for sample in family.samples
            if sample.name == name
        )

    def render(self) -> bytes:
        """The text exposition of every metric (of every worker in multiprocess mode)."""
        self.refresh_gauges()
        return generate_latest(self._scraped())

    def close(self) -> None:
        """At worker exit: its gauges stop counting (its counters stay in the totals)."""
        if self._shared:
            with contextlib.suppress(OSError):
                mark_process_dead(os.getpid(), self._shared)

    def _scraped(self) -> CollectorRegistry:
        if not self._shared:
            return self._registry
        _forget_dead_workers(self._shared)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, self._shared)
        return registry

    def _families(self) -> Iterable[Metric]:
        return self._scraped().collect()


def _forget_dead_workers(path: str) -> None:
    """Drop the live-gauge files of workers that are gone (killed, or restarted by the
    supervisor under a new pid), which no ``close()`` ran for."""
    for file in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.search(os.path.basename(file))
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                mark_process_dead(int(match.group(1)), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
