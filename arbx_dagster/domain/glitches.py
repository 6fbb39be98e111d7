"""Price glitches: a listing suddenly priced far below what it, and the market, normally charge.

Chilean stores have been made to honour mistaken prices, so a real glitch is worth a lot and
a false alarm costs trust. The rule therefore asks several robust references to agree; each
reference is one function below (a later rule adds more, e.g. the 30-day pre-event minimum):

* ``common_price``   — the listing's most frequent price over the 90 days before today.
* ``robust_log_stats`` — median and MAD of the log price over the same days. The MAD gets a
  floor (``MAD_FLOOR``, 5 % in log terms) because step-shaped retail prices make it zero.
* ``others_reference`` — the same product at the *other* retailers (in stock or not: any
  shown price is evidence of the market level): per retailer its cheapest listing, then the
  lower median across retailers (an actual store's price, so ``ref_retailer`` can name it;
  with two other stores it is the cheaper one).
* ``market_move``    — how far the listing's retailer x category sits below normal that day:
  the median over its listings of log(price / common price), drops only. CyberDay, Black
  Friday or a scraper bug move a whole segment; the own-history references are scaled by that
  move, so a listing that merely followed its segment down is not a glitch, while one that
  fell far below it still is. (This is the segment's day-over-day change on an event's first
  day, and unlike it still recognises the event on its second.) A drop at *all* retailers is
  caught by ``others_reference``: the others are then just as cheap.

A listing is flagged when, with ``low = thresholds.glitch_ratio_low``:
``price <= low * common * exp(move)``, robust z (of log price minus move) <= ``Z_THRESHOLD``,
and (no other retailer shows the product, or ``price <= low * others``, or the others are
far *below* the listing — ``others <= low * price``, another store glitching deeper, which
says nothing about the market level). It needs
``MIN_HISTORY_DAYS`` priced days of history and must be in stock (an unbuyable glitch is not an
opportunity).

The reference reported is the *lower* of the (market-adjusted) common price and the others'
price: the conservative one, so severity is never overstated. ``ref_retailer`` is null when the
listing's own history is the reference. Severity by ``price / reference``: at or below
``glitch_ratio_high`` 'high', ``glitch_ratio_medium`` 'medium', otherwise 'low'.

Offer and card prices are separate series: each is evaluated on its own history and against
the same price type at the other stores, never mixed; card glitches say ``buy_price_type='card'``.
Glitches are reported whatever their margin (a CLP 4 pair of headphones is news); margin and
ROI use the spread cost model. Confidence = freshness x depth x corroboration, where depth =
``min(1, history days / 30)`` and corroboration = ``0.75 + 0.25 * match probability`` when
another retailer confirmed the price is abnormal, ``0.75`` when only the listing's own history
did. Ids hash ``glitch|canonical_id|retailer|sku|price_type``: offer and card glitches of one
listing are separate opportunities.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.history import day_of, market_day
from arbx_dagster.domain.opportunities import (
    enabled_listings,
    freshness,
    opportunity_id,
    shown,
    with_margin,
)
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, conform, empty

WINDOW_DAYS = 90
MIN_HISTORY_DAYS = 7
FULL_DEPTH_DAYS = 30
MAD_FLOOR = 0.05  # log units: a listing's "normal" wiggle is never taken as below ~5 %
MAD_TO_SIGMA = 1.4826  # scales the MAD to a standard deviation for normal data
Z_THRESHOLD = -3.5  # the usual cut-off for robust (modified) z-scores
MIN_SEGMENT_LISTINGS = 3  # fewer listings say nothing about a market-wide move
UNCORROBORATED = 0.75

SERIES: dict[str, str] = {"offer": "price_offer", "card": "price_card"}

_KEY = ["retailer", "sku"]


def current_prices(
    market: pl.DataFrame, thresholds: Thresholds, column: str, now: datetime
) -> pl.LazyFrame:
    """Listings showing a price in ``column`` now, with the day that price belongs to."""
    fallback = day_of(now)
    return (
        enabled_listings(market, thresholds)
        .filter(shown(column))
        .with_columns(
            price=pl.col(column).cast(pl.Int64),
            current_day=market_day(pl.col("last_seen")).fill_null(fallback),
        )
    )


def past_prices(history: pl.DataFrame, current: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """Daily closes of each current listing in the window before its current day."""
    days = current.select(*_KEY, "current_day")
    return (
        history.lazy()
        .filter(shown(column))
        .select(*_KEY, "day", past_price=pl.col(column).cast(pl.Int64))
        .join(days, on=_KEY, how="inner")
        .filter(
            (pl.col("day") < pl.col("current_day"))
            & (pl.col("day") >= pl.col("current_day") - timedelta(days=WINDOW_DAYS))
        )
    )


def common_price(past: pl.LazyFrame) -> pl.LazyFrame:
    """Most frequent past price per listing (ties: the lower price, the conservative one)."""
    counts = past.group_by(*_KEY, "past_price").agg(n=pl.len())
    days = past.group_by(_KEY).agg(history_days=pl.col("day").n_unique())
    return (
        counts.sort("n", "past_price", descending=[True, False])
        .unique(subset=_KEY, keep="first", maintain_order=True)
        .select(*_KEY, common_price="past_price")
        .join(days, on=_KEY, how="inner")
    )


def robust_log_stats(past: pl.LazyFrame) -> pl.LazyFrame:
    """Median of log price and its MAD-based spread, floored so flat histories don't divide by 0."""
    log_price = pl.col("past_price").log()
    return (
        past.with_columns(log_price=log_price)
        .with_columns(dev=(pl.col("log_price") - pl.col("log_price").median().over(_KEY)).abs())
        .group_by(_KEY)
        .agg(
            log_median=pl.col("log_price").median(),
            log_scale=(pl.col("dev").median() * MAD_TO_SIGMA).clip(MAD_FLOOR),
        )
    )


