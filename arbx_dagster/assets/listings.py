"""Normalised listings: the current state of each retailer SKU, ready for matching."""

import dagster as dg

from arbx_dagster.assets.conventions import (
    INGESTION,
    refreshed_table,
)
from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.metadata import stage_metadata, table_metadata
from arbx_dagster.pipeline.listings import REFRESH_MODES, refresh_listings
from arbx_dagster.resources import ClockResource, WarehouseResource


class ListingsConfig(dg.Config):
    """How much to normalise: ``auto`` only the listings whose raw prices changed since the
    last refresh (everything the first time); ``full`` every listing."""

    mode: str = "auto"


@dg.asset(
    deps=[raw_prices],
    **refreshed_table(INGESTION, "refined"),
    description=(
        "One row per (retailer, sku): latest prices and stock, first/last seen, and the "
        "matching keys derived from the title — folded text, canonical brand, model code, "
        "leaf category, normalised units. A run normalises only the listings whose raw "
        "prices changed since the last one (metadata: mode, listings); the daily "
        "rematch_all job normalises every listing."
    ),
)
def normalized_listings(
    context: dg.AssetExecutionContext,
    config: ListingsConfig,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    if config.mode not in REFRESH_MODES:
        raise dg.Failure(f"mode must be one of {', '.join(REFRESH_MODES)}, not {config.mode!r}")
    report = refresh_listings(warehouse.warehouse, now=clock.now(), mode=config.mode)
    table = table_metadata(warehouse.warehouse, "listings")
    return dg.MaterializeResult(metadata=stage_metadata(report, table))
