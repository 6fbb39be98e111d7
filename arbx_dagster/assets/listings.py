"""Normalised listings: the current state of each retailer SKU, ready for matching."""

import dagster as dg

from arbx_dagster.assets.conventions import (
    INGESTION,
    refreshed_table,
)
from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.metadata import stage_metadata, table_metadata
from arbx_dagster.pipeline.listings import refresh_listings
from arbx_dagster.resources import ClockResource, WarehouseResource


@dg.asset(
    deps=[raw_prices],
    **refreshed_table(INGESTION, "refined"),
    description=(
        "One row per (retailer, sku): latest prices and stock, first/last seen, and the "
        "matching keys derived from the title — folded text, canonical brand, model code, "
        "leaf category, normalised units."
    ),
)
def normalized_listings(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
) -> dg.MaterializeResult:
    report = refresh_listings(warehouse.warehouse, now=clock.now())
    table = table_metadata(warehouse.warehouse, "listings")
    return dg.MaterializeResult(metadata=stage_metadata(report, table))
