"""Cold start: whatever needs the match model gets one the first time it needs it; and a
real deployment (`arbx up`: webserver, daemon and API on PostgreSQL) does the rest alone.

A fresh deployment has never materialized ``match_model`` (its cron is 05:00): the daemon
must still turn the first dropped catalogues into opportunities without anyone
materializing anything, the API must drive the webserver it was started with, and a
restarted daemon must repeat nothing. A run of ``product_matches`` without a stored model
(the UI, another machine's storage) must still match.
"""

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
from service_harness import ingest_dropped_files
from sources_files import file_drop_sources

from arbx_dagster.assets import ALL_ASSETS
from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.matching import MatchModelStore
from arbx_dagster.assets.opportunities import opportunities
from arbx_dagster.cli.deploy import _alive
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)
from arbx_dagster.storage.warehouse import DuckDBWarehouse, PostgresWarehouse

HEADER = "sku,name,brand,model,category,price_list,price_offer,in_stock,observed_at\n"

# The same four products at both stores, each about a third cheaper at falabella, plus one
# product each store alone sells. Titles are worded differently, as two stores would.
PRODUCTS = [
    # (falabella title, ripley title, brand, model, category, falabella offer, ripley offer)
    (
        "Smart TV LG 55 pulgadas 55UR8750 4K UHD",
        'Televisor LG 55" 55UR8750 UHD 4K ThinQ AI',
        "LG",
        "55UR8750",
        "Tecnología > TV",
        299_990,
        449_990,
    ),
    (
        "Notebook Lenovo IdeaPad 3 15ITL6 Intel Core i5 8GB 512GB SSD",
        'Notebook Lenovo IdeaPad 3 15ITL6 i5 8GB RAM 512GB SSD 15.6"',
        "Lenovo",
        "15ITL6",
        "Tecnología > Computación",
        449_990,
        649_990,
    ),
    (
        "Audífonos Sony WH-1000XM5 Bluetooth Noise Cancelling Negro",
        "Audífonos Inalámbricos Sony WH-1000XM5 Negro",
        "Sony",
        "WH-1000XM5",
        "Tecnología > Audio",
        249_990,
        379_990,
    ),
    (
        "Consola Nintendo Switch OLED 64GB Blanca HEG-001",
        "Nintendo Switch Modelo OLED HEG-001 64GB Blanco",
        "Nintendo",
        "HEG-001",
        "Tecnología > Videojuegos",
        299_990,
        429_990,
    ),
]
ONLY_AT = {
    "falabella": ("Hervidor Eléctrico Oster BVSTKT3100 1.7L", "Oster", "BVSTKT3100", 19_990),
    "ripley": ("Aspiradora Robot Xiaomi Mi Robot Vacuum E10", "Xiaomi", "E10", 189_990),
}


def _drop_catalogues(landing: Path, observed: datetime) -> list[Path]:
    """Each store's catalogue export (in stock, observed just now), written complete: a
    ``.part`` file renamed once written, as an upload would."""
    stamp = observed.strftime("%Y-%m-%dT%H:%M:%SZ")
    dropped = []
    for retailer, prefix in (("falabella", "F"), ("ripley", "R")):
        rows = []
        for i, (f_name, r_name, brand, model, category, f_price, r_price) in enumerate(PRODUCTS):
            name, price = (f_name, f_price) if retailer == "falabella" else (r_name, r_price)
            list_price = price + 50_000
            rows.append(
                f"{prefix}-{i},{name},{brand},{model},{category},{list_price},{price},true,{stamp}"
            )
        name, brand, model, price = ONLY_AT[retailer]
        rows.append(f"{prefix}-9,{name},{brand},{model},Hogar,{price},{price},true,{stamp}")
        target = landing / retailer / "catalogo.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".csv.part")
        partial.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
        partial.rename(target)
        dropped.append(target)
    return dropped


def _spreads(found: list[dict[str, object]]) -> set[tuple[object, object]]:
    return {(o["buy_retailer"], o["ref_retailer"]) for o in found if o["kind"] == "spread"}


# --- in process: product_matches without a stored model -----------------------------------


def test_the_match_model_store_gives_none_when_no_usable_model_is_stored(tmp_path: Path) -> None:
    store = MatchModelStore(base_dir=str(tmp_path)).create_io_manager(
        dg.build_init_resource_context()
    )
    key = dg.AssetKey("match_model")
    assert store.load_input(dg.build_input_context(asset_key=key)) is None  # never stored

    store.handle_output(dg.build_output_context(asset_key=key), {"version": "tm-1"})
    assert store.load_input(dg.build_input_context(asset_key=key)) == {"version": "tm-1"}

    (tmp_path / "match_model").write_bytes(b"cut sh")  # an unreadable file
    assert store.load_input(dg.build_input_context(asset_key=key)) is None


