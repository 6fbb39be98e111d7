"""Live events: opportunity diffs, the event logs, and SSE delivery across two real API
servers sharing Redis, with resume by Last-Event-ID and heartbeats; the embedded (file)
bus without Redis."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from service_harness import (
    TEST_KEY,
    StubDagster,
    metric_value,
    serve_in_thread,
    service_settings,
)

from arbx_dagster.domain.lifecycle import OPPORTUNITY_STATE_SCHEMA
from arbx_dagster.domain.schema import conform
from arbx_dagster.pipeline.announcements import (
    opportunity_events,
    publish_opportunity_events,
    publish_run_event,
)
from arbx_dagster.service.app import create_app
from arbx_dagster.service.sse import Broadcaster
from arbx_dagster.storage.cache import Cache, MemoryCache, RedisCache
from arbx_dagster.storage.event_log import Event, FileEventLog, RedisEventLog

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def state(*rows: dict[str, Any]) -> pl.DataFrame:
    base = {
        "kind": "spread",
        "canonical_id": "cp-1",
        "product_name": "TV",
        "category": "TV",
        "buy_retailer": "ripley",
        "buy_sku": "R1",
        "buy_price_type": "offer",
        "ref_retailer": "paris",
        "ref_price": 449_990,
        "roi_pct": 30.0,
        "confidence": 0.9,
        "observed_at": NOW,
        "first_seen": NOW,
        "last_seen": NOW,
        "times_seen": 1,
    }
    data = [{**base, "buy_price": 299_990, "margin_clp": 150_000, **row} for row in rows]
    return conform(pl.DataFrame(data), OPPORTUNITY_STATE_SCHEMA)


# --- diffs and logs ----------------------------------------------------------------------


def test_opportunity_events_say_what_changed_between_two_states() -> None:
    before = state(
        {"opportunity_id": "a", "status": "new"},
        {"opportunity_id": "b", "status": "active"},
        {"opportunity_id": "c", "status": "active"},
        {"opportunity_id": "d", "status": "expired"},
        {"opportunity_id": "e", "status": "active"},
    )
    after = state(
        {"opportunity_id": "a", "status": "active"},  # seen again, same prices: not news
        {"opportunity_id": "b", "status": "active", "buy_price": 279_990, "margin_clp": 170_000},
        {"opportunity_id": "c", "status": "expired"},
        {"opportunity_id": "d", "status": "active"},  # came back
        {"opportunity_id": "e", "status": "active"},
        {"opportunity_id": "f", "status": "new"},
    )
    events = {
        data["opportunity_id"]: (kind, data) for kind, data in opportunity_events(before, after)
    }
    assert {k: v[0] for k, v in events.items()} == {
        "b": "opportunity.changed",
        "c": "opportunity.expired",
        "d": "opportunity.new",
        "f": "opportunity.new",
    }
    assert events["b"][1]["changes"] == {
        "buy_price": [299_990, 279_990],
        "margin_clp": [150_000, 170_000],
    }
    assert events["d"][1]["reactivated"] is True and events["f"][1]["reactivated"] is False
    assert opportunity_events(pl.DataFrame(), after)  # a first run: everything open is new
    # A run reads only the open rows before it: the same events, reactivation included.
    still_open = before.filter(pl.col("status") != "expired")
    assert opportunity_events(still_open, after) == opportunity_events(before, after)


def test_a_burst_of_changes_is_announced_as_one_refresh(tmp_path: Path) -> None:
    log = FileEventLog(tmp_path)
    rows = [{"opportunity_id": f"o{i}", "status": "new"} for i in range(30)]
    assert (
        publish_opportunity_events(
            MemoryCache(), pl.DataFrame(), state(*rows), max_events=10, events=log
        )
        == 1
    )
    [event] = log.after("0-0")[0]
    assert event.type == "opportunities.refreshed"
    assert event.data["counts"] == {"opportunity.new": 30}


def test_the_file_log_orders_ids_survives_trimming_and_reports_gaps(tmp_path: Path) -> None:
    log = FileEventLog(tmp_path, max_bytes=3_000)
    ids = [log.append("run.status", {"run_id": f"r{i}", "padding": "x" * 100}) for i in range(60)]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(ids)) == 60 and log.latest_id() == ids[-1]
    recent, gap = log.after(ids[-3])
    assert [e.id for e in recent] == ids[-2:] and not gap
    _, gap = log.after(ids[0])  # trimmed away since
    assert gap
    # A publisher in another process (the pipeline) is seen by a waiting reader.
    reader = FileEventLog(tmp_path)
    threading.Timer(0.2, lambda: FileEventLog(tmp_path).append("run.status", {"n": 1})).start()
    assert [e.data for e in reader.wait(ids[-1], timeout_seconds=3)] == [{"n": 1}]


@pytest.mark.services
def test_the_redis_log_is_a_stream_with_ids_to_resume_from(redis_cache: Cache) -> None:
    log = RedisEventLog(redis_cache)  # type: ignore[arg-type]
    first = log.append("run.status", {"n": 1})
    second = log.append("run.status", {"n": 2})
    assert redis_cache.client.xlen(redis_cache.key("events")) == 2  # type: ignore[attr-defined]
    events, gap = log.after(first)
    assert [(e.id, e.data) for e in events] == [(second, {"n": 2})] and not gap
    assert log.latest_id() == second
    assert log.wait(second, timeout_seconds=0.2) == []


# --- the tail of the log ---------------------------------------------------------------------


class FlakyLog(FileEventLog):
    """A file log whose first ``failures`` reads fail (Redis restarting, say)."""

    def __init__(self, folder: Path, failures: int) -> None:
        super().__init__(folder)
        self.failures = failures

    def wait(self, last_id: str | None, timeout_seconds: float) -> list[Event]:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("event log unreadable")
        return super().wait(last_id, timeout_seconds)


def test_the_tail_retries_a_failing_log_with_growing_waits_then_hands_events_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[Event] = []
    broadcaster = Broadcaster(FlakyLog(tmp_path, failures=2), on_event=heard.append)
    with caplog.at_level("WARNING", logger="arbx_dagster.service.sse"):
        broadcaster.start()
        try:
            appended = FileEventLog(tmp_path).append("run.status", {"n": 1})
            deadline = time.monotonic() + 10
            while not heard and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            broadcaster.stop()
    assert [e.id for e in heard] == [appended] and broadcaster.healthy
    waits = [r.getMessage().rsplit("retrying in ", 1)[1] for r in caplog.records]
    assert waits == ["0.5 s", "1.0 s"]


def test_a_tail_waiting_out_a_failing_log_stops_at_once(tmp_path: Path) -> None:
    broadcaster = Broadcaster(FlakyLog(tmp_path, failures=1_000))
    broadcaster.start()
    time.sleep(0.2)
    assert not broadcaster.healthy
    started = time.monotonic()
    broadcaster.stop()
    assert time.monotonic() - started < 1


# --- SSE over real servers ------------------------------------------------------------------


class SSEClient:
    """Reads an SSE response on a thread; parsed events land in ``events``."""

    def __init__(self, url: str, last_event_id: str | None = None) -> None:
        headers = dict(AUTH)
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.comments: list[str] = []
        self.connected = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=10))
        self._stop = False
        self._thread = threading.Thread(target=self._run, args=(url, headers), daemon=True)
        self._thread.start()
        assert self.connected.wait(10), "SSE connection not established"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        event: dict[str, Any] = {}
        with (
            contextlib.suppress(httpx.HTTPError),
            self._client.stream("GET", f"{url}/api/sse/updates", headers=headers) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            self.connected.set()
            for line in response.iter_lines():
                if self._stop:
                    return
                if line.startswith(":"):
                    self.comments.append(line)
                elif not line:
                    if "data" in event:
                        self.events.put(event)
                    event = {}
                else:
                    name, _, value = line.partition(": ")
                    event[name] = json.loads(value) if name == "data" else value

    def take(self, n: int, timeout: float = 10) -> list[dict[str, Any]]:
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            got.append(self.events.get(timeout=max(0.01, deadline - time.monotonic())))
        return got

    def close(self) -> None:
        self._stop = True
        self._client.close()


@pytest.fixture
def two_servers(tmp_path: Path, redis_cache: Cache) -> Iterator[tuple[str, str]]:
    def app(name: str) -> Any:
        settings = service_settings(tmp_path / name, sse_heartbeat_seconds=0.3)
        cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
        return create_app(settings, cache=cache, dagster=StubDagster())  # type: ignore[arg-type]

    with serve_in_thread(app("one")) as one, serve_in_thread(app("two")) as two:
        yield one.url, two.url


@pytest.mark.services
def test_sse_reaches_clients_of_every_worker_and_resumes_on_another(
    two_servers: tuple[str, str], redis_cache: Cache
) -> None:
    one, two = two_servers
    on_one, on_two = SSEClient(one), SSEClient(two)
    pipeline_cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
    bus = RedisEventLog(pipeline_cache)
    before = state({"opportunity_id": "keep", "status": "active"})
    after = state(
        {"opportunity_id": "keep", "status": "active"},
        {"opportunity_id": "fresh", "status": "new", "product_name": "Notebook ASUS"},
    )
    assert publish_opportunity_events(pipeline_cache, before, after, events=bus) == 1
    [a], [b] = on_one.take(1), on_two.take(1)
    assert a == b  # same event, same id, whichever worker serves the client
    assert a["event"] == "opportunity.new"
    assert a["data"]["opportunity_id"] == "fresh"
    assert a["data"]["product_name"] == "Notebook ASUS"
    on_one.close()

    # While the first client is away, two more events happen.
    missed = [
        publish_run_event("run-1", "ingest_critical", "STARTED", events=bus),
        publish_run_event("run-1", "ingest_critical", "SUCCESS", events=bus),
    ]
    assert [e["id"] for e in on_two.take(2)] == missed
    # It reconnects to the *other* worker with the last id it saw: it gets what it missed,
    # in order, exactly once, then the live feed.
    resumed = SSEClient(two, last_event_id=a["id"])
    got = resumed.take(2)
    assert [e["id"] for e in got] == missed
    assert [e["data"]["status"] for e in got] == ["STARTED", "SUCCESS"]
    live = publish_run_event("run-2", "full_refresh", "QUEUED", events=bus)
    assert [e["id"] for e in resumed.take(1)] == [live]
    assert resumed.events.empty()
    time.sleep(0.7)
    assert any("heartbeat" in c for c in resumed.comments)  # idle connections stay open
    metrics = httpx.get(f"{two}/metrics").text
    assert metric_value(metrics, "arbx_sse_clients") == 2
    resumed.close()
    on_two.close()


def test_the_embedded_bus_needs_no_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBX_HOME", str(tmp_path))
    settings = service_settings(tmp_path, sse_heartbeat_seconds=5)
    app = create_app(settings, cache=MemoryCache(), dagster=StubDagster())  # type: ignore[arg-type]
    with serve_in_thread(app) as server:
        client = SSEClient(server.url)
        # The pipeline's process has its own in-process cache: events go through the file.
        bus = FileEventLog(tmp_path / "events")
        first = publish_run_event("run-9", "refresh_downstream", "SUCCESS", events=bus)
        [event] = client.take(1)
        assert (event["id"], event["event"]) == (first, "run.status")
        client.close()
        # Resuming from an id the (trimmed) log no longer has says so: refetch the list.
        log = FileEventLog(tmp_path / "events", max_bytes=600)
        for i in range(20):
            log.append("run.status", {"i": i, "pad": "x" * 50})
        resumed = SSEClient(server.url, last_event_id=first)
        reset = resumed.take(1)[0]
        assert reset["event"] == "reset" and "id" not in reset
        resumed.close()
