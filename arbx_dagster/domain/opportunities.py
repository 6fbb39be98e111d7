"""Cross-retailer spreads: the same product sold cheaper at one store than at the others.

Shared by every detector (glitches import these rather than copying them):

* Cost model (:func:`with_margin`). Buying one unit costs ``buy_price + shipping_cost_clp``;
  reselling it at the reference price pays ``fee_pct`` % of that price (marketplace
  commission / payment fees), rounded to the nearest peso::

      margin_clp = ref_price - buy_price - shipping_cost_clp - round(fee_pct / 100 * ref_price)
      roi_pct    = 100 * margin_clp / (buy_price + shipping_cost_clp)

* Stale prices never make an opportunity (:func:`is_fresh`). A listing whose price was last
  seen more than ``MAX_PRICE_AGE_HOURS`` before the evaluation, or whose age is unknown, is
  neither a buy side nor a reference: the store may have changed it since. 26 h is the
  slowest polling interval (24 h, the ``tracking`` tier) plus 2 h of scheduling slack, so a
  listing polled on schedule stays fresh and one whose last refresh failed does not — its last
  price is not repeated as if it were current (the day after Black Friday, yesterday's event
  price against today's regular prices elsewhere is a fake spread).

* Confidence in [0, 1] is a product of independent discounts, each 1 when all is well:
  ``match x freshness x stability``.

  - match: the lower ``match_probability`` of the listings involved (a wrong match is a
    fake spread). Unknown probability counts as 0.
  - freshness: ``0.5 ** (age_hours / 24)``, age of the *older* price relative to ``now``.
    The 24 h half-life equals the slowest polling interval (the ``tracking`` tier): a price
    polled on schedule never loses more than about half.
  - stability: ``0.5 ** (volatility / 0.05)`` with the higher volatility of the listings
    (``volatility.py``: mean absolute daily log change). A listing that moves 5 % a day on
    average halves the confidence; a flat one (volatility 0) keeps it whole.

* Ids: ``opportunity_id`` is the sha256 hex of ``kind|canonical_id|buy_retailer|buy_sku``,
  so the same opportunity keeps its id across runs while its prices change.

* Panels. The detectors work on a *panel*: market rows with an ``as_of`` instant (the "now"
  of the evaluation) and a ``panel`` key; cross-store comparisons stay inside a panel. The
  pipeline evaluates one panel (``find_spreads``); the benchmark evaluates one panel per
  simulated day with the very same code (``spread_panel``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from functools import partial

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.history import as_utc
from arbx_dagster.domain.money import DEFAULT_CURRENCY, format_amount
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, UTC_DATETIME, conform, empty

FRESHNESS_HALF_LIFE_HOURS = 24.0
STABILITY_HALF_VOLATILITY = 0.05
MAX_PRICE_AGE_HOURS = 26.0

# Extra columns the detectors compute beside OPPORTUNITY_SCHEMA (kept when the schema has them).
DETAIL_SCHEMA: dict[str, pl.DataType] = {"reason": pl.String()}


def with_margin(frame: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Add ``margin_clp`` and ``roi_pct`` from ``buy_price`` and ``ref_price`` (model above)."""
    ref = pl.col("ref_price")
    cost = pl.col("buy_price") + thresholds.shipping_cost_clp
    fee = (ref * (thresholds.fee_pct / 100.0)).round(0).cast(pl.Int64)
    margin = (ref - cost - fee).cast(pl.Int64)
    return frame.with_columns(margin_clp=margin).with_columns(
        roi_pct=100.0 * pl.col("margin_clp") / cost
    )


def _instant(now: datetime | pl.Expr) -> pl.Expr:
    return now if isinstance(now, pl.Expr) else pl.lit(as_utc(now)).cast(UTC_DATETIME)


def freshness(last_seen: pl.Expr, now: datetime | pl.Expr) -> pl.Expr:
    """Half-life decay with the age of a price; future timestamps count as age 0."""
    age_hours = ((_instant(now) - last_seen).dt.total_seconds() / 3600.0).clip(0.0)
    return pl.lit(0.5).pow(age_hours / FRESHNESS_HALF_LIFE_HOURS).fill_null(0.0)


def max_price_age_hours(thresholds: Thresholds) -> float:
    """The stale-price cut-off (a ``Thresholds.max_price_age_hours`` setting wins when present)."""
    return float(getattr(thresholds, "max_price_age_hours", MAX_PRICE_AGE_HOURS))


