"""Daily price history per listing."""

import dagster as dg

from arbx_dagster.assets.conventions import (
    OPPORTUNITIES,
    refreshed_table,
)
from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.matching import product_matches
from arbx_dagster.assets.metadata import stage_metadata, table_metadata
from arbx_dagster.pipeline.history import refresh_price_history
from arbx_dagster.resources import WarehouseResource


@dg.asset(
    deps=[raw_prices, product_matches],
    **refreshed_table(OPPORTUNITIES, "refined"),
    description=(
        "Daily close (last good observation of the Chilean calendar day) of the list, offer "
        "and card prices of every listing; joined with product_matches it gives the series "
        "per canonical product and retailer. Failed fetches never become prices."
    ),
)
def price_history(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    report = refresh_price_history(warehouse.warehouse)
    table = table_metadata(warehouse.warehouse, "price_history")
    return dg.MaterializeResult(metadata=stage_metadata(report, table))
