"""Stage 5: spreads and glitches, confirmed, merged into the opportunities' lifecycle."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitch_confirmation import confirm_glitches, needs_confirmation
from arbx_dagster.domain.glitches import glitch_details
from arbx_dagster.domain.lifecycle import (
    OPPORTUNITY_STATE_SCHEMA,
    apply_lifecycle,
    summarize_transitions,
)
from arbx_dagster.domain.market_events import DEFAULT_CALENDAR, EventCalendar
from arbx_dagster.domain.opportunities import drop_glitching_buys, spread_details
from arbx_dagster.domain.review import hold_for_review
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, conform
from arbx_dagster.domain.volatility import listing_volatility
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.labels import read_labels
from arbx_dagster.storage.settings_store import read_thresholds
from arbx_dagster.storage.warehouse import Warehouse

# Enough history for the glitch detector's 90-day common price, plus slack.
HISTORY_DAYS = 120

# Every current listing with the canonical product it belongs to.
MARKET_SQL = """
SELECT l.retailer, l.sku, l.name, l.name_norm, l.model_codes, l.category, l.url, l.price_list,
       l.price_offer, l.price_card, l.in_stock, l.is_first_party, l.condition, l.last_seen,
       m.canonical_id, m.match_probability
FROM listings AS l
JOIN product_matches AS m ON m.retailer = l.retailer AND m.sku = l.sku
"""

# Re-fetch listings (retailer, sku, url, name) -> fresh observations (RAW_PRICE_SCHEMA).
Refetch = Callable[[pl.DataFrame], pl.DataFrame]


def read_history(warehouse: Warehouse, now: datetime, days: int = HISTORY_DAYS) -> pl.DataFrame:
    return warehouse.query(
        "SELECT * FROM price_history WHERE day >= $1", [(now - timedelta(days=days)).date()]
    )


def read_market(warehouse: Warehouse, history: pl.DataFrame) -> pl.DataFrame:
    """Listings with their canonical product and how much their price moves."""
    volatility = listing_volatility(history).select("retailer", "sku", "volatility")
    return warehouse.query(MARKET_SQL).join(volatility, on=["retailer", "sku"], how="left")


def confirm_severe_glitches(
    glitches: pl.DataFrame,
    previous: pl.DataFrame,
    thresholds: Thresholds,
    refetch: Refetch | None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """High-severity glitches are re-fetched before anyone is told: a mistaken *scrape* is
    likelier than a 90 % price cut. Confirmed ones stay (prices from the re-fetch), the
    ones the store already fixed are dropped, the rest wait as ``pending``. A glitch
    confirmed in an earlier run at the same price is not fetched again."""
    severe = glitches.filter(needs_confirmation())
    others = glitches.filter(~needs_confirmation())
    known = previous.filter(pl.col("confirmation") == "confirmed").select(
        "opportunity_id", "buy_price"
    )
    still = severe.join(known, on=["opportunity_id", "buy_price"], how="semi")
    unknown = severe.join(known, on=["opportunity_id", "buy_price"], how="anti")
    counts = {"reconfirmed": still.height, "confirmed": 0, "rejected": 0, "pending": 0}
    parts = [others, still.with_columns(confirmation=pl.lit("confirmed"))]
    if not unknown.is_empty():
        if refetch is None:
            parts.append(unknown.with_columns(confirmation=pl.lit("pending")))
            counts["pending"] = unknown.height
        else:
            wanted = unknown.select(retailer="buy_retailer", sku="buy_sku", url="buy_url")
            outcome = confirm_glitches(unknown, refetch(wanted), thresholds)
            parts += [
                outcome.confirmed.with_columns(confirmation=pl.lit("confirmed")),
                outcome.pending.with_columns(confirmation=pl.lit("pending")),
            ]
            counts.update(
                confirmed=outcome.confirmed.height,
                rejected=outcome.rejected.height,
                pending=outcome.pending.height,
            )
    schema = {**OPPORTUNITY_SCHEMA}
    return pl.concat([conform(p, schema) for p in parts]), counts


def detect_opportunities(
    warehouse: Warehouse,
    *,
    now: datetime,
    previous: pl.DataFrame,
    refetch: Refetch | None = None,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> tuple[pl.DataFrame, dict[str, object]]:
    """This run's opportunities (``OPPORTUNITY_SCHEMA``) and counts for metadata;
    ``calendar`` says which days are the market's sale events."""
    thresholds = read_thresholds(warehouse)
    history = read_history(warehouse, now)
    market = read_market(warehouse, history)
    glitches = glitch_details(history, market, thresholds, now, calendar)
    # A listing caught glitching is reported as a glitch, not also as a spread.
    spreads = drop_glitching_buys(spread_details(market, thresholds, now), glitches)
    # Too good to be true is verified by a person, not alerted.
    confirmed = read_labels(warehouse).filter(pl.col("is_match"))
    spreads = hold_for_review(spreads, market, confirmed)
    glitches, confirmation = confirm_severe_glitches(glitches, previous, thresholds, refetch)
    detected = pl.concat([conform(spreads, OPPORTUNITY_SCHEMA), glitches])
    counts: dict[str, object] = {
        "detected": detected.height,
        "spreads": spreads.height,
        "spreads_held_for_review": int(spreads["review"].is_not_null().sum()),
        "glitches": glitches.height,
        "glitch_confirmation": confirmation,
        "glitch_types": dict(glitches.group_by("glitch_type").len().sort("glitch_type").rows()),
        "thresholds": {
            "min_margin_clp": thresholds.min_margin_clp,
            "min_roi_pct": thresholds.min_roi_pct,
        },
    }
    return detected, counts


def read_opportunity_state(warehouse: Warehouse) -> pl.DataFrame:
    return conform(warehouse.query("SELECT * FROM opportunities"), OPPORTUNITY_STATE_SCHEMA)


def refresh_opportunities(
    warehouse: Warehouse,
    *,
    now: datetime,
    refetch: Refetch | None = None,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> StageReport:
    previous = read_opportunity_state(warehouse)
    detected, counts = detect_opportunities(
        warehouse, now=now, previous=previous, refetch=refetch, calendar=calendar
    )
    state = apply_lifecycle(previous, detected, now)
    warehouse.upsert("opportunities", state, ["opportunity_id"])
    live = state.filter(pl.col("status") != "expired")
    counts.update(
        live=live.height,
        transitions=summarize_transitions(previous, state),
        total_margin_clp=int(live["margin_clp"].sum() or 0),
    )
    preview = live.sort("margin_clp", descending=True).select(
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
        "reason",
        "review",
    )
    return StageReport(rows=state.height, counts=counts, preview=preview.head(15))
