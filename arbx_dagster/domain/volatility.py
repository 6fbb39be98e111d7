"""How much a listing's offer price moves, and the polling tier that follows from it.

Volatility is the mean absolute daily log change of the offer price over the last
``WINDOW_DAYS`` days::

    volatility = sum(|log p_t - log p_prev|) / number of consecutive priced-day pairs

which equals (share of days with a change) x (mean absolute log change when it changes): it
grows both with how often and with how much the price moves, and reads as "the price moves
about X % a day on average". Pairs are consecutive *observed* days: a failed or missing day is
skipped, never read as a change. A pair counts for the window when its later day is in it.

Tiers use fixed cut-offs on that measure, so a calm market can have no critical listing and
an event week can have many — unlike quantiles, which would force a fixed share into each:

* ``critical``  volatility >= 0.02 (about six 10 % moves a month, or a 2 % move every day),
  or the listing is the buy side of an open opportunity (``hot_listings``);
* ``important`` volatility >= 0.003 (about one 10 % move a month);
* ``tracking``  anything calmer, including flat prices and listings with a single day.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from arbx_dagster.domain.schema import (
    LISTING_KEY_SCHEMA,
    LISTING_TIER_SCHEMA,
    TIERS,
    conform,
    empty,
)

WINDOW_DAYS = 30
CRITICAL_MIN = 0.02
IMPORTANT_MIN = 0.003

_KEY = ["retailer", "sku"]
_TIER_ORDER = ("critical", "important", "tracking")


def _hot_keys(hot_listings: pl.DataFrame | None) -> pl.DataFrame:
    """(retailer, sku) of hot listings; opportunity frames (buy_retailer/buy_sku) work too."""
    if hot_listings is None:
        return pl.DataFrame(schema=LISTING_KEY_SCHEMA)
    if "retailer" not in hot_listings.columns and "buy_retailer" in hot_listings.columns:
        hot_listings = hot_listings.rename({"buy_retailer": "retailer", "buy_sku": "sku"})
    return hot_listings.select(pl.col(k).cast(pl.String) for k in _KEY).unique()


def listing_volatility(
    history: pl.DataFrame,
    hot_listings: pl.DataFrame | None = None,
    now_day: date | None = None,
) -> pl.DataFrame:
    """``PRICE_HISTORY_SCHEMA`` closes -> ``LISTING_TIER_SCHEMA``: volatility, changes, tier.

    ``now_day`` defaults to the latest day in ``history``. Hot listings absent from the history
    are still returned (critical, volatility 0) so that they get polled.
    """
    hot = _hot_keys(hot_listings)
    if history.is_empty() and hot.is_empty():
        return empty(LISTING_TIER_SCHEMA)
    if now_day is None:
        now_day = history.get_column("day").max() if not history.is_empty() else date.today()
    start = now_day - timedelta(days=WINDOW_DAYS)

    listings = pl.concat([history.select(_KEY).lazy(), hot.lazy()]).unique()
    changes = (
        history.lazy()
        .filter((pl.col("price_offer").fill_null(0) > 0) & (pl.col("day") <= now_day))
        .sort(*_KEY, "day")
        .with_columns(change=pl.col("price_offer").log().diff().over(_KEY))
        .filter((pl.col("day") > start) & pl.col("change").is_not_null())
        .group_by(_KEY)
        .agg(
            volatility=pl.col("change").abs().mean(),
            price_changes=(pl.col("change") != 0).sum(),
        )
    )
    hot_flag = hot.lazy().with_columns(hot=pl.lit(True))
    tiers = (
        listings.join(changes, on=_KEY, how="left")
        .join(hot_flag, on=_KEY, how="left")
        .with_columns(
            volatility=pl.col("volatility").fill_null(0.0),
            price_changes=pl.col("price_changes").fill_null(0),
        )
        .with_columns(
            tier=pl.when(pl.col("hot").fill_null(False) | (pl.col("volatility") >= CRITICAL_MIN))
            .then(pl.lit("critical"))
            .when(pl.col("volatility") >= IMPORTANT_MIN)
            .then(pl.lit("important"))
            .otherwise(pl.lit("tracking"))
        )
        .with_columns(interval_minutes=pl.col("tier").replace_strict(TIERS, return_dtype=pl.Int32))
        .sort(_KEY)
        .collect()
    )
    return conform(tiers, LISTING_TIER_SCHEMA)


def volatility_by(tiers: pl.DataFrame, listings: pl.DataFrame, by: str) -> pl.DataFrame:
    """Per ``by`` (e.g. 'category', 'retailer'): listings, mean/median volatility, tier counts.

    ``listings`` supplies the grouping column (any frame keyed by retailer, sku, such as the
    listings or market table); tiered listings it does not know fall in a null group.
    """
    if by in tiers.columns:
        frame = tiers
    elif by in listings.columns:
        labels = listings.select(*_KEY, by).unique(subset=_KEY, keep="first")
        frame = tiers.join(labels, on=_KEY, how="left")
    else:
        raise ValueError(f"cannot group by {by!r}: column not in tiers or listings")
    return (
        frame.group_by(by)
        .agg(
            pl.len().cast(pl.Int32).alias("n_listings"),
            pl.col("volatility").mean().alias("mean_volatility"),
            pl.col("volatility").median().alias("median_volatility"),
            *[(pl.col("tier") == t).sum().cast(pl.Int32).alias(f"n_{t}") for t in _TIER_ORDER],
        )
        .sort(by, nulls_last=True)
    )


def tier_moves(previous: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """Listings tiered in both runs whose tier changed: retailer, sku, from_tier, to_tier."""
    return (
        previous.select(*_KEY, from_tier="tier")
        .join(current.select(*_KEY, "volatility", to_tier="tier"), on=_KEY, how="inner")
        .filter(pl.col("from_tier") != pl.col("to_tier"))
        .select(*_KEY, "from_tier", "to_tier", "volatility")
        .sort(_KEY)
    )
