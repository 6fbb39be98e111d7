"""Test support for exercising the service for real: a uvicorn server in a thread, and the
pipeline steps a webhook delivery goes through (sensor, ingestion run, downstream run).

Used by the integration tests and the dashboard test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cli_process import free_port
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from arbx_dagster.service.config import ServiceSettings
from arbx_dagster.service.dagster_api import Repository
from arbx_dagster.settings import Settings


def metric_value(exposition: str, name: str, **labels: str) -> float | None:
    """One sample of a Prometheus text exposition (``/metrics``), by its name and exactly
    these labels; None when the service does not expose it."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


@dataclass
class RunningServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


@contextmanager
def serve_in_thread(
    app: FastAPI, port: int | None = None, *, all_logs: bool = False
) -> Iterator[RunningServer]:
    """Run ``app`` on uvicorn (lifespan included) until the block ends.

    ``all_logs``: uvicorn logs everything (access log included) through the root logger,
    where a test can read it, instead of warnings on its own handlers.
    """
    port = port or free_port()
    logging: dict[str, Any] = {"log_level": "debug", "log_config": None} if all_logs else {}
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="on",
        timeout_graceful_shutdown=1,
        **{"log_level": "warning", **logging},
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", server, thread)
    finally:
        state = getattr(app.state, "arbx", None)
        if state is not None:  # end open event streams first, as a signal would
            state.broadcaster.close_clients()
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class SensorIngestion:
    """What the file-drop sensor asked for and what its runs did."""

    requests: list[Any]  # the sensor's dg.RunRequest objects
    runs: list[Any]  # one dg.ExecuteInProcessResult per request
    cursor: str | None  # the sensor's cursor after its last look


def look_for_files(
    instance: Any, resources: dict[str, Any], *, looks: int = 2, cursor: str | None = None
) -> tuple[list[Any], str | None]:
    """The daemon's looks at the landing folders: the real file-drop sensor evaluated
    ``looks`` times (twice: a new file must be seen unchanged on two looks), its cursor
    carried from one look to the next and its new retailer partitions applied. Returns the
    run requests of every look and the last cursor."""
    import dagster as dg

    from arbx_dagster.automation.sensors import file_drop_sensor

    requests: list[dg.RunRequest] = []
    sensor_resources = {"sources": resources["sources"], "clock": resources["clock"]}
    for _ in range(looks):
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources=sensor_resources
        )
        result = file_drop_sensor(context)
        cursor = result.cursor
        for added in result.dynamic_partitions_requests or []:  # as the daemon applies them
            instance.add_dynamic_partitions(added.partitions_def_name, added.partition_keys)
        requests.extend(result.run_requests or [])
    return requests, cursor


def ingest_dropped_files(
    instance: Any, resources: dict[str, Any], *, looks: int = 2, cursor: str | None = None
) -> SensorIngestion:
    """What the daemon does for landed files: its looks (``look_for_files``), then each
    request it makes run (tags and run config as the daemon would)."""
    import dagster as dg

    from arbx_dagster.assets.ingestion import raw_prices

    requests, cursor = look_for_files(instance, resources, looks=looks, cursor=cursor)
    runs = [
        dg.materialize(
            [raw_prices],
            partition_key=request.partition_key,
            run_config=request.run_config,
            tags=request.tags,
            instance=instance,
            resources=resources,
        )
        for request in requests
    ]
    return SensorIngestion(requests, runs, cursor)


def refresh_downstream(instance: Any, resources: dict[str, Any]) -> Any:
    """Run what the eager automation runs after fresh prices, up to the opportunities
    (the intelligence metrics after them are left out: nothing here reads them)."""
    import dagster as dg

    from arbx_dagster.assets import ALL_ASSETS
    from arbx_dagster.assets.ingestion import raw_prices
    from arbx_dagster.assets.opportunities import opportunities

    selection = dg.AssetSelection.assets(opportunities).upstream() - dg.AssetSelection.assets(
        raw_prices
    )
    return dg.materialize(ALL_ASSETS, instance=instance, resources=resources, selection=selection)


@dataclass
class PipelinePush:
    """One delivery followed through the pipeline, for assertions."""

    landed: dict[str, Any]  # the webhook's 202 answer
    ingestion: SensorIngestion
    downstream: Any  # the refresh_downstream run (dg.ExecuteInProcessResult)
    events: list[Any]  # what the runs published on the event log (storage.event_log.Event)
    rerun_requests: list[Any]  # what the sensor asked for on its next look (nothing)


