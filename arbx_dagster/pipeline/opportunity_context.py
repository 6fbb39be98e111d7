"""What an opportunities pass evaluates: the whole market, or some products with the context
a full pass would give them (``opportunity_scope.py`` says which products and why).

Evaluating some products exactly as a full pass would takes two market-wide quantities the
products share with the rest of the market, both rebuilt from what the last pass kept:

* the **segments' market moves** (median change per retailer x category x day): the stored
  changes of every other listing in the evaluated listings' segments plus the evaluated
  listings' new ones. Where a segment's move differs from the last pass's, every product
  with a listing in that segment is evaluated again.
* the **review fences** (per category): the stored gaps of every other product plus the
  evaluated products' new ones. Where a fence moved far enough to change an open spread's
  review, that spread's product is evaluated again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitch_references import SEGMENT, segment_moves
from arbx_dagster.domain.glitches import SEGMENT_MOVE_SCHEMA, SERIES, market_changes
from arbx_dagster.domain.history import day_of, market_day
from arbx_dagster.domain.market_events import EventCalendar
from arbx_dagster.domain.review import (
    Fences,
    fences_from,
    implausible_gap,
    product_gaps,
)
from arbx_dagster.domain.volatility import listing_volatility
from arbx_dagster.storage.warehouse import Warehouse

# Enough history for the glitch detector's 90-day common price, plus slack.
HISTORY_DAYS = 120
KEY = ["retailer", "sku"]
_SEGMENT_KEY = ["retailer", "category", "current_day", "price_type"]

# Every current listing with the canonical product it belongs to.
_MARKET_SQL = """
SELECT l.retailer, l.sku, l.name, l.name_norm, l.model_codes, l.category, l.url, l.price_list,
       l.price_offer, l.price_card, l.in_stock, l.is_first_party, l.condition, l.last_seen,
       m.canonical_id, m.match_probability
FROM {listings} AS l
JOIN {matches} AS m ON m.retailer = l.retailer AND m.sku = l.sku
"""
MARKET_SQL = _MARKET_SQL.format(listings="listings", matches="product_matches")

# The stored changes of every listing in the segments staged as {staged}.
_SEGMENT_ROWS_SQL = """
SELECT s.retailer, s.sku, s.price_type, s.canonical_id, s.category, s.current_day, s.change
FROM opportunity_segment_changes AS s JOIN {staged} AS g
    ON s.retailer = g.retailer AND s.current_day = g.current_day
    AND s.price_type = g.price_type AND coalesce(s.category, '') = coalesce(g.category, '')
