"""Glitches: far below the listing's own normal price, its segment and the other stores."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from arbx_dagster.domain import glitches as g
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitches import find_glitches
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, PRICE_HISTORY_SCHEMA

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)  # 12:00 in Santiago: the same day
TODAY = date(2025, 3, 10)

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
}


def closes(
    retailer: str, sku: str, offers: list[int | None], cards: list[int | None] | None = None
) -> list[dict]:
    """Daily closes ending yesterday, oldest first."""
    cards = cards or [None] * len(offers)
    start = TODAY - timedelta(days=len(offers))
    return [
        {
            "retailer": retailer,
            "sku": sku,
            "day": start + timedelta(days=i),
            "price_list": None,
            "price_offer": offer,
            "price_card": card,
            "in_stock": True,
            "observations": 4,
        }
        for i, (offer, card) in enumerate(zip(offers, cards, strict=True))
    ]


def history(*listings: list[dict]) -> pl.DataFrame:
    return pl.DataFrame([row for rows in listings for row in rows], schema=PRICE_HISTORY_SCHEMA)


def now_listing(
    retailer: str,
    sku: str,
    offer: int | None,
    *,
    card: int | None = None,
    canonical: str | None = None,
    category: str = "tv",
    match: float = 1.0,
    in_stock: bool = True,
) -> dict:
    return {
        "canonical_id": canonical or f"c-{sku}",
        "match_probability": match,
        "retailer": retailer,
        "sku": sku,
        "name": f"Product {sku}",
        "category": category,
        "url": f"https://{retailer}.example/{sku}",
        "price_offer": offer,
        "price_card": card,
        "in_stock": in_stock,
        "last_seen": NOW,
    }


def market(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=MARKET_SCHEMA)


def only(df: pl.DataFrame) -> dict:
    assert df.height == 1, df
    return df.row(0, named=True)


FLAT = [199_990] * 60


def test_a_90_percent_drop_against_a_stable_history_is_a_high_severity_glitch():
    found = find_glitches(
        history(closes("falabella", "f1", FLAT), closes("falabella", "f2", [89_990] * 60)),
        market(now_listing("falabella", "f1", 19_990), now_listing("falabella", "f2", 89_990)),
        Thresholds(),
        NOW,
    )

    glitch = only(found)
    assert found.schema == pl.Schema(OPPORTUNITY_SCHEMA)
    assert (glitch["kind"], glitch["severity"]) == ("glitch", "high")
    assert (glitch["buy_retailer"], glitch["buy_sku"]) == ("falabella", "f1")
    assert (glitch["buy_price"], glitch["buy_price_type"]) == (19_990, "offer")
    # No other store sells it: the reference is the listing's own common price.
    assert (glitch["ref_retailer"], glitch["ref_price"]) == (None, 199_990)
    assert glitch["margin_clp"] == 180_000
    assert glitch["roi_pct"] == pytest.approx(100 * 180_000 / 19_990)
    assert glitch["confidence"] == pytest.approx(0.75)  # fresh, deep, uncorroborated


def test_severity_follows_the_price_to_reference_ratio():
    def severity(price: int) -> str | None:
        found = find_glitches(
            history(closes("paris", "p1", [100_000] * 30)),
            market(now_listing("paris", "p1", price)),
            Thresholds(),
            NOW,
        )
        return found["severity"].first() if found.height else None

    assert severity(10_000) == "high"
    assert severity(25_000) == "medium"
    assert severity(45_000) == "low"
    assert severity(60_000) is None


def test_margin_uses_the_spread_cost_model():
    found = find_glitches(
        history(closes("paris", "p1", [100_000] * 30)),
        market(now_listing("paris", "p1", 10_000)),
        Thresholds(shipping_cost_clp=5_000, fee_pct=10.0),
        NOW,
    )
    assert only(found)["margin_clp"] == 100_000 - 10_000 - 5_000 - 10_000


def test_step_shaped_history_has_zero_mad_but_a_finite_score():
    steps = [249_990] * 40 + [199_990] * 50
    past = (
        history(closes("ripley", "r1", steps))
        .lazy()
        .with_columns(past_price=pl.col("price_offer"), current_day=pl.lit(TODAY))
    )
    stats = g.robust_log_stats(past).collect().row(0, named=True)
    assert stats["log_median"] == pytest.approx(math.log(199_990))
    assert stats["log_scale"] == g.MAD_FLOOR  # the raw MAD is exactly 0

    found = find_glitches(
        history(closes("ripley", "r1", steps)),
        market(now_listing("ripley", "r1", 39_990)),
        Thresholds(),
        NOW,
    )
    glitch = only(found)
    assert glitch["ref_price"] == 199_990  # most frequent price, not the older step
    assert math.isfinite(glitch["confidence"])
    assert glitch["severity"] == "medium"

    back_up = find_glitches(
        history(closes("ripley", "r1", steps)),
        market(now_listing("ripley", "r1", 249_990)),
        Thresholds(),
        NOW,
    )
    assert back_up.is_empty()


def _segment(drops: dict[str, float]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Five Falabella TVs with flat histories; ``drops`` gives today's price factor by sku."""
    base = {f"f{i}": 100_000 * (i + 1) for i in range(5)}
    hist = history(*[closes("falabella", sku, [price] * 30) for sku, price in base.items()])
    now = market(
        *[
            now_listing("falabella", sku, round(price * drops.get(sku, 1.0)))
            for sku, price in base.items()
        ]
    )
    return hist, now


