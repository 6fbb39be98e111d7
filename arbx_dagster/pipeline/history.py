"""Stage 4: daily price history per listing."""

from __future__ import annotations

from arbx_dagster.domain.history import daily_close
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.warehouse import Warehouse

_OBSERVATIONS_SQL = """
SELECT retailer, sku, observed_at, price_list, price_offer, price_card, in_stock, fetch_status
FROM raw_prices
"""


def refresh_price_history(warehouse: Warehouse) -> StageReport:
    """Recompute daily closes from raw observations and upsert them (idempotent)."""
    history = daily_close(warehouse.query(_OBSERVATIONS_SQL))
    warehouse.upsert("price_history", history, ["retailer", "sku", "day"])
    return StageReport(
        rows=history.height,
        counts={
            "days": history["day"].n_unique(),
            "listings": history.select("retailer", "sku").n_unique(),
            "first_day": str(history["day"].min()),
            "last_day": str(history["day"].max()),
        },
        preview=history.sort("day", descending=True).head(10),
    )
