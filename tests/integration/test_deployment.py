"""A real deployment: `arbx up` starts dagster-webserver and dagster-daemon on PostgreSQL;
the daemon's sensor launches runs that materialize assets, and a restart repeats nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest
from cli_process import clean_env, free_port, run_arbx
from sources_files import file_drop_sources

from arbx_dagster.cli.deploy import _alive
from arbx_dagster.storage.warehouse import PostgresWarehouse

pytestmark = [pytest.mark.services, pytest.mark.slow]

API_KEY = "deployment-key-0123456789"
HEADER = "sku,name,brand,price_list,price_offer,price_card,in_stock,observed_at\n"


def _arbx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_arbx(env, *args, timeout=240)


@pytest.fixture
def deployment(fresh_postgres_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    sources = file_drop_sources(tmp_path)
    env = {
        **clean_env(),
        "ARBX_HOME": str(tmp_path / "state"),
        "ARBX_POSTGRES_URL": fresh_postgres_url,
        "ARBX_SOURCES": str(sources),
        "ARBX_FILE_DROP_INTERVAL_SECONDS": "5",
        "ARBX_STEP_EXECUTOR": "in_process",  # no 4 s of imports per step on a small machine
        "ARBX_TEST_WEBSERVER_PORT": str(free_port()),
        "ARBX_TEST_API_PORT": str(free_port()),
        "ARBX_API_KEYS": f"test={API_KEY}",
    }
    yield env
    _arbx(env, "down")


def _up(env: dict[str, str]) -> None:
    port = env["ARBX_TEST_WEBSERVER_PORT"]
    api_port = env["ARBX_TEST_API_PORT"]
    started = _arbx(env, "up", "--port", port, "--api-port", api_port)
    assert started.returncode == 0, started.stdout + started.stderr


def _file_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [
        r.dagster_run
        for r in instance.get_run_records(
            filters=dg.RunsFilter(tags={"arbx/file": "ripley/today.csv"})
        )
    ]


def _why_it_failed(instance: dg.DagsterInstance, run_id: str) -> str:
    """The run's failure events, so a red test says what broke in the daemon's run."""
    failures = [
        e
        for e in instance.all_logs(run_id)
        if e.dagster_event is not None and e.dagster_event.is_failure
    ]
    return "\n".join(
        f"{e.step_key or 'run'}: {e.message}\n{e.dagster_event.event_specific_data}"  # type: ignore[union-attr]
        for e in failures
    )


def _api_answer(env: dict[str, str], path: str) -> httpx.Response:
    """The API `arbx up` started, once it answers (it starts after the webserver)."""
    url = f"http://127.0.0.1:{env['ARBX_TEST_API_PORT']}{path}"
    deadline = time.monotonic() + 90
    while True:
        try:
            return httpx.get(url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_daemon_runs_the_file_drop_sensor_and_a_restart_repeats_nothing(
    deployment: dict[str, str], tmp_path: Path
) -> None:
    _up(deployment)
    port = deployment["ARBX_TEST_WEBSERVER_PORT"]
    # The API drives the webserver `arbx up` started, on whatever port it was given.
    pipeline = _api_answer(deployment, "/api/pipeline/status")
    assert pipeline.status_code == 200, pipeline.text
    assert "file_drop_sensor" in {s["name"] for s in pipeline.json()["sensors"]}
    observed = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (tmp_path / "landing" / "ripley").mkdir()
    (tmp_path / "landing" / "ripley" / "today.csv").write_text(
        HEADER
        + "".join(
            f"r-{i},Smart TV {50 + i},LG,{500_000 + i},{400_000 + i},,true,{observed}\n"
            for i in range(3)
        )
    )
    home = tmp_path / "state" / "dagster_home"
    os.environ["ARBX_POSTGRES_URL"] = deployment["ARBX_POSTGRES_URL"]  # for dagster.yaml
    try:
        with dg.DagsterInstance.from_config(str(home)) as instance:
            deadline = time.monotonic() + 200
            runs: list[dg.DagsterRun] = []
            while time.monotonic() < deadline:
                runs = _file_runs(instance)
                if runs and runs[0].is_finished:
                    break
                time.sleep(2)
            assert len(runs) == 1, "the sensor should launch exactly one run for the file"
            assert runs[0].is_success, _why_it_failed(instance, runs[0].run_id)

            # The webserver sees the same run through its GraphQL API.
            query = f'{{ runOrError(runId: "{runs[0].run_id}") {{ ... on Run {{ status }} }} }}'
            answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}).json()
            assert answer["data"]["runOrError"]["status"] == "SUCCESS"

            with PostgresWarehouse(deployment["ARBX_POSTGRES_URL"]) as warehouse:
                assert warehouse.scalar("SELECT count(*) FROM raw_prices") == 3

            # Restart the daemon: the sensor's cursor lives in PostgreSQL, nothing repeats.
            pid_file = tmp_path / "state" / "run" / "daemon.pid"
            old_pid = int(pid_file.read_text())
            os.killpg(old_pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _alive(old_pid) and time.monotonic() < deadline:
                time.sleep(0.5)
            _up(deployment)  # starts what is not running: the daemon again
            assert int(pid_file.read_text()) != old_pid
            time.sleep(12)  # two sensor intervals and more
            assert len(_file_runs(instance)) == 1
    finally:
        del os.environ["ARBX_POSTGRES_URL"]
