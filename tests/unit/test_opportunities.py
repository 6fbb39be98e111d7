"""Spreads: buy where a product is cheapest, compare with the cheapest other store."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from arbx_dagster.domain import opportunities as o
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.opportunities import find_spreads
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)

MARKET_SCHEMA = {
    "canonical_id": pl.String,
    "match_probability": pl.Float64,
    "retailer": pl.String,
    "sku": pl.String,
    "name": pl.String,
    "category": pl.String,
    "url": pl.String,
    "price_offer": pl.Int64,
    "price_card": pl.Int64,
    "in_stock": pl.Boolean,
    "last_seen": pl.Datetime("us", "UTC"),
    "volatility": pl.Float64,
}


def listing(
    retailer: str,
    offer: int | None,
    *,
    card: int | None = None,
    canonical: str = "tv-55",
    sku: str | None = None,
    in_stock: bool = True,
    match: float | None = 1.0,
    seen: datetime | None = NOW,
    volatility: float | None = None,
) -> dict:
    sku = sku or f"{retailer[:3]}-{canonical}"
    return {
        "canonical_id": canonical,
        "match_probability": match,
        "retailer": retailer,
        "sku": sku,
        "name": f"Smart TV 55 ({retailer})",
        "category": "tv",
        "url": f"https://{retailer}.example/{sku}",
        "price_offer": offer,
        "price_card": card,
        "in_stock": in_stock,
        "last_seen": seen,
        "volatility": volatility,
    }


def market(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=MARKET_SCHEMA)


def only(df: pl.DataFrame) -> dict:
    assert df.height == 1, df
    return df.row(0, named=True)


def test_clear_spread_is_found_with_margin_and_roi_after_costs():
    thresholds = Thresholds(shipping_cost_clp=5_000, fee_pct=10.0)
    spreads = find_spreads(
        market(
            listing("falabella", 100_000), listing("ripley", 150_000), listing("paris", 160_000)
        ),
        thresholds,
        NOW,
    )

    spread = only(spreads)
    assert spreads.schema == pl.Schema(OPPORTUNITY_SCHEMA)
    assert spread["kind"] == "spread"
    assert spread["severity"] is None
    assert (spread["buy_retailer"], spread["buy_sku"], spread["buy_price"]) == (
        "falabella",
        "fal-tv-55",
        100_000,
    )
    assert spread["buy_price_type"] == "offer"
    # The reference is the cheapest *other* store, not the dearest.
    assert (spread["ref_retailer"], spread["ref_price"]) == ("ripley", 150_000)
    # 150 000 - 100 000 - 5 000 shipping - 10 % of 150 000 in fees
    assert spread["margin_clp"] == 30_000
    assert spread["roi_pct"] == pytest.approx(100 * 30_000 / 105_000)
    assert spread["confidence"] == pytest.approx(1.0)
    assert spread["observed_at"] == NOW


def test_opportunity_id_is_a_stable_hash_of_kind_product_and_buy_listing():
    rows = [listing("falabella", 100_000), listing("ripley", 150_000)]
    first = only(find_spreads(market(*rows), Thresholds(), NOW))
    rows[0]["price_offer"] = 90_000  # prices move; the opportunity stays the same
    later = only(find_spreads(market(*rows), Thresholds(), NOW + timedelta(hours=1)))

    expected = hashlib.sha256(b"spread|tv-55|falabella|fal-tv-55").hexdigest()
    assert first["opportunity_id"] == later["opportunity_id"] == expected


@pytest.mark.parametrize(
    ("buy", "ref", "reason"),
    [
        (100_000, 105_000, "margin 5 000 < 10 000"),
        (1_000_000, 1_050_000, "ROI 5 % < 8 %"),
    ],
)
def test_spreads_below_min_margin_or_min_roi_are_not_reported(buy, ref, reason):
    spreads = find_spreads(
        market(listing("falabella", buy), listing("ripley", ref)), Thresholds(), NOW
    )
    assert spreads.is_empty(), reason


def test_costs_can_sink_a_spread_that_is_wide_enough_gross():
    rows = market(listing("falabella", 100_000), listing("ripley", 125_000))
    assert only(find_spreads(rows, Thresholds(), NOW))["margin_clp"] == 25_000

    costly = Thresholds(shipping_cost_clp=8_000, fee_pct=6.0)  # 25 000 - 8 000 - 7 500
    assert find_spreads(rows, costly, NOW).is_empty()


def test_out_of_stock_listing_is_never_the_buy_side():
    spreads = find_spreads(
        market(
            listing("falabella", 60_000, in_stock=False),
            listing("ripley", 100_000),
            listing("paris", 150_000),
        ),
        Thresholds(),
        NOW,
    )
    spread = only(spreads)
    assert spread["buy_retailer"] == "ripley"
    assert (spread["ref_retailer"], spread["ref_price"]) == ("paris", 150_000)


def test_card_price_is_the_buy_price_only_when_configured():
    rows = market(listing("falabella", 120_000, card=90_000), listing("ripley", 140_000))

    default = only(find_spreads(rows, Thresholds(), NOW))
    assert (default["buy_price"], default["buy_price_type"]) == (120_000, "offer")
    assert default["margin_clp"] == 20_000

    with_card = only(find_spreads(rows, Thresholds(include_card_prices=True), NOW))
    assert (with_card["buy_price"], with_card["buy_price_type"]) == (90_000, "card")
    assert with_card["margin_clp"] == 50_000


def test_card_prices_never_lower_the_reference():
    rows = market(listing("falabella", 100_000), listing("ripley", 150_000, card=95_000))
    spread = only(find_spreads(rows, Thresholds(), NOW))
    assert spread["ref_price"] == 150_000


def test_products_sold_by_a_single_retailer_are_ignored():
    rows = market(
        listing("falabella", 100_000, sku="f-black"),
        listing("falabella", 200_000, sku="f-white"),
        listing("ripley", 90_000, canonical="other-product"),
    )
    assert find_spreads(rows, Thresholds(), NOW).is_empty()


def test_disabled_retailers_are_neither_bought_from_nor_a_reference():
    rows = market(
        listing("falabella", 100_000), listing("ripley", 150_000), listing("paris", 200_000)
    )
    spread = only(find_spreads(rows, Thresholds(enabled_retailers=("falabella", "paris")), NOW))
    assert spread["ref_retailer"] == "paris"

    assert find_spreads(rows, Thresholds(enabled_retailers=("ripley",)), NOW).is_empty()


def test_confidence_decays_with_the_age_of_the_older_price():
    fresh = only(
        find_spreads(
            market(listing("falabella", 100_000), listing("ripley", 150_000)), Thresholds(), NOW
        )
    )
    older_ref = market(
        listing("falabella", 100_000), listing("ripley", 150_000, seen=NOW - timedelta(hours=24))
    )
    older = only(find_spreads(older_ref, Thresholds(), NOW))

    assert older["confidence"] == pytest.approx(0.5 * fresh["confidence"])  # one half-life
    assert older["observed_at"] == NOW - timedelta(hours=24)


def test_confidence_is_bounded_by_the_weaker_match():
    rows = market(listing("falabella", 100_000, match=0.95), listing("ripley", 150_000, match=0.6))
    assert only(find_spreads(rows, Thresholds(), NOW))["confidence"] == pytest.approx(0.6)


def test_unknown_match_probability_gives_no_confidence():
    no_match = market(listing("falabella", 100_000, match=None), listing("ripley", 150_000))
    assert only(find_spreads(no_match, Thresholds(), NOW))["confidence"] == 0.0


def test_a_price_of_unknown_age_makes_no_spread():
    no_age = market(listing("falabella", 100_000), listing("ripley", 150_000, seen=None))
    assert find_spreads(no_age, Thresholds(), NOW).is_empty()


def test_confidence_decays_with_volatility_and_missing_volatility_counts_as_flat():
    calm = market(listing("falabella", 100_000), listing("ripley", 150_000))
    jumpy = market(listing("falabella", 100_000, volatility=0.05), listing("ripley", 150_000))

    assert only(find_spreads(calm.drop("volatility"), Thresholds(), NOW))["confidence"] == 1.0
    assert only(find_spreads(jumpy, Thresholds(), NOW))["confidence"] == pytest.approx(0.5)


def test_empty_market_gives_an_empty_frame_with_the_contract():
    spreads = find_spreads(market(), Thresholds(), NOW)
    assert spreads.is_empty()
    assert spreads.schema == pl.Schema(OPPORTUNITY_SCHEMA)


def test_a_stale_price_is_neither_bought_nor_a_reference():
    """A listing not refreshed for over 26 h (its last crawl failed) may have changed."""
    stale = NOW - timedelta(hours=o.MAX_PRICE_AGE_HOURS + 1)
    # The cheap listing's price is from before its last failed refresh: no spread.
    rows = market(listing("falabella", 70_000, seen=stale), listing("ripley", 100_000))
    assert find_spreads(rows, Thresholds(), NOW).is_empty()

    # A stale reference is skipped; the next fresh store is the reference.
    rows = market(
        listing("falabella", 100_000),
        listing("ripley", 150_000, seen=stale),
        listing("paris", 170_000),
    )
    spread = only(find_spreads(rows, Thresholds(), NOW))
    assert (spread["ref_retailer"], spread["ref_price"]) == ("paris", 170_000)

    # Right at the limit still counts.
    edge = NOW - timedelta(hours=o.MAX_PRICE_AGE_HOURS)
    rows = market(listing("falabella", 100_000, seen=edge), listing("ripley", 150_000))
    assert only(find_spreads(rows, Thresholds(), NOW))["observed_at"] == edge


def test_confidence_is_match_times_freshness_times_stability():
    rows = market(
        listing("falabella", 100_000, match=0.9, seen=NOW - timedelta(hours=12)),
        listing("ripley", 150_000, match=0.8, volatility=0.025),
    )
    expected = 0.8 * 0.5 ** (12 / 24) * 0.5 ** (0.025 / 0.05)
    assert only(find_spreads(rows, Thresholds(), NOW))["confidence"] == pytest.approx(expected)


def test_spread_details_say_why_in_one_line():
    rows = market(
        listing("falabella", 120_000, card=90_000),
        listing("ripley", 140_000),
        listing("paris", 150_000),
    )
    found = o.spread_details(rows, Thresholds(include_card_prices=True), NOW).row(0, named=True)
    assert found["reason"] == (
        "falabella $90.000 (card only) vs ripley $140.000, the cheapest of 2 other store(s) "
        "in stock"
    )


def test_panels_never_compare_prices_across_each_other():
    day1 = o.as_panel(market(listing("falabella", 100_000)), NOW).with_columns(panel=pl.lit(1))
    day2 = o.as_panel(market(listing("ripley", 150_000)), NOW).with_columns(panel=pl.lit(2))
    assert o.spread_panel(pl.concat([day1, day2]), Thresholds()).collect().is_empty()


def test_a_listing_caught_glitching_is_not_also_a_spread():
    rows = market(listing("falabella", 10_000), listing("ripley", 150_000))
    spreads = find_spreads(rows, Thresholds(), NOW)
    glitches = spreads.with_columns(kind=pl.lit("glitch"))
    assert o.drop_glitching_buys(spreads, glitches).is_empty()
    assert o.drop_glitching_buys(spreads, glitches.clear()).height == 1


def test_a_refurbished_unit_is_compared_with_refurbished_ones_only():
    rows = market(listing("falabella", 100_000), listing("ripley", 150_000)).with_columns(
        condition=pl.Series(["refurbished", "new"])
    )
    assert find_spreads(rows, Thresholds(), NOW).is_empty()
    same = rows.with_columns(condition=pl.lit("refurbished"))
    assert only(find_spreads(same, Thresholds(), NOW))["buy_retailer"] == "falabella"