def push_through_pipeline(
    api_url: str,
    observations: list[dict[str, Any]],
    *,
    postgres_url: str,
    redis_cache: Any,
    sources_path: Path,
    now: Any,
    source: str = "scraper",
) -> PipelinePush:
    """A scraper's signed webhook, then what the daemon does with it: the file-drop sensor
    (real cursor), its ingestion runs, the eager downstream run. No event is published
    here: whatever ``events`` holds, the runs' assets published."""
    import json

    import dagster as dg
    import httpx

    from arbx_dagster.ingestion.webhook_signature import sign
    from arbx_dagster.resources import (
        AlertsResource,
        CacheResource,
        ClockResource,
        SourcesResource,
        WarehouseResource,
    )
    from arbx_dagster.storage.event_log import RedisEventLog

    body = json.dumps({"source": source, "observations": observations}).encode()
    landed = httpx.post(
        f"{api_url}/api/webhooks/prices",
        content=body,
        headers={"X-Arbx-Signature": sign(TEST_SECRET, body), "Content-Type": "application/json"},
        timeout=30,
    )
    if landed.status_code != 202:
        raise AssertionError(f"webhook answered {landed.status_code}: {landed.text}")
    resources = {
        "warehouse": WarehouseResource(postgres_url=postgres_url),
        "cache": CacheResource(redis_url=redis_cache.url, prefix=redis_cache.prefix),
        "clock": ClockResource(as_of=now.isoformat()),
        "alerts": AlertsResource(),
        "sources": SourcesResource(path=str(sources_path)),
    }
    event_log = RedisEventLog(redis_cache)
    mark = event_log.latest_id() or "0-0"
    with dg.instance_for_test() as instance:
        ingestion = ingest_dropped_files(instance, resources)
        downstream = refresh_downstream(instance, resources)
        again = ingest_dropped_files(instance, resources, looks=1, cursor=ingestion.cursor)
    return PipelinePush(
        landed=landed.json(),
        ingestion=ingestion,
        downstream=downstream,
        events=event_log.after(mark)[0],
        rerun_requests=again.requests,
    )


def read_event(lines: Iterator[str], prefix: str) -> dict[str, Any]:
    """The next complete Server-Sent Event whose type starts with ``prefix``, as
    ``{"id", "type", "data"}``, from a stream's ``iter_lines()``."""
    import json

    event: dict[str, Any] = {}
    for line in lines:
        if line.startswith("event: "):
            event["type"] = line[7:]
        elif line.startswith("data: "):
            event["data"] = json.loads(line[6:])
        elif line.startswith("id: "):
            event["id"] = line[4:]
        elif not line:
            if event.get("type", "").startswith(prefix):
                return event
            event = {}
    raise AssertionError(f"the stream ended before a {prefix}* event")


def session_processes(session: int) -> set[int]:
    """Live (non-zombie) processes of a session, from /proc: what a server started with
    ``start_new_session=True`` leaves behind."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != "Z" and int(fields[3]) == session:
            found.add(int(stat.parent.name))
    return found


# --- configuration for tests and benchmarks ---------------------------------------------

TEST_KEY = "test-key-0123456789abcdef"
TEST_SECRET = "whsec-test-0123456789"


def service_settings(
    home: Path,
    *,
    postgres_url: str | None = None,
    redis_url: str | None = None,
    **overrides: Any,
) -> ServiceSettings:
    """Settings on a throwaway ``home``: one API key (``ops`` = :data:`TEST_KEY`), a
    webhook secret, Dagster nowhere unless ``dagster_url`` is given."""
    base = Settings(
        home=home,
        postgres_url=postgres_url,
        redis_url=redis_url,
        duckdb_path=home / "warehouse.duckdb",
        dagster_home=home / "dagster_home",
    )
    values: dict[str, Any] = {
        "api_keys": {"ops": TEST_KEY},
        "webhook_secret": TEST_SECRET,
        "dagster_url": "http://127.0.0.1:9",
        "run_watch_seconds": 0,
    }
    values.update(overrides)
    return ServiceSettings(base=base, **values)


def write_sources(folder: Path) -> Path:
    """A sources.yaml with one file_drop source (files settle at once) under ``folder``,
    fed with the Chilean stores' batches (declared: its folders are made by what lands)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "landing").mkdir(exist_ok=True)
    path = folder / "sources.yaml"
    path.write_text(
        "version: 1\n"
        f"archive: {{root: {folder / 'archive'}}}\n"
        "retailers:\n"
        "  - name: exports\n"
        "    connector: file_drop\n"
        f"    path: {folder / 'landing'}\n"
        "    settle_seconds: 0\n"
        "    known_retailers: [falabella, ripley, paris]\n",
        encoding="utf-8",
    )
    return path