def test_a_lone_25_percent_drop_is_flagged_when_thresholds_allow_it():
    hist, now = _segment({"f0": 0.75})
    found = find_glitches(hist, now, Thresholds(glitch_ratio_low=0.8), NOW)
    assert found["buy_sku"].to_list() == ["f0"]


def test_a_market_wide_event_drop_is_not_a_glitch():
    # CyberDay: every TV at the store 25 % off on the same day.
    hist, now = _segment({f"f{i}": 0.75 for i in range(5)})
    assert find_glitches(hist, now, Thresholds(glitch_ratio_low=0.8), NOW).is_empty()


def test_a_scraper_bug_dividing_a_whole_segment_is_not_a_glitch():
    hist, now = _segment({f"f{i}": 0.1 for i in range(5)})
    assert find_glitches(hist, now, Thresholds(), NOW).is_empty()


def test_a_segment_wide_drop_is_still_recognised_on_its_second_day():
    hist, now = _segment({f"f{i}": 0.1 for i in range(5)})
    yesterday = TODAY - timedelta(days=1)
    already_bugged = hist.with_columns(
        pl.when(pl.col("day") == yesterday)
        .then(pl.col("price_offer") // 10)
        .otherwise(pl.col("price_offer"))
        .alias("price_offer")
    )
    assert find_glitches(already_bugged, now, Thresholds(), NOW).is_empty()


def test_a_real_glitch_during_an_event_is_still_found_against_the_event_level():
    drops = {f"f{i}": 0.75 for i in range(5)} | {"f2": 0.1}
    hist, now = _segment(drops)
    glitch = only(find_glitches(hist, now, Thresholds(), NOW))
    assert glitch["buy_sku"] == "f2"
    assert glitch["ref_price"] == 225_000  # common price 300 000 moved with the segment
    assert glitch["severity"] == "medium"  # 30 000 / 225 000 = 0.13


def test_a_genuine_40_percent_discount_matched_at_other_stores_is_not_a_glitch():
    # A threshold loose enough that the drop alone would qualify (0.6 <= 0.7).
    thresholds = Thresholds(glitch_ratio_low=0.7)
    hist = history(
        closes("falabella", "f1", FLAT), closes("ripley", "r1", FLAT), closes("paris", "p1", FLAT)
    )

    def run(ripley: int, paris: int) -> pl.DataFrame:
        rows = [
            now_listing("falabella", "f1", 119_990, canonical="tv"),
            now_listing("ripley", "r1", ripley, canonical="tv"),
            now_listing("paris", "p1", paris, canonical="tv"),
        ]
        return find_glitches(hist, market(*rows), thresholds, NOW)

    assert run(ripley=119_990, paris=124_990).is_empty()

    alone = only(run(ripley=199_990, paris=209_990))
    assert alone["buy_retailer"] == "falabella"
    assert (alone["ref_retailer"], alone["ref_price"]) == (None, 199_990)


def test_two_stores_glitching_on_the_same_product_do_not_hide_each_other():
    hist = history(closes("falabella", "f1", FLAT), closes("ripley", "r1", FLAT))
    rows = market(
        now_listing("falabella", "f1", 19_990, canonical="tv"),  # 10 % of normal
        now_listing("ripley", "r1", 1_990, canonical="tv"),  # 1 % of normal
    )
    found = find_glitches(hist, rows, Thresholds(), NOW)
    assert sorted(found["buy_retailer"].to_list()) == ["falabella", "ripley"]
    falabella = found.filter(pl.col("buy_retailer") == "falabella").row(0, named=True)
    # The deeper glitch elsewhere is no reference: the listing's own history is.
    assert (falabella["ref_retailer"], falabella["ref_price"]) == (None, 199_990)


def test_other_stores_reference_names_the_store_when_it_is_the_lower_reference():
    hist = history(closes("falabella", "f1", FLAT), closes("ripley", "r1", FLAT))
    rows = market(
        now_listing("falabella", "f1", 9_990, canonical="tv"),
        now_listing("ripley", "r1", 179_990, canonical="tv", match=0.8),
    )
    glitch = only(find_glitches(hist, rows, Thresholds(), NOW))
    assert (glitch["ref_retailer"], glitch["ref_price"]) == ("ripley", 179_990)
    assert glitch["confidence"] == pytest.approx(0.75 + 0.25 * 0.8)


def test_a_card_only_glitch_is_reported_as_card_and_the_offer_series_is_untouched():
    hist = history(closes("ripley", "r1", [299_990] * 60, cards=[279_990] * 60))
    rows = market(now_listing("ripley", "r1", 299_990, card=2_990))

    glitch = only(find_glitches(hist, rows, Thresholds(), NOW))
    assert (glitch["buy_price"], glitch["buy_price_type"]) == (2_990, "card")
    assert glitch["ref_price"] == 279_990  # the card series' own normal price
    assert glitch["severity"] == "high"


def test_a_permanently_lower_card_price_is_not_an_offer_glitch():
    hist = history(closes("ripley", "r1", [299_990] * 60, cards=[129_990] * 60))
    rows = market(now_listing("ripley", "r1", 299_990, card=129_990))
    assert find_glitches(hist, rows, Thresholds(), NOW).is_empty()


def test_offer_and_card_glitches_of_one_listing_get_different_ids():
    hist = history(closes("ripley", "r1", [299_990] * 60, cards=[279_990] * 60))
    found = find_glitches(
        hist, market(now_listing("ripley", "r1", 2_990, card=1_990)), Thresholds(), NOW
    )
    assert sorted(found["buy_price_type"]) == ["card", "offer"]
    assert found["opportunity_id"].n_unique() == 2


def test_a_listing_with_less_than_a_week_of_history_is_not_flagged():
    found = find_glitches(
        history(closes("paris", "p1", [199_990] * 5)),
        market(now_listing("paris", "p1", 9_990)),
        Thresholds(),
        NOW,
    )
    assert found.is_empty()


def test_an_out_of_stock_listing_is_not_an_opportunity():
    found = find_glitches(
        history(closes("paris", "p1", FLAT)),
        market(now_listing("paris", "p1", 9_990, in_stock=False)),
        Thresholds(),
        NOW,
    )
    assert found.is_empty()


def test_todays_close_in_the_history_does_not_hide_the_glitch():
    glitch_close = {**closes("paris", "p1", [9_990])[0], "day": TODAY}  # already closed today
    rows = [*closes("paris", "p1", FLAT), glitch_close]
    found = find_glitches(
        history(rows), market(now_listing("paris", "p1", 9_990)), Thresholds(), NOW
    )
    assert only(found)["ref_price"] == 199_990


def test_empty_inputs_give_an_empty_frame_with_the_contract():
    found = find_glitches(history(), market(), Thresholds(), NOW)
    assert found.is_empty()
    assert found.schema == pl.Schema(OPPORTUNITY_SCHEMA)
