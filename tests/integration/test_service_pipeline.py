"""Pipeline control through a real Dagster webserver (GraphQL) on a throwaway instance:
launch, the distributed launch lock across workers, terminate, status, and run events.

The instance has no daemon, so launched runs stay QUEUED: exactly the state in which a
duplicate launch must be refused and a terminate must cancel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from arbx_dagster.domain.history import day_of
from arbx_dagster.instance import WORKSPACE_YAML
from arbx_dagster.service.app import create_app
from arbx_dagster.service.dagster_api import DagsterClient
from arbx_dagster.service.events import RedisEventLog
from arbx_dagster.service.testing import TEST_KEY, free_port, service_settings
from arbx_dagster.storage.cache import Cache, RedisCache
from arbx_dagster.storage.warehouse import DuckDBWarehouse

pytestmark = [pytest.mark.services, pytest.mark.slow]

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
TODAY = day_of(datetime.now(UTC)).isoformat()


@pytest.fixture(scope="module")
def dagster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``dagster-webserver`` on this project's code location, on a free port."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ARBX_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "ARBX_HOME": str(home / "arbx"),
    }
    webserver = Path(sys.executable).with_name("dagster-webserver")
    log = open(home / "webserver.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(webserver), "-w", str(WORKSPACE_YAML), "-h", "127.0.0.1", "-p", str(port)],
        cwd=home,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/server_info", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    "dagster-webserver did not start:\n"
                    + (home / "webserver.log").read_text(errors="replace")[-3000:]
                )
            time.sleep(0.25)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the webserver and its code server
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture
def workers(tmp_path: Path, redis_cache: Cache, dagster_url: str) -> Iterator[Any]:
    opened: list[TestClient] = []

    def make() -> TestClient:
        settings = service_settings(tmp_path, dagster_url=dagster_url)
        cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
        client = TestClient(create_app(settings, cache=cache))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def test_launch_refuse_duplicates_terminate_and_status(
    workers: Any, redis_cache: Cache, tmp_path: Path, dagster_url: str
) -> None:
    api = workers()
    partition = f"{TODAY}|ripley"
    launched = api.post(
        "/api/pipeline/runs",
        json={"job": "ingest_critical", "partition": partition, "tags": {"reason": "test"}},
        headers=AUTH,
    )
    assert launched.status_code == 201, launched.text
    run_id = launched.json()["run_id"]
    assert launched.json()["status"] == "QUEUED"

    run = DagsterClient(dagster_url).run(run_id)
    assert run is not None and run["job_name"] == "ingest_critical"
    assert run["partition"] == partition
    assert run["tags"]["arbx/launched_by"] == "api:ops"
    assert run["tags"]["arbx/reason"] == "test"

    duplicate = api.post(
        "/api/pipeline/runs",
        json={"job": "ingest_critical", "partition": partition},
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
    assert stopped.json()["status"] in ("CANCELED", "CANCELING")
    assert api.post(f"/api/pipeline/runs/{run_id}/terminate", headers=AUTH).status_code == 409
    unknown = "00000000-0000-0000-0000-000000000000"
    assert api.post(f"/api/pipeline/runs/{unknown}/terminate", headers=AUTH).status_code == 404
    assert api.post("/api/pipeline/runs/not-a-run!/terminate", headers=AUTH).status_code == 422
    # Once canceled, the same job and partition can be launched again.
    again = api.post(
        "/api/pipeline/runs",
        json={"job": "ingest_critical", "partition": partition},
        headers=AUTH,
    )
    assert again.status_code == 201
    api.post(f"/api/pipeline/runs/{again.json()['run_id']}/terminate", headers=AUTH)

    for body, code in (
        ({"job": "no_such_job"}, 404),
        ({"job": "ingest_critical", "partition": "yesterday"}, 422),
        (
            {
                "job": "x",
                "partition": f"{TODAY}|ripley",
                "partition_range": {"start": f"{TODAY}|paris", "end": f"{TODAY}|ripley"},
            },
            422,
        ),
    ):
        assert api.post("/api/pipeline/runs", json=body, headers=AUTH).status_code == code

    # Listeners heard about it, and the audit log says who did what.
    events = [e for e in RedisEventLog(redis_cache).after("0-0")[0] if e.type == "run.status"]  # type: ignore[arg-type]
    assert [(e.data["run_id"], e.data["status"]) for e in events][:2] == [
        (run_id, "QUEUED"),
        (run_id, stopped.json()["status"]),
    ]
    with DuckDBWarehouse(tmp_path / "warehouse.duckdb") as warehouse:
        audit = warehouse.query(
            "SELECT actor, action, target, outcome FROM audit_log ORDER BY id"
        ).rows()
    assert audit[:3] == [
        ("api:ops", "pipeline.launch", "ingest_critical", "ok"),
        (
            "api:ops",
            "pipeline.launch",
            "ingest_critical",
            f"rejected 409: ingest_critical ({partition}) is already queued as run {run_id}",
        ),
        ("api:ops", "pipeline.terminate", run_id, "ok"),
    ]


def test_two_workers_never_launch_the_same_job_at_once(workers: Any) -> None:
    pool = [workers(), workers()]
    partition = f"{TODAY}|paris"

    def launch(i: int) -> Any:
        return pool[i % 2].post(
            "/api/pipeline/runs",
            json={"job": "ingest_important", "partition": partition},
            headers=AUTH,
        )

    with ThreadPoolExecutor(6) as executor:
        responses = list(executor.map(launch, range(6)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [201, 409, 409, 409, 409, 409], [r.text for r in responses]
    run_id = next(r.json()["run_id"] for r in responses if r.status_code == 201)
    assert all(r.json()["run_id"] == run_id for r in responses if r.status_code == 409)
    pool[0].post(f"/api/pipeline/runs/{run_id}/terminate", headers=AUTH)


def test_the_run_watcher_announces_status_changes_once(
    workers: Any, redis_cache: Cache, dagster_url: str
) -> None:
    api = workers()
    st = api.app.state.arbx  # type: ignore[attr-defined]
    st.watcher.tick()  # seed: runs from earlier tests are history, not news
    log = RedisEventLog(redis_cache)  # type: ignore[arg-type]
    mark = log.latest_id() or "0-0"
    # A run launched behind the service's back (the UI, a schedule) is picked up.
    client = DagsterClient(dagster_url)
    run_id = client.launch("refresh_downstream", {"arbx/trigger": "ui"}, None)
    assert st.watcher.tick() == 1
    assert st.watcher.tick() == 0
    client.terminate(run_id)
    assert st.watcher.tick() == 1
    seen = [(e.data["run_id"], e.data["status"]) for e in log.after(mark)[0]]
    assert seen == [(run_id, "QUEUED"), (run_id, "CANCELED")]