"""


@dataclass(frozen=True)
class Evaluation:
    """The market rows a pass evaluates and the market-wide context they are judged in."""

    market: pl.DataFrame  # MARKET_SQL columns + volatility
    history: pl.DataFrame
    moves: pl.LazyFrame | None  # SEGMENT_MOVE_SCHEMA; None: computed over ``market``
    fences: Fences
    products: pl.DataFrame | None  # canonical_id evaluated; None: every product


def _history_start(now: datetime) -> date:
    return (now - timedelta(days=HISTORY_DAYS)).date()


def _latest_day(warehouse: Warehouse) -> date | None:
    return warehouse.scalar("SELECT max(day) FROM price_history")


def _with_volatility(
    market: pl.DataFrame, history: pl.DataFrame, now_day: date | None
) -> pl.DataFrame:
    volatility = listing_volatility(history, now_day=now_day).select(*KEY, "volatility")
    return market.join(volatility, on=KEY, how="left")


def full_evaluation(warehouse: Warehouse, now: datetime) -> Evaluation:
    history = warehouse.query("SELECT * FROM price_history WHERE day >= $1", [_history_start(now)])
    market = _with_volatility(warehouse.query(MARKET_SQL), history, _latest_day(warehouse))
    return Evaluation(market, history, None, fences_from(product_gaps(market)), None)


def _read_products(
    warehouse: Warehouse, products: pl.DataFrame, now: datetime, now_day: date | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    matches = warehouse.keyed_rows_sql("product_matches", "{staged}", ["canonical_id"])
    listings = warehouse.keyed_rows_sql("listings", matches, KEY)
    market = warehouse.query_with(_MARKET_SQL.format(listings=listings, matches=matches), products)
    rows = warehouse.keyed_rows_sql("price_history", "{staged}", KEY)
    history = warehouse.query_with(
        f"SELECT * FROM {rows} AS h WHERE h.day >= $1", market.select(KEY), [_history_start(now)]
    )
    return _with_volatility(market, history, now_day), history


def _spreads_under_new_fences(
    previous: pl.DataFrame, products: pl.DataFrame, before: Fences, after: Fences
) -> pl.DataFrame:
    """Products of the open spreads not evaluated whose review the new fences change."""
    if before == after:
        return pl.DataFrame(schema={"canonical_id": pl.String()})
    carried = previous.filter(
        pl.col("status").is_in(["new", "active"]) & (pl.col("kind") == "spread")
    ).join(products, on="canonical_id", how="anti")
    return carried.filter(implausible_gap(before).ne_missing(implausible_gap(after))).select(
        "canonical_id"
    )


def _segments(market: pl.DataFrame, stored: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """The segments (and price series) of the evaluated listings, now and at the last pass."""
    current = market.select(
        "retailer",
        "category",
        current_day=market_day(pl.col("last_seen")).fill_null(day_of(now)),
    ).join(pl.DataFrame({"price_type": list(SERIES)}), how="cross")
    return pl.concat([current, stored.select(_SEGMENT_KEY)], how="vertical_relaxed").unique()


def _segment_moves(changes: pl.DataFrame) -> pl.DataFrame:
    """``SEGMENT_MOVE_SCHEMA`` rows of stored or fresh change rows."""
    frames = [
        segment_moves(part.with_columns(panel=pl.lit(0, dtype=pl.Int64)))
        .with_columns(price_type=pl.lit(price_type))
        .collect()
        for (price_type,), part in changes.group_by("price_type")
    ]
    if not frames:
        return pl.DataFrame(schema=SEGMENT_MOVE_SCHEMA)
    return pl.concat(frames).select(list(SEGMENT_MOVE_SCHEMA)).cast(SEGMENT_MOVE_SCHEMA)  # type: ignore[arg-type]


def _moved(
    warehouse: Warehouse, market: pl.DataFrame, fresh: pl.DataFrame, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the segments' moves with the fresh changes, the products in segments whose move
    differs from the last pass's)."""
    keys = market.select(KEY)
    old = warehouse.query_with(
        "SELECT s.* FROM opportunity_segment_changes AS s JOIN {staged} AS k "
        "ON s.retailer = k.retailer AND s.sku = k.sku",
        keys,
    )
    stored = warehouse.query_with(_SEGMENT_ROWS_SQL, _segments(market, old, now))
    fresh = fresh.select(stored.columns)
    before = _segment_moves(stored)
    after = _segment_moves(
        pl.concat([stored.join(keys, on=KEY, how="anti"), fresh], how="vertical_relaxed")
    )
    on = [*SEGMENT, "price_type"]
    compared = before.join(after, on=on, how="full", coalesce=True, nulls_equal=True)
    moved = compared.filter(pl.col("move").fill_null(0.0) != pl.col("move_right").fill_null(0.0))
    products = stored.join(
        moved.select("retailer", "category", "current_day", "price_type"),
        on=_SEGMENT_KEY,
        nulls_equal=True,
    ).select("canonical_id")
    return after, products.drop_nulls().unique()


def partial_evaluation(
    warehouse: Warehouse,
    *,
    now: datetime,
    products: pl.DataFrame,
    previous: pl.DataFrame,
    thresholds: Thresholds,
    calendar: EventCalendar,
) -> Evaluation:
    """``products`` and the ones a changed fence or segment move affects (module docstring)."""
    now_day = _latest_day(warehouse)
    market, history = _read_products(warehouse, products, now, now_day)

    def widen(more: pl.DataFrame) -> None:
        nonlocal products, market, history
        more = more.join(products, on="canonical_id", how="anti").unique()
        if more.height:
            extra_market, extra_history = _read_products(warehouse, more, now, now_day)
            products = pl.concat([products, more])
            market = pl.concat([market, extra_market], how="vertical_relaxed")
            history = pl.concat([history, extra_history], how="vertical_relaxed")

    stored_gaps = warehouse.query(
        "SELECT canonical_id, category, gap FROM opportunity_product_gaps"
    )
    others = stored_gaps.join(products, on="canonical_id", how="anti")
    fences = fences_from(pl.concat([others, product_gaps(market)], how="vertical_relaxed"))
    widen(_spreads_under_new_fences(previous, products, fences_from(stored_gaps), fences))
    fresh = market_changes(history, market, thresholds, now, calendar)
    moves, moved = _moved(warehouse, market, fresh, now)
    widen(moved)
    return Evaluation(market, history, moves.lazy(), fences, products)