class StubDagster:
    """Stands in for the webserver where a test is not about Dagster (fuzzing, benches)."""

    url = "stub://dagster"

    def __init__(self) -> None:
        self.launched: list[tuple[str, dict[str, str]]] = []
        self.partitions_added: list[tuple[str, str]] = []

    def close(self) -> None:
        pass

    def ping(self) -> dict[str, Any]:
        return {"dagster_version": "stub"}

    def check_run_storage(self, timeout_seconds: float = 2.0) -> None:
        pass

    def repository(self, fresh: bool = False) -> Repository:
        jobs = ("ingest_critical", "full_refresh", "refresh_downstream")
        return Repository("stub", "__repository__", jobs, [], [], frozenset(jobs[:2]))

    def add_dynamic_partitions(self, name: str, keys: Any) -> None:
        self.partitions_added.extend((name, key) for key in keys)

    def latest_partitions(self, job: str, limit: int = 500) -> list[str]:
        from datetime import UTC, datetime

        from arbx_dagster.domain.history import day_of

        today = day_of(datetime.now(UTC)).isoformat()
        return [f"{today}|{retailer}" for retailer in ("falabella", "paris", "ripley")]

    def launch(self, job: str, tags: dict[str, str], run_config: Any) -> str:
        self.launched.append((job, tags))
        return f"00000000-0000-0000-0000-{len(self.launched):012d}"

    def runs(self, limit: int = 20, job: str | None = None, statuses: Any = None) -> list:
        return []

    def run(self, run_id: str) -> dict[str, Any] | None:
        return None

    def terminate(self, run_id: str, policy: str = "SAFE_TERMINATE") -> dict[str, Any]:
        return {"__typename": "RunNotFoundError", "message": run_id}


def spread_observations(now: Any, sku_suffix: str = "55UR8750") -> list[dict[str, Any]]:
    """The same TV at two stores, 150.000 CLP apart: a spread once the listings match."""
    from datetime import timedelta

    common = {
        "ean": "8806084937215",  # the same barcode: the same product, whatever the titles
        "brand": "LG",
        "model": "55UR8750",
        "category": "Tecnología > TV",
        "in_stock": True,
        "observed_at": (now - timedelta(minutes=5)).isoformat(),
    }
    return [
        {
            **common,
            "retailer": "ripley",
            "sku": f"R-{sku_suffix}",
            "price_offer": 299_990,
            "price_list": 399_990,
            "name": "Smart TV LG 55 pulgadas 55UR8750 4K UHD",
        },
        {
            **common,
            "retailer": "paris",
            "sku": f"P-{sku_suffix}",
            "price_offer": 449_990,
            "price_list": 499_990,
            "name": 'Smart TV LG 55" 55UR8750 4K UHD ThinQ',
        },
    ]


def module_redis_cache(scope: str) -> Any:
    """A Redis cache under a fresh prefix for a module-scoped fixture (the shared
    ``redis_cache`` fixture is per test). Skips without Redis, or fails under
    ``ARBX_REQUIRE_SERVICES=1`` like the other service fixtures."""
    import os
    import uuid

    import pytest

    from arbx_dagster.storage.cache import RedisCache

    url = os.environ.get("ARBX_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    cache = RedisCache(url, prefix=f"arbx-test-{scope}:{uuid.uuid4().hex[:8]}:")
    if not cache.ping():
        if os.environ.get("ARBX_REQUIRE_SERVICES", "") not in ("", "0", "false"):
            pytest.fail(f"Redis at {url} is not reachable and ARBX_REQUIRE_SERVICES=1")
        pytest.skip(f"Redis at {url} is not reachable")
    return cache
