"""Cross-retailer spreads: the same product sold cheaper at one store than at the others.

Shared by every detector (glitches import these rather than copying them):

* Cost model (:func:`with_margin`). Buying one unit costs ``buy_price + shipping_cost_clp``;
  reselling it at the reference price pays ``fee_pct`` % of that price (marketplace
  commission / payment fees), rounded to the nearest peso::

      margin_clp = ref_price - buy_price - shipping_cost_clp - round(fee_pct / 100 * ref_price)
      roi_pct    = 100 * margin_clp / (buy_price + shipping_cost_clp)

* Confidence in [0, 1] is a product of independent discounts, each 1 when all is well:
  ``match x freshness x stability``.

  - match: the lower ``match_probability`` of the listings involved (a wrong match is a
    fake spread). Unknown probability counts as 0.
  - freshness: ``0.5 ** (age_hours / 24)``, age of the *older* price relative to ``now``.
    The 24 h half-life equals the slowest polling interval (the ``tracking`` tier): a price
    polled on schedule never loses more than about half, a week-old one keeps under 1 %.
  - stability: ``0.5 ** (volatility / 0.05)`` with the higher volatility of the listings
    (``volatility.py``: mean absolute daily log change). A listing that moves 5 % a day on
    average halves the confidence; a flat one (volatility 0) keeps it whole.

* Ids: ``opportunity_id`` is the sha256 hex of ``kind|canonical_id|buy_retailer|buy_sku``,
  so the same opportunity keeps its id across runs while its prices change.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.history import as_utc
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, conform, empty

FRESHNESS_HALF_LIFE_HOURS = 24.0
STABILITY_HALF_VOLATILITY = 0.05


def with_margin(frame: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Add ``margin_clp`` and ``roi_pct`` from ``buy_price`` and ``ref_price`` (model above)."""
    ref = pl.col("ref_price")
    cost = pl.col("buy_price") + thresholds.shipping_cost_clp
    fee = (ref * (thresholds.fee_pct / 100.0)).round(0).cast(pl.Int64)
    margin = (ref - cost - fee).cast(pl.Int64)
    return frame.with_columns(margin_clp=margin).with_columns(
        roi_pct=100.0 * pl.col("margin_clp") / cost
    )


def freshness(last_seen: pl.Expr, now: datetime) -> pl.Expr:
    """Half-life decay with the age of a price; future timestamps count as age 0."""
    age_hours = ((pl.lit(as_utc(now)) - last_seen).dt.total_seconds() / 3600.0).clip(0.0)
    return pl.lit(0.5).pow(age_hours / FRESHNESS_HALF_LIFE_HOURS).fill_null(0.0)


def stability(volatility: pl.Expr) -> pl.Expr:
    """Half-life decay with a listing's volatility (missing volatility counts as flat)."""
    vol = volatility.fill_null(0.0).clip(0.0)
    return pl.lit(0.5).pow(vol / STABILITY_HALF_VOLATILITY)


def _sha256_hex(values: pl.Series) -> pl.Series:
    # Polars has no cryptographic hash and its own ``hash`` is not stable across versions;
    # this runs once per *reported* opportunity, never per observation.
    return pl.Series([hashlib.sha256(v.encode()).hexdigest() for v in values], dtype=pl.String)


def opportunity_id(*parts: str | pl.Expr) -> pl.Expr:
    """Stable id: sha256 hex of the ``|``-joined parts (string literals or columns)."""
    exprs = [pl.lit(p) if isinstance(p, str) else p for p in parts]
    joined = pl.concat_str([e.cast(pl.String).fill_null("") for e in exprs], separator="|")
    return joined.map_batches(_sha256_hex, return_dtype=pl.String)


