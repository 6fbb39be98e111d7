"""Glitches re-fetched before they alert, and the verdict of the re-fetch.

A high-severity glitch must be re-fetched before it alerts, and so must a ``pack_size`` or
``currency`` one whatever its severity (it is likelier a misread page than a price the store
published): :func:`must_confirm`, :func:`needs_confirmation` and :func:`confirm_glitches`.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitch_kinds import priced_glitches

# Glitches re-fetched before they alert: the severe ones (a mistaken *scrape* is likelier
# than a 90 % price cut), and those whose type says the *data* is likelier wrong than the
# price — a scraper that read the unit price beside a pack's, or a price block in US dollars,
# shows a "glitch" the store never published. The product page settles it either way.
CONFIRM_SEVERITIES = ("high",)
CONFIRM_TYPES = ("pack_size", "currency")


def must_confirm(kind: str | None, severity: str | None, glitch_type: str | None) -> bool:
    """Whether one opportunity must be confirmed by a re-fetch before it alerts."""
    return kind == "glitch" and (severity in CONFIRM_SEVERITIES or glitch_type in CONFIRM_TYPES)


def needs_confirmation() -> pl.Expr:
    """:func:`must_confirm` as an expression over opportunity rows."""
    return (pl.col("kind") == "glitch") & (
        pl.col("severity").is_in(CONFIRM_SEVERITIES)
        | pl.col("glitch_type").is_in(CONFIRM_TYPES).fill_null(False)
    )


@dataclass(frozen=True)
class Confirmation:
    """Outcome of re-fetching glitch candidates."""

    confirmed: pl.DataFrame  # still glitching: prices, margin and severity from the re-fetch
    rejected: pl.DataFrame  # with ``rejection``: recovered / out of stock / gone
    pending: pl.DataFrame  # no usable re-fetch yet (failed, or older than the candidate)


def confirm_glitches(
    candidates: pl.DataFrame, refetched: pl.DataFrame, thresholds: Thresholds
) -> Confirmation:
    """Judge glitch candidates by a fresh fetch of the same listings.

    ``refetched``: ``retailer, sku, price_offer, price_card, in_stock, observed_at`` and
    optionally ``fetch_status`` (non-``ok`` rows do not count). A candidate is *confirmed* when
    a successful fetch newer than the candidate still shows, in stock, a price of its type at
    or below ``glitch_ratio_low`` x its reference (the store has not fixed it; the margin,
    ROI and severity are recomputed from that price); *rejected* when the fetch shows it
    recovered, sold out or gone (no price of that type); *pending* otherwise.
    """
    key = {"retailer": "buy_retailer", "sku": "buy_sku"}
    fetched = refetched
    if "fetch_status" in fetched.columns:
        fetched = fetched.filter(pl.col("fetch_status") == "ok")
    fetched = (
        fetched.sort("observed_at")
        .unique(subset=list(key), keep="last")
        .select(
            *key.keys(),
            new_offer="price_offer",
            new_card="price_card",
            new_in_stock="in_stock",
            fetched_at="observed_at",
        )
        .rename(key)
    )
    columns = list(candidates.columns)
    joined = candidates.join(fetched, on=list(key.values()), how="left")
    new_price = (
        pl.when(pl.col("buy_price_type") == "card")
        .then(pl.col("new_card"))
        .otherwise(pl.col("new_offer"))
    )
    usable = pl.col("fetched_at").is_not_null() & (
        pl.col("observed_at").is_null() | (pl.col("fetched_at") >= pl.col("observed_at"))
    )
    rejection = (
        pl.when(new_price.fill_null(0) <= 0)
        .then(pl.lit("price gone"))
        .when(~pl.col("new_in_stock").fill_null(False))
        .then(pl.lit("out of stock"))
        .when(new_price > thresholds.glitch_ratio_low * pl.col("ref_price"))
        .then(pl.lit("price recovered"))
    )
    judged = joined.with_columns(usable=usable, rejection=rejection, new_price=new_price)
    confirmed = judged.filter(pl.col("usable") & pl.col("rejection").is_null())
    refreshed = (
        priced_glitches(
            confirmed.lazy().with_columns(
                buy_price=pl.col("new_price").cast(pl.Int64), observed_at=pl.col("fetched_at")
            ),
            thresholds,
        )
        .collect()
        .select(columns)
    )
    if "needs_confirmation" in columns:
        refreshed = refreshed.with_columns(needs_confirmation=pl.lit(False))
    return Confirmation(
        confirmed=refreshed,
        rejected=judged.filter(pl.col("usable") & pl.col("rejection").is_not_null()).select(
            *columns, "rejection"
        ),
        pending=judged.filter(~pl.col("usable")).select(columns),
    )


__all__ = [
    "CONFIRM_SEVERITIES",
    "CONFIRM_TYPES",
    "Confirmation",
    "confirm_glitches",
    "must_confirm",
    "needs_confirmation",
]
