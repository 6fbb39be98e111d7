"""Stage 1: land raw price observations (validated; bad rows quarantined, never lost)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.domain.schema import RAW_PRICE_KEY, RAW_PRICE_SCHEMA
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.warehouse import Warehouse

# Re-ingesting a row refreshes everything but the moment it first landed.
_UPDATABLE = [c for c in RAW_PRICE_SCHEMA if c not in RAW_PRICE_KEY] + ["run_id"]


def ingest_observations(
    warehouse: Warehouse,
    observations: pl.DataFrame,
    *,
    now: datetime,
    run_id: str | None = None,
    source_location: str = "row",
) -> StageReport:
    """Validate and upsert ``observations``; fetched == stored + quarantined, always."""
    result = validate_observations(observations, now=now, source_location=source_location)
    accepted = result.accepted.with_columns(
        ingested_at=pl.lit(now).cast(RAW_PRICE_SCHEMA["observed_at"]),
        run_id=pl.lit(run_id, dtype=pl.String),
    )
    quarantined = result.quarantined.with_columns(run_id=pl.lit(run_id, dtype=pl.String))
    with warehouse.transaction():
        warehouse.upsert("raw_prices", accepted, RAW_PRICE_KEY, update=_UPDATABLE)
        warehouse.upsert("quarantine", quarantined, ["record_hash"])
    per_retailer = dict(accepted.group_by("retailer").len().sort("retailer").iter_rows())
    return StageReport(
        rows=accepted.height,
        counts={
            "fetched": observations.height,
            "stored": accepted.height,
            "quarantined": quarantined.height,
            "quarantine_reasons": result.reasons,
            "per_retailer": per_retailer,
            "listings": accepted.select("retailer", "sku").n_unique(),
        },
        preview=accepted.sort("observed_at", descending=True).head(10),
    )
