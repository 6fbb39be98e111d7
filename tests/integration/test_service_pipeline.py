"""Pipeline control against a real Dagster: one ``arbx ui`` (``dagster dev``: webserver,
daemon and code server on an embedded SQLite instance) serves every test here, in order —
the UI's asset graph, launches with and without a partition, the launch lock across
workers, terminating queued and started runs, status, run events, ``/health`` on the
instance's run storage, and finally a clean stop of ``arbx ui``.

Runs tagged ``arbx/hold`` stay QUEUED (the instance's dagster.yaml allows 0 of them at a
time): the state in which a duplicate launch must be refused and a terminate cancels at
once. Other runs are dequeued by the daemon and really run, in a run worker process.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cli_process import clean_env
from fastapi.testclient import TestClient
from service_harness import (
    TEST_KEY,
    free_port,
    service_settings,
    session_processes,
)

from arbx_dagster.domain.history import day_of
from arbx_dagster.resources.sources import resolve_sources
from arbx_dagster.service.app import create_app
from arbx_dagster.service.dagster_api import DagsterClient
from arbx_dagster.storage.cache import Cache, RedisCache
from arbx_dagster.storage.event_log import RedisEventLog
from arbx_dagster.storage.warehouse import DuckDBWarehouse

pytestmark = [pytest.mark.services, pytest.mark.slow]

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
HOLD = {"hold": "test"}  # -> run tag arbx/hold: never dequeued on this instance
RETAILERS = ("falabella", "lider", "paris", "ripley")  # Dagster's order: by name


def _today() -> date:
    """Today's market day, asked when a test runs (a suite may cross midnight)."""
    return day_of(datetime.now(UTC))


def _today_range() -> tuple[str, str]:
    today = _today()
    return (f"{today}|{RETAILERS[0]}", f"{today}|{RETAILERS[-1]}")


FINISHED = ("SUCCESS", "FAILURE", "CANCELED")

INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: arbx/hold
        limit: 0
"""


class StallingStore:
    """A retailer catalogue API that never ends: every page has one product and a next
    page, each answered after ``delay`` seconds. A run scraping it stays STARTED until it
    is stopped; ``scraping`` is set when the first page is asked for."""

    def __init__(self, delay: float = 0.3) -> None:
        self.delay = delay
        self.scraping = threading.Event()
        store = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
                store.scraping.set()
                time.sleep(store.delay)
                item = {"sku": f"L{page}", "name": f"Audífonos {page}", "price": 19_990}
                body = json.dumps({"products": [item]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StallingStore:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def sources_yaml(folder: Path, store_url: str) -> Path:
    """A tiny simulated market (falabella, paris, ripley) plus ``lider`` on the stalling
    store: a run over today's partitions lands falabella, then hangs scraping lider."""
    path = folder / "sources.yaml"
    path.write_text(
        f"""version: 1
archive: {{root: {folder / "archive"}}}
retailers:
  - name: simulator
    connector: simulator
    retailers: [falabella, paris, ripley]
    seed: 5
    n_products: 20
    days: 3
  - name: lider
    connector: http_json
    base_url: {store_url}
    timeout_seconds: 5
    rate_limit: {{requests_per_second: 50, burst: 5}}
    listing:
      url: /catalog
      pagination: {{kind: page, param: page}}
      items_path: products
      fields: {{sku: sku, name: name, price_offer: price}}
""",
        encoding="utf-8",
    )
    return path


@dataclass
class DagsterUI:
    url: str
    process: subprocess.Popen[bytes]
    arbx_home: Path
    dagster_home: Path
    log: Path


@pytest.fixture(scope="module")
def stalling_store() -> Iterator[StallingStore]:
    with StallingStore() as store:
        yield store


