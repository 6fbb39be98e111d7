"""Too good to be true is verified, not alerted: spreads held for a person's review.

A spread is only as real as the match behind it, and the spreads with the largest
margins are where wrong matches gather (a camera case "sold" at 5 % of the camera's
price). A spread is held for review, with the reasons in its ``review`` column, when:

* **weak identity**: its two listings share no model code (neither lists a code the
  other has, nor names it in its title), so nothing but similar wording says they are
  one product; or
* **implausible gap**: the reference price is further above the buy price than the same
  products' prices at different stores spread in its category: beyond the upper fence
  (third quartile + 3 interquartile ranges of log(max / min) per canonical product) of
  the category, or of the whole market when the category has fewer than
  ``MIN_PRODUCTS_FOR_A_FENCE`` products at two stores. The fence never drops below x2
  (an ordinary promotion takes up to half off, so a store at half another's price is
  plausible) nor rises above x3 (no store sells the same new product at three times
  another's price for long; a single listing's mistaken price is a glitch, which the
  glitch detector reports).

A person settles it: a pair confirmed with ``arbx matches label`` (or the API) is never
held, and a rejected pair stops being matched, so its spread disappears. Held spreads
stay visible (CLI, API, dashboard) but are not sent to the alert channels.
"""

from __future__ import annotations

import math

import polars as pl

MIN_PRODUCTS_FOR_A_FENCE = 20
FENCE_FLOOR = math.log(2.0)
FENCE_CEILING = math.log(3.0)
MIN_CODE_LEN = 4  # shorter codes ('SE9', 'A15') are too common to prove identity

# The listings' columns the review reads (``pipeline.opportunities.MARKET_SQL`` has them).
LISTING_COLUMNS = ("retailer", "sku", "name_norm", "model_codes")


def _codes(column: str) -> pl.Expr:
    return (
        pl.col(column)
        .fill_null("")
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element().str.len_chars() >= MIN_CODE_LEN))
    )


def _compact(column: str) -> pl.Expr:
    return pl.col(column).fill_null("").str.to_uppercase().str.replace_all(r"[^A-Z0-9]", "")


def shares_model_code(frame: pl.DataFrame) -> pl.Series:
    """Per row of ``frame`` (``buy_codes``, ``ref_codes``, ``buy_name``, ``ref_name``):
    whether the two listings share a code, or one's code is written in the other's title."""
    if frame.height == 0:
        return pl.Series("shared", [], dtype=pl.Boolean)
    rows = frame.select(
        pl.int_range(pl.len()).alias("row"),
        _codes("buy_codes").alias("buy"),
        _codes("ref_codes").alias("ref"),
        _compact("buy_name").alias("buy_text"),
        _compact("ref_name").alias("ref_text"),
    )
    found = []
    for mine, their_codes, their_text in (("buy", "ref", "ref_text"), ("ref", "buy", "buy_text")):
        found.append(
            rows.select("row", pl.col(mine).alias("code"), their_codes, their_text)
            .explode("code")
            .drop_nulls("code")
            .filter(
                pl.col(their_codes).list.contains(pl.col("code"))
                | pl.col(their_text).str.contains(pl.col("code"), literal=True)
            )
            .select("row")
        )
    hit = pl.concat(found).unique()
    return (
        rows.select("row")
        .join(hit.with_columns(pl.lit(True).alias("shared")), on="row", how="left")
        .sort("row")["shared"]
        .fill_null(False)
    )


# Per canonical product carried by two stores or more: its category and log(max / min) offer.
PRODUCT_GAP_SCHEMA: dict[str, pl.DataType] = {
    "canonical_id": pl.String(),
    "category": pl.String(),
    "gap": pl.Float64(),
}

Fences = tuple[dict[str, float], float]


def product_gaps(market: pl.DataFrame) -> pl.DataFrame:
    """``PRODUCT_GAP_SCHEMA``: how far apart the stores' offers for each product are (what
    the fences are drawn from; a product's row depends on its own listings only)."""
    return (
        market.filter(pl.col("canonical_id").is_not_null() & (pl.col("price_offer") > 0))
        .group_by("canonical_id")
        .agg(
            pl.col("retailer").n_unique().alias("stores"),
            (pl.col("price_offer").max() / pl.col("price_offer").min()).log().alias("gap"),
            # The most common category; of equally common ones the first alphabetically.
            pl.col("category").drop_nulls().mode().min().alias("category"),
        )
        .filter(pl.col("stores") >= 2)
        .select(list(PRODUCT_GAP_SCHEMA))
        .cast(PRODUCT_GAP_SCHEMA)  # type: ignore[arg-type]
    )


