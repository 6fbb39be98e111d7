"""Opportunities: cross-retailer spreads and price glitches, with their lifecycle."""

import dagster as dg

from arbx_dagster.assets.history import price_history
from arbx_dagster.assets.metadata import stage_metadata
from arbx_dagster.pipeline.opportunities import refresh_opportunities
from arbx_dagster.resources import ClockResource, WarehouseResource


@dg.asset(
    deps=[price_history],
    group_name="opportunities",
    automation_condition=dg.AutomationCondition.eager(),
    kinds={"polars"},
    description=(
        "Money found: spreads (buy at the cheapest in-stock retailer, compared with the "
        "cheapest other retailer, after costs) and glitches (a price far below the listing's "
        "common price and the same product elsewhere). Thresholds come from system_config. "
        "One row per opportunity: new → active → expired."
    ),
)
def opportunities(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, clock: ClockResource
) -> dg.MaterializeResult:
    report = refresh_opportunities(warehouse.warehouse, now=clock.now())
    context.log.info("opportunity transitions: %s", report.counts["transitions"])
    return dg.MaterializeResult(metadata=stage_metadata(report))