@pytest.fixture(scope="module")
def dagster_ui(
    tmp_path_factory: pytest.TempPathFactory, stalling_store: StallingStore
) -> Iterator[DagsterUI]:
    """``arbx ui --port N`` as a user starts it, on its own instance folder and state."""
    root = tmp_path_factory.mktemp("arbx_ui")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(INSTANCE_YAML, encoding="utf-8")
    port = free_port()
    env = {
        **clean_env(),
        "DAGSTER_HOME": str(dagster_home),
        "ARBX_HOME": str(root / "arbx"),
        "ARBX_SOURCES": str(sources_yaml(root, stalling_store.url)),
    }
    log_path = root / "ui.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    arbx = Path(sys.executable).with_name("arbx")
    process = subprocess.Popen(
        [str(arbx), "ui", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{url}/server_info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    "arbx ui did not start:\n" + log_path.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.5)
        yield DagsterUI(url, process, root / "arbx", dagster_home, log_path)
    finally:
        if process.poll() is None:  # the last test stops it; this is for early failures
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()


@pytest.fixture
def workers(tmp_path: Path, redis_cache: Cache, dagster_ui: DagsterUI) -> Iterator[Any]:
    """API workers (one app each) sharing this test's Redis and the Dagster webserver."""
    opened: list[TestClient] = []

    def make() -> TestClient:
        settings = service_settings(tmp_path, dagster_url=dagster_ui.url)
        cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
        # the API reads the sources the code location reads, as under `arbx up`
        sources = resolve_sources(dagster_ui.arbx_home.parent / "sources.yaml")
        client = TestClient(create_app(settings, cache=cache, sources=sources))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def audit_rows(folder: Path) -> list[tuple[Any, ...]]:
    with DuckDBWarehouse(folder / "warehouse.duckdb") as warehouse:
        return warehouse.query(
            "SELECT actor, action, target, outcome FROM audit_log ORDER BY id"
        ).rows()


def run_events(cache: Cache, run_id: str) -> list[dict[str, Any]]:
    log = RedisEventLog(cache)  # type: ignore[arg-type]
    return [
        e.data for e in log.after("0-0")[0] if e.type == "run.status" and e.data["run_id"] == run_id
    ]


def wait_for(client: DagsterClient, run_id: str, statuses: tuple[str, ...], seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while True:
        run = client.run(run_id)
        assert run is not None
        if run["status"] in statuses or time.monotonic() > deadline:
            return run["status"]
        time.sleep(0.5)


def test_arbx_ui_shows_the_asset_graph_with_groups_and_descriptions(dagster_ui: DagsterUI) -> None:
    query = "{ assetNodes { assetKey { path } groupName description dependencyKeys { path } } }"
    answer = httpx.post(f"{dagster_ui.url}/graphql", json={"query": query}, timeout=60).json()
    nodes = {n["assetKey"]["path"][-1]: n for n in answer["data"]["assetNodes"]}
    flow = [
        "raw_prices",
        "normalized_listings",
        "product_matches",
        "price_history",
        "opportunities",
        "intelligence_metrics",
    ]
    assert set(flow) <= set(nodes)
    for name, node in nodes.items():
        assert node["groupName"] not in (None, "", "default"), name
        assert len(node["description"] or "") > 40, name
    groups = {name: nodes[name]["groupName"] for name in ("raw_prices", "opportunities")}
    assert groups == {"raw_prices": "ingestion", "opportunities": "opportunities"}
    for upstream, downstream in itertools.pairwise(flow):
        assert [upstream] in [d["path"] for d in nodes[downstream]["dependencyKeys"]], downstream
    # The embedded instance: SQLite files under the instance folder, no server.
    assert (dagster_ui.dagster_home / "history" / "runs.db").exists()


def test_launch_refuse_duplicates_terminate_and_status(
    workers: Any, redis_cache: Cache, tmp_path: Path, dagster_ui: DagsterUI
) -> None:
    api = workers()
    partition = f"{_today()}|ripley"
    launched = api.post(
        "/api/pipeline/runs",
        json={"job": "ingest_critical", "partition": partition, "tags": {**HOLD, "reason": "t"}},
        headers=AUTH,
    )
    assert launched.status_code == 201, launched.text
    run_id = launched.json()["run_id"]
    assert launched.json()["status"] == "QUEUED"

    run = DagsterClient(dagster_ui.url).run(run_id)
    assert run is not None and run["job_name"] == "ingest_critical"
    assert run["partition"] == partition
    assert run["tags"]["arbx/launched_by"] == "api:ops"
    assert run["tags"]["arbx/reason"] == "t"

    duplicate = api.post(
        "/api/pipeline/runs",
        json={"job": "ingest_critical", "partition": partition, "tags": HOLD},
        headers=AUTH,
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["run_id"] == run_id

    status = api.get("/api/pipeline/status", headers=AUTH).json()
    assert run_id in [r["run_id"] for r in status["runs"]]
    assert {"critical_tier", "important_tier", "tracking_tier"} <= {
        s["name"] for s in status["schedules"]
    }
    assert "file_drop_sensor" in {s["name"] for s in status["sensors"]}
    assert "full_refresh" in status["jobs"]

    stopped = api.post(f"/api/pipeline/runs/{run_id}/terminate", headers=AUTH)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "CANCELED"  # a queued run is canceled at once
    assert api.post(f"/api/pipeline/runs/{run_id}/terminate", headers=AUTH).status_code == 409
    unknown = "00000000-0000-0000-0000-000000000000"
    assert api.post(f"/api/pipeline/runs/{unknown}/terminate", headers=AUTH).status_code == 404
    assert api.post("/api/pipeline/runs/not-a-run!/terminate", headers=AUTH).status_code == 422
    # Once canceled, the same job and partition can be launched again.
    again = api.post(
        "/api/pipeline/runs",
        json={"job": "ingest_critical", "partition": partition, "tags": HOLD},
        headers=AUTH,
    )
    assert again.status_code == 201
    api.post(f"/api/pipeline/runs/{again.json()['run_id']}/terminate", headers=AUTH)

    # A full refresh without a partition: today at every retailer, as one run.
    full = api.post("/api/pipeline/runs", json={"job": "full_refresh", "tags": HOLD}, headers=AUTH)
    assert full.status_code == 201, full.text
    assert full.json()["scope"] == "..".join(_today_range())
    full_run = DagsterClient(dagster_ui.url).run(full.json()["run_id"])
    assert full_run is not None and full_run["partition_range"] == list(_today_range())
    api.post(f"/api/pipeline/runs/{full.json()['run_id']}/terminate", headers=AUTH)

    for body, code in (
        ({"job": "no_such_job"}, 404),
        ({"job": "ingest_critical", "partition": "yesterday"}, 422),
        ({"job": "refresh_downstream", "partition": partition}, 422),  # not partitioned
        (
            {
                "job": "x",
                "partition": partition,
                "partition_range": {"start": f"{_today()}|paris", "end": partition},
            },
            422,
        ),
    ):
        answer = api.post("/api/pipeline/runs", json=body, headers=AUTH)
        assert answer.status_code == code, (body, answer.text)

    # Listeners heard about it, and the audit log says who did what.
    assert [e["status"] for e in run_events(redis_cache, run_id)] == ["QUEUED", "CANCELED"]
    assert audit_rows(tmp_path)[:3] == [
        ("api:ops", "pipeline.launch", "ingest_critical", "ok"),
        (
            "api:ops",
            "pipeline.launch",
            "ingest_critical",
            f"rejected 409: ingest_critical ({partition}) is already queued as run {run_id}",
        ),
        ("api:ops", "pipeline.terminate", run_id, "ok"),
    ]


def test_launches_with_and_without_a_partition_never_race(workers: Any) -> None:
    """Six concurrent launches of one job on two workers: three without a partition (all of
    today) and three of today's partitions. They all overlap, so exactly one starts."""
    pool = [workers(), workers()]
    bodies = [
        {"job": "ingest_important", "tags": HOLD},
        {"job": "ingest_important", "partition": f"{_today()}|paris", "tags": HOLD},
    ]

    def launch(i: int) -> Any:
        return pool[i % 2].post("/api/pipeline/runs", json=bodies[(i // 2) % 2], headers=AUTH)

    with ThreadPoolExecutor(6) as executor:
        responses = list(executor.map(launch, range(6)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert all(r.json()["run_id"] == winner["run_id"] for r in responses if r.status_code == 409)
    # Another day does not overlap today, whichever launch won.
    yesterday = f"{_today() - timedelta(days=1)}|paris"
    other = pool[0].post(
        "/api/pipeline/runs",
        json={"job": "ingest_important", "partition": yesterday, "tags": HOLD},
        headers=AUTH,
    )
    assert other.status_code == 201, other.text
    for run_id in (winner["run_id"], other.json()["run_id"]):
        pool[1].post(f"/api/pipeline/runs/{run_id}/terminate", headers=AUTH)


def test_the_run_watcher_announces_status_changes_once(
    workers: Any, redis_cache: Cache, dagster_ui: DagsterUI
) -> None:
    api = workers()
    st = api.app.state.arbx  # type: ignore[attr-defined]
    st.watcher.tick()  # seed: runs from earlier tests are history, not news
    log = RedisEventLog(redis_cache)  # type: ignore[arg-type]
    mark = log.latest_id() or "0-0"
    # A run launched behind the service's back (the UI, a schedule) is picked up.
    client = DagsterClient(dagster_ui.url)
    run_id = client.launch("refresh_downstream", {"arbx/trigger": "ui", "arbx/hold": "t"}, None)
    assert st.watcher.tick() == 1
    assert st.watcher.tick() == 0
    client.terminate(run_id)
    assert st.watcher.tick() == 1
    seen = [(e.data["run_id"], e.data["status"]) for e in log.after(mark)[0]]
    assert seen == [(run_id, "QUEUED"), (run_id, "CANCELED")]


def test_a_started_run_is_terminated_and_leaves_the_warehouse_consistent(
    workers: Any,
    redis_cache: Cache,
    tmp_path: Path,
    dagster_ui: DagsterUI,
    stalling_store: StallingStore,
) -> None:
    """Launched without a partition, a tier refresh covers today at every retailer; the
    daemon starts it; it lands falabella, then hangs scraping lider. Terminated there, it
    ends CANCELED, the lock and the warehouse are free again, and nothing half-written
    remains: falabella's partition is whole, lider's and the rest absent."""
    api = workers()
    st = api.app.state.arbx  # type: ignore[attr-defined]
    st.watcher.tick()  # seed
    client = DagsterClient(dagster_ui.url)

    launched = api.post("/api/pipeline/runs", json={"job": "ingest_tracking"}, headers=AUTH)
    assert launched.status_code == 201, launched.text
    run_id = launched.json()["run_id"]
    assert launched.json()["scope"] == "..".join(_today_range())
    run = client.run(run_id)
    assert run is not None and run["partition_range"] == list(_today_range())

    assert stalling_store.scraping.wait(240), dagster_ui.log.read_text(errors="replace")[-3000:]
    assert wait_for(client, run_id, ("STARTED", *FINISHED), 30) == "STARTED"
    # While it runs, a launch of one of its partitions is refused.
    overlapping = api.post(
        "/api/pipeline/runs",
        json={"job": "ingest_tracking", "partition": f"{_today()}|paris", "tags": HOLD},
        headers=AUTH,
    )
    assert overlapping.status_code == 409
    assert overlapping.json()["run_id"] == run_id

    stopped = api.post(f"/api/pipeline/runs/{run_id}/terminate", headers=AUTH)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] in ("CANCELING", "CANCELED")
    assert wait_for(client, run_id, FINISHED, 120) == "CANCELED"
    st.watcher.tick()  # the watcher announces the final status once it is reached

    events = run_events(redis_cache, run_id)
    assert events[0]["status"] == "QUEUED"
    assert events[0]["partition_range"] == list(_today_range())
    assert events[1]["terminated"] is True
    assert events[-1]["status"] == "CANCELED"
    # The launch lock is free: the same job goes through at once.
    again = api.post(
        "/api/pipeline/runs", json={"job": "ingest_tracking", "tags": HOLD}, headers=AUTH
    )
    assert again.status_code == 201, again.text
    api.post(f"/api/pipeline/runs/{again.json()['run_id']}/terminate", headers=AUTH)
    outcomes = [(action, target, outcome) for _, action, target, outcome in audit_rows(tmp_path)]
    assert ("pipeline.terminate", run_id, "ok") in outcomes

    # The warehouse: the run's process let go of it, with only whole partitions in it.
    deadline = time.monotonic() + 20
    while True:
        try:
            warehouse = DuckDBWarehouse(dagster_ui.arbx_home / "warehouse.duckdb")
            break
        except Exception:
            assert time.monotonic() < deadline, "the canceled run still holds the warehouse"
            time.sleep(0.5)
    with warehouse:
        landed = dict(
            warehouse.query(
                "SELECT retailer, count(*) AS n FROM raw_prices GROUP BY retailer"
            ).rows()
        )
    stored = stored_per_partition(dagster_ui.dagster_home, run_id)
    assert set(stored) == {f"{_today()}|falabella"}
    assert landed == {"falabella": stored[f"{_today()}|falabella"]} and landed["falabella"] > 0


def stored_per_partition(dagster_home: Path, run_id: str) -> dict[str, int]:
    """What the run reported landing, partition by partition (its observations)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_OBSERVATION)
        stored = {}
        for record in records:
            event = record.dagster_event
            assert event is not None and event.asset_observation_data is not None
            metadata = event.asset_observation_data.asset_observation.metadata
            stored[event.partition] = metadata["stored"].value
        return stored


def test_health_reports_the_dagster_run_storage_and_fails_without_it(
    workers: Any, dagster_ui: DagsterUI
) -> None:
    api = workers()
    healthy = api.get("/health", headers=AUTH)  # the detail is for key holders
    assert healthy.status_code == 200, healthy.text
    dagster = healthy.json()["components"]["dagster"]
    assert (dagster["state"], dagster["run_storage"]) == ("ok", "ok")

    # The webserver stays up, its instance loses its run storage (SQLite files gone).
    history = dagster_ui.dagster_home / "history"
    moved = history.with_name("history.away")
    history.rename(moved)
    try:
        broken = api.get("/health", headers=AUTH)
    finally:
        moved.rename(history)
    assert broken.status_code == 503, broken.text
    body = broken.json()
    assert body["status"] == "down"
    assert body["components"]["dagster"]["state"] == "down"
    assert body["components"]["dagster"]["run_storage"] == "down"
    assert body["components"]["warehouse"]["state"] == "ok"  # only Dagster is the problem


def test_arbx_ui_stops_cleanly_leaving_no_process_behind(dagster_ui: DagsterUI) -> None:
    session = dagster_ui.process.pid  # started in a session of its own
    running = session_processes(session)
    assert len(running) >= 4  # dagster dev, its webserver, daemon and code server
    dagster_ui.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert dagster_ui.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 15
    while session_processes(session) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert session_processes(session) == set()
