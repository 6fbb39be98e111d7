"""The single Dagster code location: ``defs`` is what workspace.yaml loads."""

from __future__ import annotations

import os

import dagster as dg

from arbx_dagster.assets import ALL_ASSETS, ALL_CHECKS
from arbx_dagster.resources import CacheResource, ClockResource, WarehouseResource
from arbx_dagster.settings import Settings


def _secret(name: str) -> dg.EnvVar | None:
    """An optional secret: read from the environment at run time, never shown in the UI."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "warehouse": WarehouseResource(
            postgres_url=_secret("ARBX_POSTGRES_URL") if settings.postgres_url else None,
            duckdb_path=str(settings.duckdb_path),
        ),
        "cache": CacheResource(redis_url=_secret("ARBX_REDIS_URL") if settings.redis_url else None),
        "clock": ClockResource(as_of=os.environ.get("ARBX_AS_OF") or None),
    }


full_refresh_job = dg.define_asset_job(
    "full_refresh",
    selection=dg.AssetSelection.all(),
    description="Materialize the whole graph: raw prices through intelligence metrics.",
)

_settings = Settings.from_env()

defs = dg.Definitions(
    assets=ALL_ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[full_refresh_job],
    resources=build_resources(_settings),
    # DuckDB allows one writing process: run every step in the run's own process.
    executor=dg.in_process_executor if _settings.warehouse_engine == "duckdb" else None,
)
