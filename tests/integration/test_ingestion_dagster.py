"""Ingestion as a Dagster citizen: tier schedules, the file-drop sensor, backfills."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from cli_process import clean_env, run_arbx
from instances import ephemeral_instance, stored_instance
from service_harness import look_for_files
from sources_files import file_drop_sources

from arbx_dagster.assets.conditions import ON_FRESH_PRICES
from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.partitions import partition_retailers
from arbx_dagster.automation.jobs import DOWNSTREAM, REFRESH_TAGS
from arbx_dagster.automation.schedules import CRON_BY_TIER
from arbx_dagster.automation.sensors import file_drop_sensor, new_retailer_partitions
from arbx_dagster.cli.backfill import backfill_batches
from arbx_dagster.definitions import defs
from arbx_dagster.domain.schema import RETAILERS
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)
from arbx_dagster.storage.warehouse import DuckDBWarehouse

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 12:00 in Santiago
HEADER = "sku,name,brand,price_list,price_offer,price_card,in_stock,observed_at\n"


def _export(folder: Path, retailer: str, day: date, rows: int, bad: int = 0) -> Path:
    """A retailer's dated export: ``rows`` good observations and ``bad`` broken ones."""
    lines = [
        f"{retailer}-{i},Smart TV {40 + i} pulgadas,LG,{300_000 + i * 1_000},"
        f"{250_000 + i * 1_000},,true,{day.isoformat()}T15:00:00Z"
        for i in range(rows)
    ]
    lines += [f"{retailer}-bad-{i},Radio,SONY,59990,-5,,true,{day}T15:00:00Z" for i in range(bad)]
    path = folder / "landing" / retailer / f"{day.isoformat()}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- schedules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "cron"),
    [("critical", "*/30 * * * *"), ("important", "0 */6 * * *"), ("tracking", "0 3 * * *")],
)
def test_each_tier_has_its_cadence_and_refreshes_only_its_tier(tier: str, cron: str) -> None:
    schedule = defs.resolve_schedule_def(f"{tier}_tier")
    assert schedule.cron_schedule == cron == CRON_BY_TIER[tier]
    assert schedule.execution_timezone == "America/Santiago"
    job = defs.resolve_job_def(schedule.job_name)
    assert job.partitions_def is not None
    config = job.get_run_config_for_partition_key("2026-11-23|ripley")
    assert config["ops"]["raw_prices"]["config"]["tier"] == tier

    with stored_instance() as instance:
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=NOW,
            repository_def=defs.get_repository_def(),
        )
        requests = schedule.evaluate_tick(context).run_requests
    assert requests is not None
    assert sorted(r.partition_key for r in requests) == [
        f"2026-11-23|{r}" for r in sorted(RETAILERS)
    ]
    assert all(r.tags["arbx/tier"] == tier for r in requests)
    assert sorted(r.tags["arbx/retailer"] for r in requests) == sorted(RETAILERS)


def test_ingestion_retries_with_backoff() -> None:
    # (one run per retailer at a time: tests/integration/test_ingestion_concurrency.py)
    policy = raw_prices.op.retry_policy
    assert policy is not None and policy.max_retries >= 3
    assert policy.backoff == dg.Backoff.EXPONENTIAL


# --- fresh prices refresh everything downstream -------------------------------------------

MATCH_MODEL = dg.AssetKey("match_model")
TODAY = "2026-11-23"  # NOW's market day


def _land(instance: dg.DagsterInstance, *partitions: str) -> None:
    """What a tier run leaves in the instance: raw-price partitions materialized."""
    for partition in partitions:
        instance.report_runless_asset_event(
            dg.AssetMaterialization("raw_prices", partition=partition)
        )


def _stand_in(key: dg.AssetKey) -> dg.AssetsDefinition:
    @dg.asset(key=key)
    def _asset() -> None:
        """Records a materialization of ``key`` without running the pipeline stage."""

    return _asset


def _requested(tick: dg.EvaluateAutomationConditionsResult) -> set[dg.AssetKey]:
    return {result.key for result in tick.results if not result.true_subset.is_empty}