def others_reference(current: pl.LazyFrame) -> pl.LazyFrame:
    """Lower median of the other retailers' cheapest price for the same canonical product."""
    per_retailer = (
        current.filter(pl.col("canonical_id").is_not_null())
        .sort("price", "sku")
        .unique(subset=["canonical_id", "retailer"], keep="first", maintain_order=True)
        .select(
            "canonical_id",
            others_retailer="retailer",
            others_price="price",
            others_match="match_probability",
        )
    )
    return (
        current.select(*_KEY, "canonical_id")
        .join(per_retailer, on="canonical_id", how="inner")
        .filter(pl.col("others_retailer") != pl.col("retailer"))
        .sort(*_KEY, "others_price", "others_retailer")
        .with_columns(
            pos=pl.int_range(pl.len()).over(_KEY),
            n=pl.len().over(_KEY),
        )
        .filter(pl.col("pos") == (pl.col("n") - 1) // 2)
        .select(*_KEY, "others_retailer", "others_price", "others_match")
    )


def market_move(scored: pl.LazyFrame) -> pl.LazyFrame:
    """Add ``move``: the median log(price / common price) of the listing's retailer x category
    that day, when it is a drop and the segment has enough listings (else 0).

    Measured against each listing's common price rather than yesterday's close, so an event or
    a scraper bug that began yesterday is still recognised on its second day.
    """
    segment = ["retailer", "category", "current_day"]
    change = (pl.col("price") / pl.col("common_price")).log()
    return scored.with_columns(
        move=pl.when(pl.len().over(segment) >= MIN_SEGMENT_LISTINGS)
        .then(change.median().over(segment).clip(upper_bound=0.0))
        .otherwise(0.0)
    )


def _severity(ratio: pl.Expr, thresholds: Thresholds) -> pl.Expr:
    return (
        pl.when(ratio <= thresholds.glitch_ratio_high)
        .then(pl.lit("high"))
        .when(ratio <= thresholds.glitch_ratio_medium)
        .then(pl.lit("medium"))
        .otherwise(pl.lit("low"))
    )


def _series_glitches(
    history: pl.DataFrame,
    market: pl.DataFrame,
    thresholds: Thresholds,
    now: datetime,
    price_type: str,
) -> pl.LazyFrame:
    column = SERIES[price_type]
    low = thresholds.glitch_ratio_low
    current = current_prices(market, thresholds, column, now)
    past = past_prices(history, current, column)

    scored = (
        current.join(common_price(past), on=_KEY, how="inner")
        .join(robust_log_stats(past), on=_KEY, how="inner")
        .join(others_reference(current), on=_KEY, how="left")
        .pipe(market_move)
        .with_columns(
            # Own-history references follow the segment's move that day; others' prices
            # are current already.
            expected_common=pl.col("common_price") * pl.col("move").exp(),
            robust_z=(pl.col("price").log() - pl.col("log_median") - pl.col("move"))
            / pl.col("log_scale"),
        )
    )
    others_confirm = pl.col("others_price").is_not_null() & (
        pl.col("price") <= low * pl.col("others_price")
    )
    # Another store far *below* this price is glitching deeper itself: it says nothing
    # about the market level, so the listing's own history decides.
    others_uninformative = pl.col("others_price").is_null() | (
        pl.col("others_price") <= low * pl.col("price")
    )
    others_agree = others_confirm | others_uninformative
    flagged = scored.filter(
        (pl.col("history_days") >= MIN_HISTORY_DAYS)
        & pl.col("in_stock").fill_null(False)
        & (pl.col("price") <= low * pl.col("expected_common"))
        & (pl.col("robust_z") <= Z_THRESHOLD)
        & others_agree
    )
    others_lower = others_confirm & (pl.col("others_price") < pl.col("expected_common"))
    corroboration = (
        pl.when(others_confirm)
        .then(
            UNCORROBORATED
            + (1 - UNCORROBORATED)
            * pl.min_horizontal(pl.col("match_probability", "others_match").fill_null(0.0)).clip(
                0.0, 1.0
            )
        )
        .otherwise(UNCORROBORATED)
    )
    depth = (pl.col("history_days") / FULL_DEPTH_DAYS).clip(upper_bound=1.0)
    glitches = flagged.select(
        "canonical_id",
        "category",
        "in_stock",
        "last_seen",
        product_name="name",
        buy_retailer="retailer",
        buy_sku="sku",
        buy_url="url",
        buy_price="price",
        buy_price_type=pl.lit(price_type),
        ref_retailer=pl.when(others_lower).then(pl.col("others_retailer")),
        ref_price=pl.when(others_lower)
        .then(pl.col("others_price"))
        .otherwise(pl.col("expected_common").round(0).cast(pl.Int64)),
        confidence=freshness(pl.col("last_seen"), now) * depth * corroboration,
    )
    return with_margin(glitches, thresholds).with_columns(
        kind=pl.lit("glitch"),
        severity=_severity(pl.col("buy_price") / pl.col("ref_price"), thresholds),
        observed_at=pl.col("last_seen"),
        opportunity_id=opportunity_id(
            "glitch",
            pl.col("canonical_id"),
            pl.col("buy_retailer"),
            pl.col("buy_sku"),
            price_type,
        ),
    )


def find_glitches(
    history: pl.DataFrame, market: pl.DataFrame, thresholds: Thresholds, now: datetime
) -> pl.DataFrame:
    """Glitches in the offer and card series of every enabled listing (rule in module doc)."""
    if market.is_empty() or history.is_empty():
        return empty(OPPORTUNITY_SCHEMA)
    frames = [
        conform(_series_glitches(history, market, thresholds, now, t).collect(), OPPORTUNITY_SCHEMA)
        for t in SERIES
    ]
    # Most severe first.
    return pl.concat(frames).sort(pl.col("buy_price") / pl.col("ref_price"), "opportunity_id")
