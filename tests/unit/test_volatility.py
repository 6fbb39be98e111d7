"""Volatility tiers: how often and how much a price moves decides how often we poll it."""

from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl
import pytest

from arbx_dagster.domain.schema import LISTING_TIER_SCHEMA, PRICE_HISTORY_SCHEMA, TIERS
from arbx_dagster.domain.volatility import listing_volatility, tier_moves, volatility_by

TODAY = date(2025, 3, 10)


def closes(retailer: str, sku: str, offers: list[int | None]) -> list[dict]:
    """Daily closes ending today, oldest first."""
    start = TODAY - timedelta(days=len(offers) - 1)
    return [
        {
            "retailer": retailer,
            "sku": sku,
            "day": start + timedelta(days=i),
            "price_list": None,
            "price_offer": offer,
            "price_card": None,
            "in_stock": True,
            "observations": 1,
        }
        for i, offer in enumerate(offers)
    ]


def history(*listings: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([row for rows in listings for row in rows], schema=PRICE_HISTORY_SCHEMA)


def by_sku(tiers: pl.DataFrame) -> dict[str, dict]:
    return {row["sku"]: row for row in tiers.iter_rows(named=True)}


FLAT = [99_990] * 30
DAILY_SEESAW = [100_000 if i % 2 else 90_000 for i in range(30)]
ONE_MARKDOWN = [100_000] * 15 + [85_000] * 15


def test_flat_daily_and_single_markdown_listings_land_in_their_tiers():
    tiers = listing_volatility(
        history(
            closes("falabella", "flat", FLAT),
            closes("falabella", "seesaw", DAILY_SEESAW),
            closes("falabella", "markdown", ONE_MARKDOWN),
        )
    )
    assert tiers.schema == pl.Schema(LISTING_TIER_SCHEMA)
    rows = by_sku(tiers)

    assert rows["flat"] == {
        "retailer": "falabella",
        "sku": "flat",
        "volatility": 0.0,
        "price_changes": 0,
        "tier": "tracking",
        "interval_minutes": TIERS["tracking"],
    }
    assert rows["seesaw"]["tier"] == "critical"
    assert rows["seesaw"]["interval_minutes"] == TIERS["critical"]
    assert rows["seesaw"]["price_changes"] == 29
    assert rows["seesaw"]["volatility"] == pytest.approx(math.log(100_000 / 90_000))
    assert rows["markdown"]["tier"] == "important"
    assert rows["markdown"]["price_changes"] == 1
    assert rows["markdown"]["volatility"] == pytest.approx(math.log(100 / 85) / 29)


def test_a_hot_listing_is_critical_however_calm_its_price():
    hot = pl.DataFrame({"retailer": ["falabella"], "sku": ["flat"]})
    rows = by_sku(listing_volatility(history(closes("falabella", "flat", FLAT)), hot))
    assert rows["flat"]["tier"] == "critical"
    assert rows["flat"]["volatility"] == 0.0


def test_open_opportunities_can_be_passed_as_hot_listings_even_without_history():
    opportunities = pl.DataFrame({"buy_retailer": ["ripley"], "buy_sku": ["new-one"]})
    rows = by_sku(listing_volatility(history(closes("falabella", "flat", FLAT)), opportunities))
    assert rows["new-one"]["tier"] == "critical"
    assert rows["flat"]["tier"] == "tracking"


def test_missing_days_and_failed_prices_are_not_changes():
    gappy = [99_990, None, 99_990, None, None, 99_990] * 5
    rows = by_sku(listing_volatility(history(closes("paris", "gappy", gappy))))
    assert rows["gappy"]["price_changes"] == 0
    assert rows["gappy"]["tier"] == "tracking"


def test_only_the_last_30_days_count():
    old_moves = DAILY_SEESAW + FLAT  # wild two months ago, flat for the last 30 days
    rows = by_sku(listing_volatility(history(closes("paris", "calmed", old_moves))))
    assert rows["calmed"]["tier"] == "tracking"

    earlier = TODAY - timedelta(days=30)
    rows = by_sku(
        listing_volatility(history(closes("paris", "calmed", old_moves)), now_day=earlier)
    )
    assert rows["calmed"]["tier"] == "critical"


def test_tier_moves_lists_only_listings_whose_tier_changed():
    previous = listing_volatility(
        history(closes("falabella", "a", FLAT), closes("falabella", "b", FLAT))
    )
    current = listing_volatility(
        history(
            closes("falabella", "a", DAILY_SEESAW),
            closes("falabella", "b", FLAT),
            closes("falabella", "c", FLAT),
        )
    )
    moves = tier_moves(previous, current)
    assert moves.select("retailer", "sku", "from_tier", "to_tier").rows() == [
        ("falabella", "a", "tracking", "critical")
    ]


def test_volatility_by_category_counts_tiers_and_averages_volatility():
    tiers = listing_volatility(
        history(
            closes("falabella", "tv1", DAILY_SEESAW),
            closes("ripley", "tv2", FLAT),
            closes("ripley", "fridge", FLAT),
        )
    )
    listings = pl.DataFrame(
        {
            "retailer": ["falabella", "ripley", "ripley"],
            "sku": ["tv1", "tv2", "fridge"],
            "category": ["tv", "tv", "refrigeradores"],
        }
    )
    summary = {
        row["category"]: row
        for row in volatility_by(tiers, listings, "category").iter_rows(named=True)
    }

    assert summary["tv"]["n_listings"] == 2
    assert (summary["tv"]["n_critical"], summary["tv"]["n_tracking"]) == (1, 1)
    assert summary["tv"]["mean_volatility"] == pytest.approx(math.log(100_000 / 90_000) / 2)
    assert summary["refrigeradores"]["n_important"] == 0

    by_retailer = volatility_by(tiers, listings, "retailer")
    assert by_retailer["n_listings"].to_list() == [1, 2]

    with pytest.raises(ValueError, match="cannot group by"):
        volatility_by(tiers, listings, "brand")


def test_empty_history_gives_an_empty_frame_with_the_contract():
    tiers = listing_volatility(history())
    assert tiers.is_empty()
    assert tiers.schema == pl.Schema(LISTING_TIER_SCHEMA)