def test_every_downstream_asset_shares_the_fresh_prices_condition() -> None:
    graph = defs.resolve_asset_graph()
    downstream = DOWNSTREAM.resolve(graph)
    conditions = {key: graph.get(key).automation_condition for key in downstream - {MATCH_MODEL}}
    assert conditions and set(conditions.values()) == {ON_FRESH_PRICES}
    # the match model retrains once a day, not on every price refresh (or when missing)
    assert graph.get(MATCH_MODEL).automation_condition.get_label() == "daily_or_when_missing"


def test_todays_prices_landing_refreshes_downstream_once() -> None:
    graph = defs.resolve_asset_graph()
    downstream = DOWNSTREAM.resolve(graph)
    with ephemeral_instance() as instance:

        def evaluate(cursor: object = None) -> dg.EvaluateAutomationConditionsResult:
            return dg.evaluate_automation_conditions(
                defs, instance, evaluation_time=NOW, cursor=cursor
            )

        # Yesterday's state: one retailer-day of prices and every downstream asset built;
        # the other ~1,000 day x retailer partitions since HISTORY_START never landed.
        _land(instance, f"2026-11-22|{RETAILERS[0]}")
        for key in downstream:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        tick = evaluate()
        assert tick.total_requested == 0

        _land(instance, f"{TODAY}|{RETAILERS[0]}")
        tick = evaluate(tick.cursor)
        refreshed = downstream - {MATCH_MODEL}
        assert _requested(tick) == refreshed  # one run: listings and everything after them
        assert tick.get_requested_partitions(dg.AssetKey("normalized_listings")) == {None}

        # The run the automation sensor launches lands them; the same update is not
        # requested again, however many ticks follow.
        assert dg.materialize([_stand_in(key) for key in sorted(refreshed)], instance=instance)
        for _ in range(2):
            tick = evaluate(tick.cursor)
            assert tick.total_requested == 0

        # The next tier run (another retailer) is a new update.
        _land(instance, f"{TODAY}|{RETAILERS[-1]}")
        assert _requested(evaluate(tick.cursor)) == refreshed


def test_a_cold_start_builds_the_match_model_with_the_first_listings_in_one_tick() -> None:
    graph = defs.resolve_asset_graph()
    downstream = DOWNSTREAM.resolve(graph)
    with ephemeral_instance() as instance:
        tick = dg.evaluate_automation_conditions(defs, instance, evaluation_time=NOW)
        assert tick.total_requested == 0  # nothing landed yet: nothing to refresh
        _land(instance, f"{TODAY}|{RETAILERS[0]}")  # the very first tier run
        tick = dg.evaluate_automation_conditions(
            defs, instance, evaluation_time=NOW, cursor=tick.cursor
        )
        # no waiting for the 05:00 cron: the missing model is built with the first listings,
        # and everything after it is refreshed, on the same tick (all unpartitioned: one run)
        assert _requested(tick) == downstream
        assert all(tick.get_requested_partitions(key) == {None} for key in downstream)


def test_a_missing_match_model_is_built_at_once_and_never_blocks_matching() -> None:
    graph = defs.resolve_asset_graph()
    downstream = DOWNSTREAM.resolve(graph)
    with ephemeral_instance() as instance:
        # An instance where everything but the model exists (its storage was wiped, or
        # the deployment predates it): the model is requested on the first look.
        _land(instance, f"2026-11-22|{RETAILERS[0]}")
        for key in downstream - {MATCH_MODEL}:
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
        tick = dg.evaluate_automation_conditions(defs, instance, evaluation_time=NOW)
        assert _requested(tick) == {MATCH_MODEL}

        # Its run failed, so it is still missing: fresh prices still refresh matches
        # (product_matches then rebuilds the model itself) rather than wait for the cron.
        _land(instance, f"{TODAY}|{RETAILERS[0]}")
        tick = dg.evaluate_automation_conditions(
            defs, instance, evaluation_time=NOW, cursor=tick.cursor
        )
        assert _requested(tick) == downstream - {MATCH_MODEL}


