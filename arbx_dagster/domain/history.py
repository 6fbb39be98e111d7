"""Daily price history: the one series every detector and the volatility tiers read.

Scrapers observe a listing many times a day; detectors reason about days. A day's *close*
is the last successful observation of that day. Failed fetches (``fetch_status`` other than
``ok``) never become prices: a day with only failures has no row, so a gap stays a gap and
is never read as a drop or as "price unchanged".

Days are calendar days in Chile (``MARKET_TZ``), because that is where events start and end:
CyberDay begins at midnight Santiago time, which is 03:00 or 04:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from arbx_dagster.domain.schema import PRICE_HISTORY_SCHEMA, conform

MARKET_TZ = "America/Santiago"

_PRICE_COLUMNS = ("price_list", "price_offer", "price_card", "in_stock")


def market_day(expr: pl.Expr, tz: str = MARKET_TZ) -> pl.Expr:
    """Calendar day in the market's time zone of a UTC datetime column."""
    return expr.dt.convert_time_zone(tz).dt.date()


def as_utc(moment: datetime) -> datetime:
    """Make ``moment`` timezone-aware UTC; naive datetimes are taken to already be UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def day_of(moment: datetime, tz: str = MARKET_TZ) -> date:
    """Market calendar day of one instant (same rule as :func:`market_day`)."""
    return pl.select(market_day(pl.lit(as_utc(moment)), tz)).item()


def daily_close(observations: pl.DataFrame, tz: str = MARKET_TZ) -> pl.DataFrame:
    """Raw observations (``RAW_PRICE_SCHEMA``) -> one close per listing and day.

    Only ``fetch_status == 'ok'`` rows count. The close takes all prices and the stock flag
    from the day's last observation together (not the last non-null of each column), so a
    card price that disappeared during the day is null at the close, as the shopper saw it.
    ``observations`` counts the successful observations of that day.
    """
    closes = (
        observations.lazy()
        .filter(pl.col("fetch_status") == "ok")
        .with_columns(day=market_day(pl.col("observed_at"), tz))
        .group_by("retailer", "sku", "day")
        .agg(
            *[pl.col(c).sort_by("observed_at").last() for c in _PRICE_COLUMNS],
            observations=pl.len(),
        )
        .sort("retailer", "sku", "day")
        .collect()
    )
    return conform(closes, PRICE_HISTORY_SCHEMA)