def enabled_listings(market: pl.DataFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Market rows of enabled retailers, with ``volatility`` present (0 when unknown)."""
    lf = market.lazy().filter(pl.col("retailer").is_in(list(thresholds.enabled_retailers)))
    if "volatility" not in market.columns:
        lf = lf.with_columns(volatility=pl.lit(0.0))
    return lf.with_columns(pl.col("volatility").cast(pl.Float64).fill_null(0.0))


def shown(column: str) -> pl.Expr:
    """A shown, plausible price (``None`` means not shown; zero is never real)."""
    return pl.col(column).fill_null(0) > 0


def find_spreads(market: pl.DataFrame, thresholds: Thresholds, now: datetime) -> pl.DataFrame:
    """One spread per canonical product sold by at least two enabled retailers.

    Buy: the in-stock listing with the lowest effective price (the offer price, or the card
    price when ``include_card_prices`` and it is lower; then ``buy_price_type='card'``).
    Reference: the cheapest in-stock *offer* price at any other retailer — the gap anyone
    can see, and the conservative one (not the median or the dearest store). Card prices never
    set the reference, and a store that cannot sell the product now does not set its price.
    Kept when the margin and ROI clear the thresholds (cost model in the module docstring).
    """
    if market.is_empty():
        return empty(OPPORTUNITY_SCHEMA)
    listings = enabled_listings(market, thresholds).filter(pl.col("canonical_id").is_not_null())

    use_card = (
        pl.lit(thresholds.include_card_prices)
        & shown("price_card")
        & (~shown("price_offer") | (pl.col("price_card") < pl.col("price_offer")))
    )
    buys = (
        listings.filter(pl.col("in_stock").fill_null(False))
        .with_columns(
            buy_price=pl.when(use_card).then(pl.col("price_card")).otherwise(pl.col("price_offer")),
            buy_price_type=pl.when(use_card).then(pl.lit("card")).otherwise(pl.lit("offer")),
        )
        .filter(shown("buy_price"))
        .sort("buy_price", "retailer", "sku")
        .unique(subset=["canonical_id"], keep="first", maintain_order=True)
        .select(
            "canonical_id",
            "buy_price",
            "buy_price_type",
            "category",
            product_name="name",
            buy_retailer="retailer",
            buy_sku="sku",
            buy_url="url",
            buy_match="match_probability",
            buy_seen="last_seen",
            buy_volatility="volatility",
        )
    )
    refs = listings.filter(pl.col("in_stock").fill_null(False) & shown("price_offer")).select(
        "canonical_id",
        ref_retailer="retailer",
        ref_price="price_offer",
        ref_match="match_probability",
        ref_seen="last_seen",
        ref_volatility="volatility",
    )
    pairs = (
        buys.join(refs, on="canonical_id", how="inner")
        .filter(pl.col("ref_retailer") != pl.col("buy_retailer"))
        .sort("ref_price", "ref_retailer")
        .unique(subset=["canonical_id"], keep="first", maintain_order=True)
    )
    match = pl.min_horizontal(pl.col("buy_match", "ref_match").fill_null(0.0)).clip(0.0, 1.0)
    # Unknown when either is unknown (``min_horizontal`` alone would skip a null).
    observed = pl.when(pl.all_horizontal(pl.col("buy_seen", "ref_seen").is_not_null())).then(
        pl.min_horizontal("buy_seen", "ref_seen")
    )
    volatility = pl.max_horizontal("buy_volatility", "ref_volatility")
    spreads = (
        with_margin(pairs, thresholds)
        .filter(
            (pl.col("margin_clp") >= thresholds.min_margin_clp)
            & (pl.col("roi_pct") >= thresholds.min_roi_pct)
        )
        .with_columns(
            kind=pl.lit("spread"),
            confidence=match * freshness(observed, now) * stability(volatility),
            severity=pl.lit(None, dtype=pl.String),
            observed_at=observed,
        )
        .with_columns(
            opportunity_id=opportunity_id(
                "spread", pl.col("canonical_id"), pl.col("buy_retailer"), pl.col("buy_sku")
            )
        )
        .sort(["margin_clp", "opportunity_id"], descending=[True, False])
        .collect()
    )
    return conform(spreads, OPPORTUNITY_SCHEMA)
