"""Data-quality checks block bad data and raise 🚨 alerts; a failed run raises one too."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from instances import ephemeral_instance

from arbx_dagster.assets import ALL_ASSETS, ALL_CHECKS
from arbx_dagster.automation.sensors import alert_on_run_failure
from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import DuckDBWarehouse

AS_OF = "2026-11-23T21:00:00+00:00"
NOW = datetime.fromisoformat(AS_OF)


def _resources(folder: Path) -> dict[str, Any]:
    sources = folder / "sources.yaml"
    sources.write_text(
        f"""
version: 1
archive: {{root: {folder / "archive"}}}
retailers:
  - name: simulator
    connector: simulator
    seed: 3
    n_products: 30
    days: 3
""",
        encoding="utf-8",
    )
    return {
        "warehouse": WarehouseResource(duckdb_path=str(folder / "w.duckdb")),
        "cache": CacheResource(),
        "clock": ClockResource(as_of=AS_OF),
        "alerts": AlertsResource(),
        "sources": SourcesResource(path=str(sources)),
    }


def _plant_a_negative_price(path: Path) -> None:
    """A row no connector would let through, as if written by a buggy tool."""
    row = conform(
        pl.DataFrame(
            {
                "retailer": ["ripley"],
                "sku": ["bad-1"],
                "name": ["TV"],
                "price_offer": [-5],
                "currency": ["CLP"],
                "fetch_status": ["ok"],
                "source": ["manual"],
                "observed_at": [NOW - timedelta(days=10)],
            }
        ),
        RAW_PRICE_SCHEMA,
    ).with_columns(ingested_at=pl.col("observed_at"))
    with DuckDBWarehouse(path) as warehouse:
        migrate(warehouse)
        warehouse.insert("raw_prices", row)


def test_a_failed_blocking_check_stops_downstream_and_raises_an_alert(
    tmp_path: Path, alert_receiver: Any
) -> None:
    _plant_a_negative_price(tmp_path / "w.duckdb")
    result = dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        resources=_resources(tmp_path),
        partition_key="2026-11-23|paris",
        instance=ephemeral_instance(),
        raise_on_error=False,
    )
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert "raw_prices_are_plausible" in failed
    materialized = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert materialized == {"raw_prices"}, "nothing downstream of a failed blocking check"
    assert not result.success

    alerts = alert_receiver.delivered("/alerts")
    assert any("raw_prices_are_plausible" in a["title"] for a in alerts)
    assert all(a["title"].startswith("🚨") for a in alerts)


@dg.asset(description="Fails on purpose.")
def broken() -> None:
    raise RuntimeError("the scraper exploded")


def test_a_failed_run_raises_a_system_error_alert(alert_receiver: Any, tmp_path: Path) -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize([broken], instance=instance, raise_on_error=False)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        assert run is not None
        with dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=run,
            resources={
                "cache": CacheResource(),
                "clock": ClockResource(as_of=AS_OF),
                "warehouse": WarehouseResource(duckdb_path=str(tmp_path / "w.duckdb")),
                "alerts": AlertsResource(),
            },
        ) as context:
            alert_on_run_failure(context.for_run_failure())
    (alert,) = alert_receiver.delivered("/alerts")
    assert alert["title"].startswith("🚨")
    assert "__ephemeral_asset_job__" in alert["title"]
    assert run.run_id in alert["message"]
