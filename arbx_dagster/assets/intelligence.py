"""Intelligence metrics: volatility, scraping tiers and market measurements."""

import dagster as dg

from arbx_dagster.assets.conventions import (
    INTELLIGENCE,
    refreshed_table,
)
from arbx_dagster.assets.metadata import png_markdown, stage_metadata, table_metadata
from arbx_dagster.assets.opportunities import opportunities
from arbx_dagster.pipeline.intelligence import refresh_intelligence
from arbx_dagster.reporting.charts import top_opportunities_chart, volatility_by_category_chart
from arbx_dagster.resources import CacheResource, ClockResource, WarehouseResource
from arbx_dagster.storage.settings_store import read_thresholds


@dg.asset(
    deps=[opportunities],
    **refreshed_table(INTELLIGENCE, "serving"),
    description=(
        "How much prices move per listing, category and retailer, and the scraping tier each "
        "listing should be in (critical every 30 min, important every 6 h, tracking daily), "
        "from measured volatility and open opportunities. Tables: listing_tiers, "
        "intelligence_metrics."
    ),
)
def intelligence_metrics(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    cache: CacheResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    report = refresh_intelligence(
        warehouse.warehouse, now=clock.now(), cache_stats=cache.cache.cache_stats()
    )
    tiers_chart = volatility_by_category_chart(report.preview)
    code = read_thresholds(warehouse.warehouse).currency
    prices_chart = top_opportunities_chart(report.frames.get("top_opportunities"), code)
    return dg.MaterializeResult(
        metadata=stage_metadata(
            report,
            table_metadata(warehouse.warehouse, "intelligence_metrics"),
            volatility_by_category=png_markdown(tiers_chart, "scraping tier by category"),
            top_opportunities_prices=png_markdown(prices_chart, "prices of the top opportunities"),
        )
    )