def is_fresh(last_seen: pl.Expr, now: datetime | pl.Expr, thresholds: Thresholds) -> pl.Expr:
    """Seen at most ``max_price_age_hours`` before ``now``; unknown age is not fresh."""
    cutoff = _instant(now) - pl.duration(seconds=round(max_price_age_hours(thresholds) * 3600))
    return (last_seen >= cutoff).fill_null(False)


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


def enabled_listings(market: pl.DataFrame | pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Market rows of enabled retailers, with ``volatility`` present (0 when unknown)."""
    lf = market.lazy()
    if thresholds.enabled_retailers:  # empty: every retailer
        lf = lf.filter(pl.col("retailer").is_in(list(thresholds.enabled_retailers)))
    if "volatility" not in lf.collect_schema().names():
        lf = lf.with_columns(volatility=pl.lit(0.0))
    return lf.with_columns(pl.col("volatility").cast(pl.Float64).fill_null(0.0))


def shown(column: str) -> pl.Expr:
    """A shown, plausible price (``None`` means not shown; zero is never real)."""
    return pl.col(column).fill_null(0) > 0


def as_panel(market: pl.DataFrame | pl.LazyFrame, now: datetime) -> pl.LazyFrame:
    """The market as a single panel evaluated at ``now`` (what the pipeline does)."""
    return market.lazy().with_columns(
        panel=pl.lit(0, dtype=pl.Int64), as_of=pl.lit(as_utc(now)).cast(UTC_DATETIME)
    )


def text_map(fn: object, *columns: str) -> pl.Expr:
    """Apply a Python formatter row by row to a few columns (used on reported rows only)."""

    def apply(batch: pl.Series) -> pl.Series:
        return pl.Series([fn(**row) for row in batch], dtype=pl.String)  # type: ignore[operator]

    return pl.struct(list(columns)).map_batches(apply, return_dtype=pl.String)


def _spread_reason(
    buy_retailer: str,
    buy_price: int,
    buy_price_type: str,
    ref_retailer: str,
    ref_price: int,
    n_retailers: int,
    *,
    code: str = DEFAULT_CURRENCY,
) -> str:
    card = " (card only)" if buy_price_type == "card" else ""
    buy, ref = format_amount(buy_price, code), format_amount(ref_price, code)
    return (
        f"{buy_retailer} {buy}{card} vs {ref_retailer} {ref}, "
        f"the cheapest of {n_retailers - 1} other store(s) in stock"
    )


# Spreads compare like with like: per panel, canonical product and condition.
_LIKE_WITH_LIKE = ["panel", "canonical_id", "like"]


def _sellable_listings(panel: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Enabled, matched, in-stock and fresh listings, each with its condition as ``like``."""
    listings = (
        enabled_listings(panel, thresholds)
        .filter(pl.col("canonical_id").is_not_null())
        .filter(pl.col("in_stock").fill_null(False))
        .filter(is_fresh(pl.col("last_seen"), pl.col("as_of"), thresholds))
    )
    # Like with like: a refurbished unit does not resell at the new price (no condition
    # column: every listing counts as new).
    if "condition" in listings.collect_schema().names():
        return listings.with_columns(like=pl.col("condition").fill_null("new"))
    return listings.with_columns(like=pl.lit("new"))


def _cheapest_buys(listings: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Per product, the listing with the lowest effective price (the offer, or the card price
    when card prices count and it is lower) as the buy side."""
    use_card = (
        pl.lit(thresholds.include_card_prices)
        & shown("price_card")
        & (~shown("price_offer") | (pl.col("price_card") < pl.col("price_offer")))
    )
    return (
        listings.with_columns(
            buy_price=pl.when(use_card).then(pl.col("price_card")).otherwise(pl.col("price_offer")),
            buy_price_type=pl.when(use_card).then(pl.lit("card")).otherwise(pl.lit("offer")),
        )
        .filter(shown("buy_price"))
        .sort("buy_price", "retailer", "sku")
        .unique(subset=_LIKE_WITH_LIKE, keep="first", maintain_order=True)
        .select(
            *_LIKE_WITH_LIKE,
            "as_of",
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


def _offer_references(listings: pl.LazyFrame) -> pl.LazyFrame:
    """Every listing's offer price as a possible reference (card prices never set it)."""
    return listings.filter(shown("price_offer")).select(
        *_LIKE_WITH_LIKE,
        ref_retailer="retailer",
        ref_sku="sku",
        ref_price="price_offer",
        ref_match="match_probability",
        ref_seen="last_seen",
        ref_volatility="volatility",
    )


def _cheapest_elsewhere(buys: pl.LazyFrame, refs: pl.LazyFrame) -> pl.LazyFrame:
    """Each buy side paired with the cheapest offer at another retailer, and how many
    retailers sell the product."""
    return (
        buys.join(refs, on=_LIKE_WITH_LIKE, how="inner")
        .filter(pl.col("ref_retailer") != pl.col("buy_retailer"))
        .with_columns(n_retailers=pl.col("ref_retailer").n_unique().over(_LIKE_WITH_LIKE) + 1)
        .sort("ref_price", "ref_retailer")
        .unique(subset=_LIKE_WITH_LIKE, keep="first", maintain_order=True)
    )


def _spread_confidence() -> pl.Expr:
    """Match x freshness x stability (module docstring) of a buy / reference pair."""
    match = pl.min_horizontal(pl.col("buy_match", "ref_match").fill_null(0.0)).clip(0.0, 1.0)
    observed = pl.min_horizontal("buy_seen", "ref_seen")  # both fresh, hence known
    volatility = pl.max_horizontal("buy_volatility", "ref_volatility")
    return match * freshness(observed, pl.col("as_of")) * stability(volatility)


def spread_panel(panel: pl.LazyFrame, thresholds: Thresholds) -> pl.LazyFrame:
    """Spreads of every panel: OPPORTUNITY_SCHEMA columns plus ``panel`` and ``reason``.

    Per panel, canonical product and condition (new / refurbished / used, when the market
    says; like is compared with like), the buy side is the fresh, in-stock listing with the
    lowest effective price (the offer price, or the card price when ``include_card_prices``
    and it is lower; then ``buy_price_type='card'``). The reference is the cheapest fresh,
    in-stock *offer* price at any other retailer — the gap anyone can see, and the
    conservative one (not the median or the dearest store). Card prices never set the
    reference, and a store that cannot sell the product now does not set its price. Kept when
    the margin and ROI clear the thresholds (cost model in the module docstring).
    """
    listings = _sellable_listings(panel, thresholds)
    pairs = _cheapest_elsewhere(_cheapest_buys(listings, thresholds), _offer_references(listings))
    return (
        with_margin(pairs, thresholds)
        .filter(
            (pl.col("margin_clp") >= thresholds.min_margin_clp)
            & (pl.col("roi_pct") >= thresholds.min_roi_pct)
        )
        .with_columns(
            kind=pl.lit("spread"),
            confidence=_spread_confidence(),
            severity=pl.lit(None, dtype=pl.String),
            observed_at=pl.min_horizontal("buy_seen", "ref_seen"),
        )
        .with_columns(
            opportunity_id=opportunity_id(
                "spread", pl.col("canonical_id"), pl.col("buy_retailer"), pl.col("buy_sku")
            ),
            reason=text_map(
                partial(_spread_reason, code=thresholds.currency),
                "buy_retailer",
                "buy_price",
                "buy_price_type",
                "ref_retailer",
                "ref_price",
                "n_retailers",
            ),
        )
    )


def opportunity_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``OPPORTUNITY_SCHEMA`` (plus ``reason`` once the schema carries it), largest margin first."""
    columns = {**OPPORTUNITY_SCHEMA}
    if frame.is_empty():
        return empty(columns)
    return conform(frame.sort(["margin_clp", "opportunity_id"], descending=[True, False]), columns)


def find_spreads(market: pl.DataFrame, thresholds: Thresholds, now: datetime) -> pl.DataFrame:
    """One spread per canonical product sold by at least two enabled retailers (see
    :func:`spread_panel`), evaluated at ``now``."""
    if market.is_empty():
        return empty(OPPORTUNITY_SCHEMA)
    return opportunity_frame(spread_panel(as_panel(market, now), thresholds).collect())


def spread_details(market: pl.DataFrame, thresholds: Thresholds, now: datetime) -> pl.DataFrame:
    """Like :func:`find_spreads`, with the ``reason`` column (for alerts and evidence)."""
    if market.is_empty():
        return empty({**OPPORTUNITY_SCHEMA, **DETAIL_SCHEMA})
    found = spread_panel(as_panel(market, now), thresholds).collect()
    return conform(
        found.sort(["margin_clp", "opportunity_id"], descending=[True, False]),
        {**OPPORTUNITY_SCHEMA, **DETAIL_SCHEMA},
    )


def drop_glitching_buys(
    spreads: pl.DataFrame, glitches: pl.DataFrame, by: Sequence[str] = ()
) -> pl.DataFrame:
    """Spreads whose buy listing is not glitching: a listing caught glitching is reported as a
    glitch, not also as a spread (``by``: extra keys such as ``panel``)."""
    keys = [*by, "buy_retailer", "buy_sku"]
    return spreads.join(glitches.select(keys).unique(), on=keys, how="anti")
