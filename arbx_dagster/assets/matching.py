"""Product matches: the same real-world product recognised across retailers."""

import dagster as dg

from arbx_dagster.assets.listings import normalized_listings
from arbx_dagster.assets.metadata import stage_metadata
from arbx_dagster.pipeline.matching import refresh_matches
from arbx_dagster.resources import ClockResource, WarehouseResource


@dg.asset(
    deps=[normalized_listings],
    group_name="matching",
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"polars", "scikitlearn"},
    description=(
        "Canonical products and the listings that belong to them (at most one per retailer), "
        "from vectorized blocking on model codes and text similarity, rapidfuzz pair scoring "
        "and transitive, one-per-retailer clustering. Tables: product_matches, match_pairs, "
        "canonical_products."
    ),
)
def product_matches(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
) -> dg.MaterializeResult:
    report = refresh_matches(warehouse.warehouse, now=clock.now())
    return dg.MaterializeResult(metadata=stage_metadata(report))