# --- the file-drop sensor ------------------------------------------------------------


def test_the_file_drop_sensor_ingests_each_file_exactly_once(tmp_path: Path) -> None:
    sources = SourcesResource(path=str(file_drop_sources(tmp_path)))
    clock = ClockResource(as_of=NOW.isoformat())
    _export(tmp_path, "ripley", date(2026, 11, 22), rows=3, bad=1)

    with dg.instance_for_test() as instance:

        def evaluate(cursor: str | None) -> dg.SensorResult:
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"sources": sources, "clock": clock}
            )
            return file_drop_sensor(context)

        first = evaluate(None)  # the file is new: wait one look to be sure it is complete
        assert first.run_requests == []
        second = evaluate(first.cursor)
        assert [r.partition_key for r in second.run_requests] == ["2026-11-22|ripley"]
        # ripley's folder is new: the same tick makes it a retailer partition
        [added] = second.dynamic_partitions_requests
        assert (added.partitions_def_name, added.partition_keys) == ("retailer", ["ripley"])
        instance.add_dynamic_partitions(added.partitions_def_name, added.partition_keys)
        # A restarted daemon continues from the stored cursor: nothing is ingested twice.
        assert evaluate(second.cursor).run_requests == []
        assert evaluate(second.cursor).run_requests == []

        request = second.run_requests[0]
        result = dg.materialize(
            [raw_prices],
            partition_key=request.partition_key,
            run_config=request.run_config,
            instance=instance,
            resources={
                "warehouse": WarehouseResource(duckdb_path=str(tmp_path / "w.duckdb")),
                "cache": CacheResource(),
                "clock": clock,
                "alerts": AlertsResource(),
                "sources": sources,
            },
        )
    assert result.success
    with DuckDBWarehouse(tmp_path / "w.duckdb") as warehouse:
        assert warehouse.scalar("SELECT count(*) FROM raw_prices") == 3
        assert warehouse.scalar("SELECT count(*) FROM quarantine") == 1


def test_files_landing_while_a_refresh_waits_are_only_ingested(tmp_path: Path) -> None:
    """A look's files are one run that refreshes downstream too, idle or behind a running
    refresh; while a refresh waits to start they are only ingested (that refresh takes
    everything changed since the last one), so deliveries faster than a refresh keep at
    most one refresh waiting."""
    resources = {
        "sources": SourcesResource(path=str(file_drop_sources(tmp_path))),
        "clock": ClockResource(as_of=NOW.isoformat()),
    }
    _export(tmp_path, "ripley", date(2026, 11, 22), rows=3)
    _export(tmp_path, "paris", date(2026, 11, 22), rows=3)

    def jobs_asked(instance: dg.DagsterInstance) -> list[str]:
        requests, _ = look_for_files(instance, resources)  # the first look lets them settle
        return sorted(str(r.job_name) for r in requests)

    with dg.instance_for_test() as instance:
        assert jobs_asked(instance) == ["deliver_files"]
    for status, jobs in (
        (dg.DagsterRunStatus.STARTED, ["deliver_files"]),
        (dg.DagsterRunStatus.NOT_STARTED, ["ingest_files", "ingest_files"]),
    ):
        with dg.instance_for_test() as instance:
            instance.add_run(
                dg.DagsterRun(
                    job_name="refresh_downstream",
                    run_id=f"refresh-{status.value.lower()}",
                    status=status,
                    tags=REFRESH_TAGS,
                )
            )
            assert jobs_asked(instance) == jobs


