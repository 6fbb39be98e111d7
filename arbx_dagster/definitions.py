"""The single Dagster code location: ``defs`` is what workspace.yaml loads."""

import dagster as dg

from arbx_dagster.assets import ALL_ASSETS, ALL_CHECKS
from arbx_dagster.assets.conventions import with_storage_kind
from arbx_dagster.automation import AUTOMATION_INTERVAL_SECONDS, SENSOR_STATUS
from arbx_dagster.automation.jobs import ALL_JOBS, DOWNSTREAM, REFRESH_TAGS
from arbx_dagster.automation.maintenance import maintenance, maintenance_schedule
from arbx_dagster.automation.schedules import MATCH_SCHEDULES, TIER_SCHEDULES
from arbx_dagster.automation.sensors import (
    alert_on_run_failure,
    file_drop_sensor,
    retailer_partitions,
)
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)
from arbx_dagster.settings import Settings, settings


def _secret(name: str) -> dg.EnvVar:
    """A secret read from the environment at run time, never shown in the UI."""
    return dg.EnvVar(name)


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(
            postgres_url=_secret("ARBX_POSTGRES_URL") if settings.postgres_url else None,
            duckdb_path=str(settings.duckdb_path),
        ),
        "cache": CacheResource(
            redis_url=_secret("ARBX_REDIS_URL") if settings.redis_url else None,
            prefix=settings.redis_prefix,  # the API's too (ARBX_REDIS_PREFIX)
            home=str(settings.home),
        ),
        "clock": ClockResource(as_of=settings.as_of, market_events=settings.market_events),
        "sources": SourcesResource(path=str(settings.sources) if settings.sources else None),
        "alerts": AlertsResource(urls=_secret("ARBX_ALERT_URLS") if settings.alert_urls else ""),
    }


# Fresh prices landing (a tier run, a dropped file) refresh everything downstream.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "refresh_on_fresh_prices",
    target=DOWNSTREAM,
    run_tags=REFRESH_TAGS,
    default_status=SENSOR_STATUS,
    minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
    description="Materializes downstream assets when fresh prices land (on_fresh_prices).",
)


def _executor(settings: Settings) -> dg.ExecutorDefinition | None:
    """How a run executes its steps: in the run's own process on DuckDB (it allows one
    writing process) or with ARBX_STEP_EXECUTOR=in_process (a small machine, where a
    process per step costs more than it brings); else Dagster's default, a process per
    step (ARBX_STEP_EXECUTOR=multiprocess)."""
    choice = settings.step_executor.strip().lower()
    if choice not in ("", "in_process", "multiprocess"):
        raise ValueError(f"ARBX_STEP_EXECUTOR={choice!r}: use in_process or multiprocess")
    if settings.warehouse_engine == "duckdb" or choice == "in_process":
        return dg.in_process_executor
    return None


defs = dg.Definitions(
    assets=with_storage_kind(ALL_ASSETS, settings().warehouse_engine),
    asset_checks=ALL_CHECKS,
    jobs=[*ALL_JOBS, maintenance],
    schedules=[*TIER_SCHEDULES, *MATCH_SCHEDULES, maintenance_schedule],
    sensors=[file_drop_sensor, retailer_partitions, automation_sensor, alert_on_run_failure],
    resources=build_resources(settings()),
    executor=_executor(settings()),
)
