"""Stage 5: spreads and glitches, merged into the opportunities' lifecycle."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from arbx_dagster.domain.glitches import find_glitches
from arbx_dagster.domain.lifecycle import (
    OPPORTUNITY_STATE_SCHEMA,
    apply_lifecycle,
    summarise_transitions,
)
from arbx_dagster.domain.opportunities import find_spreads
from arbx_dagster.domain.volatility import listing_volatility
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.settings_store import read_thresholds
from arbx_dagster.storage.warehouse import Warehouse

# Enough history for the glitch detector's 90-day common price, plus slack.
HISTORY_DAYS = 120

# Every current listing with the canonical product it belongs to.
MARKET_SQL = """
SELECT l.retailer, l.sku, l.name, l.category, l.url, l.price_list, l.price_offer, l.price_card,
       l.in_stock, l.is_first_party, l.last_seen, m.canonical_id, m.match_probability
FROM listings AS l
JOIN product_matches AS m ON m.retailer = l.retailer AND m.sku = l.sku
"""


def read_market(warehouse: Warehouse, history: pl.DataFrame) -> pl.DataFrame:
    """Listings with their canonical product and how much their price moves."""
    volatility = listing_volatility(history).select("retailer", "sku", "volatility")
    return warehouse.query(MARKET_SQL).join(volatility, on=["retailer", "sku"], how="left")


def refresh_opportunities(warehouse: Warehouse, *, now: datetime) -> StageReport:
    thresholds = read_thresholds(warehouse)
    history = warehouse.query(
        "SELECT * FROM price_history WHERE day >= $1", [(now - timedelta(days=HISTORY_DAYS)).date()]
    )
    market = read_market(warehouse, history)
    glitches = find_glitches(history, market, thresholds, now)
    # A listing caught glitching is reported as a glitch, not also as a spread.
    spreads = find_spreads(market, thresholds, now).join(
        glitches.select("buy_retailer", "buy_sku"), on=["buy_retailer", "buy_sku"], how="anti"
    )
    detected = pl.concat([spreads, glitches])
    previous = warehouse.query("SELECT * FROM opportunities").select(list(OPPORTUNITY_STATE_SCHEMA))
    state = apply_lifecycle(previous, detected, now)
    warehouse.upsert("opportunities", state, ["opportunity_id"])
    transitions = summarise_transitions(previous, state)
    live = state.filter(pl.col("status") != "expired")
    return StageReport(
        rows=state.height,
        counts={
            "detected": detected.height,
            "spreads": spreads.height,
            "glitches": glitches.height,
            "live": live.height,
            "transitions": transitions,
            "total_margin_clp": int(live["margin_clp"].sum() or 0),
            "thresholds": {
                "min_margin_clp": thresholds.min_margin_clp,
                "min_roi_pct": thresholds.min_roi_pct,
            },
        },
        preview=live.sort("margin_clp", descending=True)
        .select(
            "kind",
            "product_name",
            "buy_retailer",
            "buy_price",
            "ref_retailer",
            "ref_price",
            "margin_clp",
            "roi_pct",
            "confidence",
            "severity",
            "status",
        )
        .head(15),
    )