def fences_from(gaps: pl.DataFrame) -> Fences:
    """``(per category, market-wide)`` upper fences of the products' gaps (module docstring)."""

    def fence(values: pl.Series) -> float:
        q1, q3 = values.quantile(0.25), values.quantile(0.75)
        if q1 is None or q3 is None:
            return FENCE_CEILING
        return min(max(float(q3 + 3 * (q3 - q1)), FENCE_FLOOR), FENCE_CEILING)

    overall = fence(gaps["gap"]) if gaps.height >= MIN_PRODUCTS_FOR_A_FENCE else None
    per_category = {
        category: fence(part["gap"])
        for (category,), part in gaps.filter(pl.col("category").is_not_null()).group_by("category")
        if part.height >= MIN_PRODUCTS_FOR_A_FENCE
    }
    return per_category, FENCE_CEILING if overall is None else overall


def gap_fences(market: pl.DataFrame) -> Fences:
    """``(per category, market-wide)`` upper fences of log(max / min) offer price across
    the stores that carry one canonical product (see the module docstring)."""
    return fences_from(product_gaps(market))


def implausible_gap(fences: Fences) -> pl.Expr:
    """Why a spread's gap (``ref_price`` / ``buy_price``, in its ``category``) is beyond
    the fences, or null when it is not."""
    per_category, overall = fences
    fence = (
        pl.col("category")
        .replace_strict(per_category, default=overall, return_dtype=pl.Float64)
        .fill_null(overall)
    )
    gap = (pl.col("ref_price") / pl.col("buy_price")).log()
    return pl.when(gap > fence).then(
        pl.format(
            "implausible gap: x{} where the same products' prices across stores stay within x{}{}",
            gap.exp().round(1),
            fence.exp().round(1),
            pl.when(pl.col("category").is_in(list(per_category) or [""]).fill_null(False))
            .then(pl.format(" in {}", pl.col("category")))
            .otherwise(pl.lit("")),
        )
    )


def hold_for_review(
    spreads: pl.DataFrame,
    market: pl.DataFrame,
    confirmed: pl.DataFrame | None = None,
    fences: Fences | None = None,
) -> pl.DataFrame:
    """``spreads`` with ``review``: null, or why the spread waits for a person.

    ``spreads`` carry ``buy_retailer, buy_sku, ref_retailer, ref_sku, buy_price,
    ref_price, category``; ``market`` is every listing with ``LISTING_COLUMNS``,
    ``canonical_id``, ``price_offer`` and ``category``; ``confirmed`` holds pairs people
    confirmed (``left_retailer, left_sku, right_retailer, right_sku``, any order);
    ``fences`` are the market's (:func:`fences_from`; by default drawn from ``market``).
    """
    if spreads.height == 0:
        return spreads.with_columns(review=pl.lit(None, dtype=pl.String))
    listing = market.select(*LISTING_COLUMNS).unique(["retailer", "sku"])
    rows = spreads.join(
        listing.rename(
            {"retailer": "buy_retailer", "sku": "buy_sku", "name_norm": "buy_name"}
        ).rename({"model_codes": "buy_codes"}),
        on=["buy_retailer", "buy_sku"],
        how="left",
    ).join(
        listing.rename(
            {"retailer": "ref_retailer", "sku": "ref_sku", "name_norm": "ref_name"}
        ).rename({"model_codes": "ref_codes"}),
        on=["ref_retailer", "ref_sku"],
        how="left",
    )
    rows = rows.with_columns(
        _shared=shares_model_code(rows), _confirmed=_is_confirmed(rows, confirmed)
    )
    weak = pl.when(~pl.col("_shared")).then(
        pl.lit("weak identity: the two listings share no model code")
    )
    far = implausible_gap(fences if fences is not None else gap_fences(market))
    review = pl.concat_str([far, weak], separator="; ", ignore_nulls=True)
    return rows.with_columns(
        review=pl.when(pl.col("_confirmed") | (review.str.len_chars() == 0))
        .then(None)
        .otherwise(review)
    ).select(*[c for c in spreads.columns if c != "review"], "review")


def _is_confirmed(rows: pl.DataFrame, confirmed: pl.DataFrame | None) -> pl.Series:
    if confirmed is None or confirmed.height == 0:
        return pl.Series("_confirmed", [False] * rows.height, dtype=pl.Boolean)
    keys = confirmed.select("left_retailer", "left_sku", "right_retailer", "right_sku")
    both = pl.concat(
        [
            keys,
            keys.select(
                pl.col("right_retailer").alias("left_retailer"),
                pl.col("right_sku").alias("left_sku"),
                pl.col("left_retailer").alias("right_retailer"),
                pl.col("left_sku").alias("right_sku"),
            ),
        ]
    ).unique()
    pairs = rows.select(
        pl.int_range(pl.len()).alias("row"),
        pl.col("buy_retailer").alias("left_retailer"),
        pl.col("buy_sku").alias("left_sku"),
        pl.col("ref_retailer").alias("right_retailer"),
        pl.col("ref_sku").alias("right_sku"),
    )
    hit = pairs.join(both, on=list(keys.columns), how="semi")["row"]
    return pairs["row"].is_in(hit.implode()).alias("_confirmed")