@pytest.mark.slow
def test_product_matches_without_a_stored_match_model_still_finds_opportunities(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    sources = SourcesResource(path=str(file_drop_sources(tmp_path)))
    clock = ClockResource(as_of=now.isoformat())
    _drop_catalogues(tmp_path / "landing", now - timedelta(minutes=5))
    resources = {
        "warehouse": WarehouseResource(duckdb_path=str(tmp_path / "w.duckdb")),
        "cache": CacheResource(),
        "clock": clock,
        "alerts": AlertsResource(),
        "sources": sources,
    }
    with dg.instance_for_test() as instance:
        # the first look waits for the files to settle; both catalogues landed in one
        # look: one run ingests them (a range of partitions)
        ingestion = ingest_dropped_files(instance, resources)
        [request] = ingestion.requests
        assert request.job_name == "deliver_files"
        assert request.tags["arbx/retailer"] == "falabella,ripley"
        assert [run.success for run in ingestion.runs] == [True]

        # What the UI does when someone materializes matches and what follows them on an
        # instance that never built match_model: no model is stored, none is built here.
        selection = dg.AssetSelection.assets(opportunities).upstream() - dg.AssetSelection.assets(
            raw_prices, "match_model"
        )
        run = dg.materialize(
            ALL_ASSETS, instance=instance, resources=resources, selection=selection
        )
        assert run.success
        assert dg.AssetKey("match_model") not in {
            e.asset_key for e in run.get_asset_materialization_events()
        }
        warnings = [e.message for e in instance.all_logs(run.run_id) if e.level >= 30]
        assert any("no stored match model" in (m or "") for m in warnings)

    with DuckDBWarehouse(tmp_path / "w.duckdb") as warehouse:
        matched = warehouse.query(
            "SELECT canonical_id, count(*) AS n FROM product_matches GROUP BY canonical_id"
        )
        assert matched.filter(matched["n"] == 2).height == len(PRODUCTS)
        found = warehouse.query("SELECT * FROM opportunities").to_dicts()
    assert _spreads(found) == {("falabella", "ripley")}


# --- a real deployment: `arbx up` on an empty database, the daemon does the rest -----------

API_KEY = "deployment-key-0123456789"


def _arbx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_arbx(env, *args, timeout=240)


@pytest.fixture
def deployment(fresh_postgres_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`arbx up` (webserver, daemon, API) on a database of its own, with short sensor and
    automation intervals; `arbx down` afterwards, whatever happened."""
    env = {
        **clean_env(),
        "ARBX_HOME": str(tmp_path / "state"),
        "ARBX_POSTGRES_URL": fresh_postgres_url,
        "ARBX_SOURCES": str(file_drop_sources(tmp_path)),
        # Looks every 5 s instead of 30 / 60, and each run's steps in the run's process
        # (a process per step costs ~4 s of imports each on this 2-core machine: 200 s
        # instead of 90 for the whole test). Neither changes what runs or when it may.
        "ARBX_FILE_DROP_INTERVAL_SECONDS": "5",
        "ARBX_AUTOMATION_INTERVAL_SECONDS": "5",
        "ARBX_STEP_EXECUTOR": "in_process",
        "ARBX_TEST_WEBSERVER_PORT": str(free_port()),
        "ARBX_TEST_API_PORT": str(free_port()),
        "ARBX_API_KEYS": f"test={API_KEY}",
    }
    try:
        yield env
    finally:
        stopped = _arbx(env, "down")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def _opportunities(url: str) -> list[dict[str, object]]:
    """The warehouse's opportunities; none while its tables do not exist yet."""
    try:
        with PostgresWarehouse(url) as warehouse:
            return warehouse.query("SELECT * FROM opportunities").to_dicts()
    except Exception as exc:  # the first run has not migrated the warehouse yet
        if "opportunities" in str(exc) and "not exist" in str(exc):
            return []
        raise


def _failures(instance: dg.DagsterInstance) -> str:
    """What went wrong in the daemon's runs, so a red test says why."""
    lines = []
    for record in instance.get_run_records():
        run = record.dagster_run
        lines.append(f"{run.job_name} {run.status.value} {dict(run.tags)}")
        for event in instance.all_logs(run.run_id):
            if event.dagster_event is not None and event.dagster_event.is_failure:
                lines.append(f"  {event.step_key or 'run'}: {event.message}")
    return "\n".join(lines) or "no run was launched"


def _up(env: dict[str, str]) -> None:
    port, api_port = env["ARBX_TEST_WEBSERVER_PORT"], env["ARBX_TEST_API_PORT"]
    started = _arbx(env, "up", "--port", port, "--api-port", api_port)
    assert started.returncode == 0, started.stdout + started.stderr


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


def _file_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [
        r.dagster_run
        for r in instance.get_run_records(filters=dg.RunsFilter(tags={"arbx/trigger": "file-drop"}))
    ]


def _finished_runs(instance: dg.DagsterInstance, deadline: float) -> list[dg.DagsterRun]:
    """Every run of the instance, once none is queued or going (or at ``deadline``)."""
    while True:
        runs = [r.dagster_run for r in instance.get_run_records()]
        if all(r.is_finished for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(2)


@pytest.mark.services
@pytest.mark.slow
def test_a_fresh_deployment_turns_dropped_catalogues_into_opportunities_unattended(
    deployment: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = deployment["ARBX_POSTGRES_URL"]
    port = deployment["ARBX_TEST_WEBSERVER_PORT"]
    _up(deployment)
    # The API drives the webserver `arbx up` started, on whatever port it was given.
    pipeline = _api_answer(deployment, "/api/pipeline/status")
    assert pipeline.status_code == 200, pipeline.text
    assert "file_drop_sensor" in {s["name"] for s in pipeline.json()["sensors"]}

    _drop_catalogues(tmp_path / "landing", datetime.now(UTC) - timedelta(minutes=1))
    monkeypatch.setenv("ARBX_POSTGRES_URL", url)  # what the instance's dagster.yaml reads
    with dg.DagsterInstance.from_config(str(tmp_path / "state" / "dagster_home")) as instance:
        found: list[dict[str, object]] = []
        deadline = time.monotonic() + 240
        while not found and time.monotonic() < deadline:
            time.sleep(3)
            found = _opportunities(url)
        assert found, _failures(instance)
        assert _spreads(found) == {("falabella", "ripley")}

        # Nobody materialized anything: every run came from the daemon's sensors (the
        # file drops' run, which refreshes downstream too when one run holds them, and the
        # automation when a look needs it), and the match model was built on the way. A
        # tier's schedule may tick meanwhile (at :00 or :30), and its runs are the daemon's
        # too. The runs are left to finish (the last assets after the opportunities), so
        # that the deployment stops with nothing in flight and every run can be judged.
        # The delivery's run may end before the automation's next look has seen its
        # listings and asked for the model: wait for that look, then for every run.
        model_key = dg.AssetKey("match_model")
        model_deadline = time.monotonic() + 90
        while (
            instance.get_latest_materialization_event(model_key) is None
            and time.monotonic() < model_deadline
        ):
            time.sleep(2)
        runs = _finished_runs(instance, deadline=time.monotonic() + 60)
        assert all(r.is_success for r in runs), _failures(instance)
        launched_by = {
            r.tags.get("dagster/sensor_name") or r.tags.get("dagster/schedule_name") for r in runs
        }
        schedules = {"critical_tier", "important_tier", "tracking_tier"}
        assert "file_drop_sensor" in launched_by, _failures(instance)
        assert launched_by - schedules <= {"file_drop_sensor", "refresh_on_fresh_prices"}, (
            _failures(instance)
        )
        model = instance.get_latest_materialization_event(model_key)
        assert model is not None and model.run_id in {r.run_id for r in runs}

        # The webserver, started on the same database, sees the same opportunities asset.
        query = (
            '{ assetOrError(assetKey: {path: ["opportunities"]}) '
            "{ ... on Asset { assetMaterializations(limit: 1) { runId } } } }"
        )
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}).json()
        latest = answer["data"]["assetOrError"]["assetMaterializations"]
        assert latest and latest[0]["runId"] in {r.run_id for r in runs}
        # ...loaded from the code server `arbx up` started, which the daemon shares.
        query = (
            "{ workspaceOrError { ... on Workspace { locationEntries "
            "{ displayMetadata { key value } } } } }"
        )
        answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}).json()
        (entry,) = answer["data"]["workspaceOrError"]["locationEntries"]
        served = {m["key"]: m["value"] for m in entry["displayMetadata"]}
        run_dir = Path(deployment["ARBX_HOME"]) / "run"
        assert served.get("port") == (run_dir / "code_server.port").read_text()

        # Each dropped file ingested once (both in one run when one look saw both), and a
        # restarted daemon repeats none: the sensor's cursor lives in PostgreSQL.
        file_runs = _file_runs(instance)
        assert sorted(f for r in file_runs for f in r.tags["arbx/file"].split(",")) == [
            "falabella/catalogo.csv",
            "ripley/catalogo.csv",
        ]
        pid_file = Path(deployment["ARBX_HOME"]) / "run" / "daemon.pid"
        old_pid = int(pid_file.read_text())
        os.killpg(old_pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(old_pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        _up(deployment)  # starts what is not running: the daemon again
        assert int(pid_file.read_text()) != old_pid
        time.sleep(12)  # two sensor intervals and more
        assert len(_file_runs(instance)) == len(file_runs)