def test_a_file_being_written_is_not_picked_up(tmp_path: Path) -> None:
    sources = SourcesResource(path=str(file_drop_sources(tmp_path)))
    clock = ClockResource(as_of=NOW.isoformat())
    partial = tmp_path / "landing" / "paris" / "2026-11-22.csv.part"
    partial.parent.mkdir(parents=True)
    partial.write_text(HEADER + "p-1,Mouse,HP,9990,8990,,true,2026-11-22T15:00:00Z\n")
    context = dg.build_sensor_context(resources={"sources": sources, "clock": clock})
    first = file_drop_sensor(context)
    context = dg.build_sensor_context(
        cursor=first.cursor, resources={"sources": sources, "clock": clock}
    )
    assert file_drop_sensor(context).run_requests == []


# --- backfills ---------------------------------------------------------------------------


def _arbx(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_arbx(env, *args, timeout=300)


@pytest.mark.slow
def test_a_backfill_from_dated_exports_run_twice_lands_the_same_rows(tmp_path: Path) -> None:
    days = [date(2026, 11, 10) + timedelta(days=i) for i in range(7)]
    for day in days:
        for retailer in RETAILERS:
            _export(tmp_path, retailer, day, rows=4, bad=1)
    env = {
        **clean_env(),
        "ARBX_HOME": str(tmp_path / "state"),
        "ARBX_SOURCES": str(file_drop_sources(tmp_path)),
    }
    counts = []
    for _ in range(2):
        done = _arbx(env, "backfill", "--from", "2026-11-10", "--to", "2026-11-16", "--no-refresh")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "84 observations stored, 21 quarantined" in done.stdout
        with DuckDBWarehouse(tmp_path / "state" / "warehouse.duckdb") as warehouse:
            counts.append(
                [
                    *warehouse.query(
                        "SELECT retailer, count(*) AS n FROM raw_prices GROUP BY retailer "
                        "ORDER BY retailer"
                    ).rows(),
                    ("quarantine", warehouse.scalar("SELECT count(*) FROM quarantine")),
                ]
            )
    assert counts[0] == counts[1] == [*((r, 28) for r in sorted(RETAILERS)), ("quarantine", 21)]


def test_a_backfill_of_some_retailers_runs_only_their_partitions() -> None:
    days = [date(2026, 11, 10), date(2026, 11, 11)]
    retailers = ["falabella", "paris", "ripley"]
    assert backfill_batches(days, ["ripley"], retailers) == [
        ["2026-11-10|ripley"],
        ["2026-11-11|ripley"],
    ]
    [whole] = backfill_batches(days, retailers, retailers)  # one run, one contiguous range
    assert (whole[0], whole[-1], len(whole)) == ("2026-11-10|falabella", "2026-11-11|ripley", 6)


@pytest.mark.slow  # the CLI in a subprocess: importing `defs` alone takes ~10 s
def test_a_backfill_of_one_retailer_lands_only_that_retailers_days(tmp_path: Path) -> None:
    days = [date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)]
    for day in days:
        for retailer in RETAILERS:
            _export(tmp_path, retailer, day, rows=2)
    env = {
        **clean_env(),
        "ARBX_HOME": str(tmp_path / "state"),
        "ARBX_SOURCES": str(file_drop_sources(tmp_path)),
    }
    done = _arbx(
        env, "backfill", "--from", "2026-11-10", "--to", "2026-11-11", "--retailer", "ripley",
        "--no-refresh",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Backfilled 2 day(s) x 1 retailer(s): 4 observations stored" in done.stdout
    with DuckDBWarehouse(tmp_path / "state" / "warehouse.duckdb") as warehouse:
        landed = warehouse.query(
            "SELECT retailer, CAST(observed_at AS DATE) AS day, count(*) AS n FROM raw_prices "
            "GROUP BY ALL ORDER BY day"
        ).rows()
    assert landed == [("ripley", days[0], 2), ("ripley", days[1], 2)]  # not the 12th, no others


def test_a_new_retailer_folder_becomes_a_partition_without_a_reload() -> None:
    with ephemeral_instance() as instance:
        assert "lider" not in partition_retailers(instance)
        [added] = new_retailer_partitions(instance, ["lider", "ripley"])
        assert (added.partitions_def_name, added.partition_keys) == ("retailer", ["lider"])
        assert new_retailer_partitions(instance, ["ripley"]) == []
