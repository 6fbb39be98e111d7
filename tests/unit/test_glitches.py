"""Glitches: far below the listing's own normal price, its segment and the other stores."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from arbx_dagster.domain import glitches as g
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitch_confirmation import (
    confirm_glitches,
    must_confirm,
    needs_confirmation,
)
from arbx_dagster.domain.glitch_kinds import GLITCH_ROI_CAP_PCT
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
    assert severity(35_000) == "low"
    assert severity(45_000) is None  # no deeper than a promotion (at most half off) may go
    assert severity(60_000) is None


def test_margin_uses_the_spread_cost_model():
    found = find_glitches(
        history(closes("paris", "p1", [100_000] * 30)),
        market(now_listing("paris", "p1", 10_000)),
        Thresholds(shipping_cost_clp=5_000, fee_pct=10.0),
        NOW,
    )
    assert only(found)["margin_clp"] == 100_000 - 10_000 - 5_000 - 10_000


def test_a_step_shaped_history_is_judged_against_its_current_step():
    steps = [249_990] * 40 + [199_990] * 50
    windows = pl.DataFrame({"retailer": ["ripley"], "sku": ["r1"], "current_day": [TODAY]})
    stats = g.window_stats(
        windows, history(closes("ripley", "r1", steps)), "price_offer", low=0.4
    ).row(0, named=True)
    assert (stats["common_price"], stats["recent_price"]) == (199_990, 199_990)
    assert stats["history_days"] == 90

    found = find_glitches(
        history(closes("ripley", "r1", steps)),
        market(now_listing("ripley", "r1", 39_990)),
        Thresholds(),
        NOW,
    )
    glitch = only(found)
    assert glitch["ref_price"] == 199_990  # the current step, not the older one
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
    # glitch_ratio_low is a setting: 0.8 makes any 20 % drop a glitch candidate.
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
    assert glitch["ref_price"] == 225_000  # its usual 300 000 moved with the segment
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


def test_a_card_price_that_follows_its_offer_down_is_judged_by_the_offer_series():
    # The card series is sparse (shown only during card promotions): its history says
    # 279 990, but today's card price sits where card prices sit, 10 % under the offer.
    hist = history(closes("ripley", "r1", [299_990] * 60, cards=[279_990] * 10 + [None] * 50))
    rows = market(now_listing("ripley", "r1", 154_990, card=139_490))
    assert find_glitches(hist, rows, Thresholds(), NOW).is_empty()  # offer: 52 % of normal
    deeper = market(now_listing("ripley", "r1", 109_990, card=98_990))
    assert find_glitches(hist, deeper, Thresholds(), NOW)["buy_price_type"].to_list() == ["offer"]


def test_a_card_only_deal_of_half_the_offer_is_no_glitch_but_a_tenth_is():
    hist = history(closes("ripley", "r1", [299_990] * 60))  # no card price shown before
    deal = market(now_listing("ripley", "r1", 299_990, card=149_990))
    assert find_glitches(hist, deal, Thresholds(), NOW).is_empty()
    typo = market(now_listing("ripley", "r1", 299_990, card=29_990))
    glitch = only(find_glitches(hist, typo, Thresholds(), NOW))
    assert (glitch["buy_price_type"], glitch["ref_price"]) == ("card", 299_990)


def test_offer_and_card_glitches_of_one_listing_get_different_ids():
    hist = history(closes("ripley", "r1", [299_990] * 60, cards=[279_990] * 60))
    found = find_glitches(
        hist, market(now_listing("ripley", "r1", 2_990, card=990)), Thresholds(), NOW
    )
    assert sorted(found["buy_price_type"]) == ["card", "offer"]
    assert found["opportunity_id"].n_unique() == 2


def test_a_listing_with_a_few_days_of_history_is_judged_on_them():
    found = find_glitches(
        history(closes("paris", "p1", [199_990] * 3)),
        market(now_listing("paris", "p1", 9_990)),
        Thresholds(),
        NOW,
    )
    assert (only(found)["ref_price"], only(found)["severity"]) == (199_990, "high")


def test_on_its_first_day_a_listing_is_judged_by_the_other_stores_alone():
    hist = history(closes("ripley", "r1", FLAT), closes("paris", "p1", [209_990] * 60))

    def run(price: int) -> pl.DataFrame:
        rows = market(
            now_listing("falabella", "f1", price, canonical="tv"),  # never seen before
            now_listing("ripley", "r1", 199_990, canonical="tv"),
            now_listing("paris", "p1", 209_990, canonical="tv"),
        )
        return g.glitch_details(hist, rows, Thresholds(), NOW)

    glitch = only(run(19_990))
    assert (glitch["ref_retailer"], glitch["ref_price"], glitch["evidence"]) == (
        "ripley",
        199_990,
        "stores",
    )
    # A launch price at half the others' (this store may be cheaper than them) is no glitch.
    assert run(99_990).is_empty()
    assert run(69_990).is_empty()  # 35 %: alone, the other stores must say more


def test_one_peso_is_a_glitch_even_with_no_history_and_no_other_store():
    schema = {**MARKET_SCHEMA, "price_list": pl.Int64}
    for price_list, evidence in ((89_990, "list price"), (None, "shelf floor")):
        row = now_listing("paris", "p1", 1) | {"price_list": price_list}
        points = g.market_points(pl.DataFrame([row], schema=schema), Thresholds(), NOW)
        found = g.glitch_panel(points, history(), Thresholds())
        assert (found["severity"].to_list(), found["evidence"].to_list()) == (["high"], [evidence])
    # Listed only with a known margin: against its list price, not against nothing.
    listed = g.glitch_details(history(), pl.DataFrame([row], schema=schema), Thresholds(), NOW)
    assert listed.is_empty()


def test_with_nothing_else_30_percent_of_its_own_list_price_is_a_glitch_but_a_big_sale_is_not():
    schema = {**MARKET_SCHEMA, "price_list": pl.Int64}

    def run(price: int) -> pl.DataFrame:
        row = now_listing("paris", "p1", price) | {"price_list": 899_990}
        return g.glitch_details(history(), pl.DataFrame([row], schema=schema), Thresholds(), NOW)

    assert only(run(89_990))["ref_price"] == 899_990
    assert only(run(269_990))["evidence"] == "list price"  # 70 % off: no sale goes that far
    assert run(299_990).is_empty()  # "67 % off" a list price with a markup: a sale, maybe
    assert run(449_990).is_empty()  # half off


def test_on_its_first_day_the_other_stores_and_its_own_list_price_together_say_enough():
    # 35 % of the other store's price is not enough for that store alone (it may be the
    # cheaper one), nor 30 % of a list price alone; both at once are two references agreeing.
    hist = history(closes("ripley", "r1", FLAT))
    schema = {**MARKET_SCHEMA, "price_list": pl.Int64}

    def run(price: int, price_list: int) -> pl.DataFrame:
        rows = [
            now_listing("falabella", "f1", price, canonical="tv") | {"price_list": price_list},
            now_listing("ripley", "r1", 199_990, canonical="tv") | {"price_list": None},
        ]
        return g.glitch_details(hist, pl.DataFrame(rows, schema=schema), Thresholds(), NOW)

    glitch = only(run(69_990, 249_990))  # 35 % of ripley's, 28 % of its own list price
    assert (glitch["evidence"], glitch["ref_retailer"], glitch["ref_price"]) == (
        "stores+list price",
        "ripley",
        199_990,
    )
    assert run(69_990, 199_990).is_empty()  # 35 % of its list: a big sale, maybe
    assert run(89_990, 299_990).is_empty()  # 45 % of the other store's: no agreement


def test_a_three_day_glitch_is_flagged_on_each_of_its_days():
    usual = [149_990] * 40
    for days_in, wrong in enumerate((14_999, 14_999, 1_499)):
        found = glitch_details_for("paris", "p1", usual + [14_999] * days_in, wrong)
        assert found["ref_price"].to_list() == [149_990], days_in


def test_a_promotion_weeks_after_a_permanent_cut_is_not_a_glitch():
    # 299 990 for two months, cut for good to 239 990, and three weeks later a 45 % sale:
    # 56 % below the old level, but only 45 % below the price it has now.
    offers = [299_990] * 60 + [239_990] * 21
    assert glitch_details_for("ripley", "r1", offers, 131_990).is_empty()
    assert glitch_details_for("ripley", "r1", offers + [131_990] * 3, 131_990).is_empty()
    # A mistake then is measured against the new level.
    assert glitch_details_for("ripley", "r1", offers, 23_999)["ref_price"].to_list() == [239_990]


def test_a_list_price_cut_today_is_the_new_regular_price_unless_it_is_a_mistake_too():
    # 139 990 for two months. Today the store's list price ("precio normal") is 94 990 and
    # the offer 53 990: the regular price was cut and a 43 % sale runs on top of it — a
    # promotion leaves the list price as it was.
    hist = history(closes("ripley", "r1", [139_990] * 60))
    schema = {**MARKET_SCHEMA, "price_list": pl.Int64}

    def run(price: int, price_list: int) -> pl.DataFrame:
        row = now_listing("ripley", "r1", price) | {"price_list": price_list}
        return g.glitch_details(hist, pl.DataFrame([row], schema=schema), Thresholds(), NOW)

    assert run(53_990, 139_990).height == 1  # list price unchanged: 39 % of the price
    assert run(53_990, 94_990).is_empty()
    # A mistake below the new list price is measured against it, and the reason says so.
    glitch = only(run(9_490, 94_990))
    assert glitch["ref_price"] == 94_990
    assert "of $94.990 (its list price, cut below its history)" in glitch["reason"]
    assert "list price $94.990" in glitch["reason"]
    # A whole price block mistyped, list price included, is no new regular price.
    glitch = only(run(13_999, 13_999))
    assert glitch["ref_price"] == 139_990


def test_a_sale_the_day_after_a_price_cut_is_measured_against_the_cut():
    # 149 990 for two months, cut to 89 990 (40 % off) yesterday, and a sale today at
    # 49 990: 67 % below the old level, but 44 % below what the store charged yesterday.
    offers = [149_990] * 60 + [89_990]
    assert glitch_details_for("paris", "p1", offers, 49_990).is_empty()
    assert glitch_details_for("paris", "p1", [*offers, 89_990], 49_990).is_empty()
    # A mistake after the cut is a mistake against the cut, and the reason says where
    # that reference comes from.
    found = glitch_details_for("paris", "p1", offers, 8_999).row(0, named=True)
    assert (found["ref_price"], found["last_price"]) == (89_990, 89_990)
    assert "last close $89.990" in found["reason"]


def test_a_sale_that_ended_is_not_the_reference_of_the_day_after():
    # Five sale days at half price fill most of the last seven closes, but the price is
    # back at its usual level: a mistake now is measured against the usual price.
    offers = [37_990] * 60 + [18_990] * 5 + [37_990]
    found = glitch_details_for("paris", "p1", offers, 10_990)
    assert found["ref_price"].to_list() == [37_990]
    # While the sale lasts, it is the price now: the same price is then no glitch.
    assert glitch_details_for("paris", "p1", offers[:-1], 10_990).is_empty()


def test_a_price_at_a_glitchs_depth_yesterday_stays_the_mistake_it_was():
    # One or two days at 35 % of the usual price (a mistake not yet fixed): not the
    # reference, so today, at that price or a deeper one, is judged against the usual price.
    usual = [149_990] * 60
    for days in (1, 2):
        for today in (52_490, 14_999):
            found = glitch_details_for("paris", "p1", usual + [52_490] * days, today)
            assert found["ref_price"].to_list() == [149_990], (days, today)


def test_a_glitch_yesterday_is_not_what_the_store_charged():
    # Three sale days at 60 %, back to the usual price, then a 16-peso mistake yesterday:
    # today's second wrong price is measured against the price charged before the mistake,
    # not against a recent median the sale and the mistake pulled down.
    offers = [13_990] * 60 + [8_390] * 3 + [13_990] + [16]
    found = glitch_details_for("falabella", "f1", offers, 3_990)
    assert found["ref_price"].to_list() == [13_990]


def test_a_sale_that_deepens_is_judged_alike_on_each_of_its_days():
    # 224 990 as a rule, two days at 144 990, then 88 990: 61 % of what the store charged,
    # a deeper sale, not a mistake — on its first day and on its second (yesterday's close,
    # 40 % of the usual price, does not send the reference back to the usual price).
    offers = [224_990] * 60 + [144_990] * 2
    assert glitch_details_for("ripley", "r1", offers, 88_990).is_empty()
    assert glitch_details_for("ripley", "r1", [*offers, 88_990], 88_990).is_empty()


def test_stores_all_that_low_together_are_the_market_moving_not_a_mistake():
    hist = history(closes("falabella", "f1", FLAT), closes("ripley", "r1", FLAT))
    rows = market(
        now_listing("falabella", "f1", 59_990, canonical="tv"),  # 30 % of the usual price
        now_listing("ripley", "r1", 64_990, canonical="tv"),
    )
    assert find_glitches(hist, rows, Thresholds(), NOW).is_empty()


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


# --- The bar: level resets, event baselines, unit errors, stale prices, confirmation


def series_closes(retailer: str, sku: str, offers: list[int], end: date) -> list[dict]:
    """Daily closes for the days before ``end``, oldest first."""
    start = end - timedelta(days=len(offers))
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


def noon_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 16, 0, tzinfo=UTC)  # 12:00 or 13:00 Santiago


def test_window_stats_equal_a_direct_computation_on_every_day():
    # Steps, a wiggle, a glitch and a permanent cut: every path through the references.
    offers = [100_000] * 20 + [104_990] * 9 + [9_990] + [100_000] * 30 + [59_990] * 12
    offers += [61_990] * 3 + [59_990] * 5
    hist = history(series_closes("paris", "p1", offers, TODAY))
    days = [*hist["day"].to_list()[1:], TODAY]
    windows = pl.DataFrame({"retailer": "paris", "sku": "p1", "current_day": days})
    stats = {
        r["current_day"]: r
        for r in g.window_stats(windows, hist, "price_offer", low=0.4).to_dicts()
    }

    def lower_median(prices: list[int]) -> int:
        return sorted(prices)[(len(prices) - 1) // 2]

    by_day = dict(zip(hist["day"], hist["price_offer"], strict=True))
    for day in days:
        past = [p for d, p in sorted(by_day.items()) if day - timedelta(days=90) <= d < day]
        got = stats[day]
        assert got["common_price"] == lower_median(past), day
        assert got["recent_price"] == lower_median(past[-7:]), day
        assert got["last_price"] == past[-1], day
        usual = min(got["common_price"], got["recent_price"])
        charged = [p for p in past[-7:] if p > 0.4 * usual]
        assert got["charged_price"] == (charged[-1] if charged else None), day
        assert got["history_days"] == len(past)


def test_a_permanent_cut_is_a_glitch_for_days_then_becomes_the_new_normal():
    def glitches_after(days_at_new_level: int, today_price: int) -> pl.DataFrame:
        offers = [199_990] * 60 + [69_990] * days_at_new_level
        return glitch_details_for("falabella", "f1", offers, today_price)

    # Three days at 35 % of the usual price: as likely a mistake lasting as a new price.
    assert glitches_after(3, 69_990)["buy_price"].to_list() == [69_990]
    # Four of the last seven closes at the new price: it *is* the price now.
    assert glitches_after(4, 69_990).is_empty()
    # And a glitch at the new level is measured against the new level.
    found = glitches_after(10, 6_990).row(0, named=True)
    assert (found["ref_price"], found["recent_price"], found["severity"]) == (
        69_990,
        69_990,
        "high",
    )
    assert found["history_days"] == 70


def glitch_details_for(
    retailer: str, sku: str, offers: list[int], price: int, *, today: date = TODAY, name=None
) -> pl.DataFrame:
    row = now_listing(retailer, sku, price) | {"last_seen": noon_utc(today)}
    if name:
        row["name"] = name
    return g.glitch_details(
        history(series_closes(retailer, sku, offers, today)),
        market(row),
        Thresholds(),
        noon_utc(today),
    )


def test_a_price_inflated_before_cyberday_fools_no_one():
    cyberday = date(2026, 6, 1)
    # 12 days "before", the price raised from 100 000 to 150 000, then the event price:
    # 53 % off the inflated price, only 30 % off the real one.
    offers = [100_000] * 78 + [150_000] * 12
    found = glitch_details_for("paris", "p1", offers, 69_990, today=cyberday)
    assert found.is_empty()
    # On an ordinary day too: the last week says 150 000, the 90-day median 100 000.
    day = date(2026, 5, 15)
    assert glitch_details_for("paris", "p1", offers, 69_990, today=day).is_empty()

    # A real mistake during the event is still one, with the pre-event level as evidence.
    found = glitch_details_for("paris", "p1", offers, 9_990, today=cyberday).row(0, named=True)
    assert (found["event_baseline"], found["ref_price"]) == (100_000, 100_000)
    assert "30-day pre-event median $100.000" in found["reason"]


@pytest.mark.parametrize(
    ("name", "usual", "shown", "kind"),
    [
        ("Pack 6 Bebida Lata 350cc", 35_990, 5_990, "pack_size"),
        ("Bebida Lata 350cc 12 unidades", 71_990, 5_990, "pack_size"),
        ("Notebook 14", 1_299_990, 129_990, "digit_slip"),
        ("Notebook 14", 1_299_990, 12_999, "digit_slip"),
        ("Notebook 14", 1_299_990, 1_300, "thousands"),
        ("Notebook 14", 1_299_990, 1_625, "currency"),  # US$ at ~800 CLP
        ("Audífonos", 199_990, 4, "implausible"),
        ("Audífonos", 199_990, 39_990, "deep_discount"),
    ],
)
def test_unit_pack_and_currency_mistakes_are_glitches_with_a_reason_never_rescaled(
    name, usual, shown, kind
):
    found = glitch_details_for("ripley", "r1", [usual] * 30, shown, name=name).row(0, named=True)
    assert found["glitch_type"] == kind
    assert found["buy_price"] == shown  # the price the store showed, as it showed it
    assert found["ref_price"] == usual


def test_the_reason_reads_like_evidence():
    found = glitch_details_for("ripley", "r1", [1_299_990] * 30, 129_990).row(0, named=True)
    assert found["reason"] == (
        "offer $129.990 is 10.0 % of $1.299.990 (its own history); judged on its own history; "
        "90-day median $1.299.990, last 7 closes $1.299.990, last close $1.299.990 "
        "(30 d of history); "
        "likely a lost digit (x10)"
    )


def test_a_stale_price_makes_no_glitch_and_is_no_reference():
    hist = history(closes("falabella", "f1", FLAT), closes("paris", "p1", FLAT))
    stale = now_listing("falabella", "f1", 9_990) | {"last_seen": NOW - timedelta(hours=30)}
    assert find_glitches(hist, market(stale), Thresholds(), NOW).is_empty()
    fresh = now_listing("falabella", "f1", 9_990) | {"last_seen": NOW - timedelta(hours=2)}
    assert find_glitches(hist, market(fresh), Thresholds(), NOW).height == 1

    # Too old to buy at, Paris's price of two days ago still says what the product sells
    # for (a scrape or two of it failed); a week-old one no longer does.
    def judged_beside_paris(seen_hours_ago: int) -> dict:
        rows = market(
            now_listing("falabella", "f1", 9_990, canonical="tv"),
            now_listing("paris", "p1", 150_000, canonical="tv")
            | {"last_seen": NOW - timedelta(hours=seen_hours_ago)},
        )
        return only(find_glitches(hist, rows, Thresholds(), NOW))

    glitch = judged_beside_paris(48)
    assert (glitch["ref_retailer"], glitch["ref_price"]) == ("paris", 150_000)
    glitch = judged_beside_paris(7 * 24)
    assert (glitch["ref_retailer"], glitch["ref_price"]) == (None, 199_990)


def test_stores_seen_that_low_a_day_or_two_ago_are_still_the_market_moving():
    hist = history(closes("falabella", "f1", FLAT), closes("ripley", "r1", FLAT))
    ripley_low = now_listing("ripley", "r1", 64_990, canonical="tv")
    falabella = now_listing("falabella", "f1", 59_990, canonical="tv")  # 30 % of the usual
    for hours_ago in (30, 60):  # ripley's last scrapes failed: it was seen then
        rows = market(falabella, ripley_low | {"last_seen": NOW - timedelta(hours=hours_ago)})
        assert find_glitches(hist, rows, Thresholds(), NOW).is_empty()
    # Ripley unseen for a week: the market is unknown, the listing's own history decides.
    rows = market(falabella, ripley_low | {"last_seen": NOW - timedelta(days=7)})
    assert only(find_glitches(hist, rows, Thresholds(), NOW))["buy_retailer"] == "falabella"


def _candidates() -> pl.DataFrame:
    hist = history(*[closes("paris", f"p{i}", [200_000] * 30) for i in range(5)])
    rows = [now_listing("paris", f"p{i}", 9_990, category=f"c{i}") for i in range(5)]
    return g.glitch_details(hist, market(*rows), Thresholds(), NOW)


def test_high_severity_glitches_need_confirmation():
    found = _candidates()
    assert found["needs_confirmation"].all()
    assert found.select(needs_confirmation()).to_series().all()


@pytest.mark.parametrize(
    ("name", "usual", "shown", "kind", "severity", "confirm"),
    [
        # A pack at the unit price is likelier a misread page than a published price.
        ("Pack 6 Bebida Lata 350cc", 35_990, 5_990, "pack_size", "medium", True),
        ("Bebida Lata 350cc 3 unidades", 17_990, 5_990, "pack_size", "low", True),
        ("Notebook 14", 1_299_990, 1_625, "currency", "high", True),
        # A plain deep discount below "high" alerts without a re-fetch.
        ("Audífonos", 199_990, 39_990, "deep_discount", "medium", False),
    ],
)
def test_pack_size_and_currency_glitches_need_confirmation_whatever_their_severity(
    name, usual, shown, kind, severity, confirm
):
    found = glitch_details_for("ripley", "r1", [usual] * 30, shown, name=name)
    row = found.row(0, named=True)
    assert (row["glitch_type"], row["severity"]) == (kind, severity)
    assert row["needs_confirmation"] is confirm
    assert found.select(needs_confirmation()).item() is confirm
    assert must_confirm(row["kind"], row["severity"], row["glitch_type"]) is confirm


def test_confirmation_by_refetch_confirms_rejects_or_waits():
    candidates = _candidates()
    later = NOW + timedelta(minutes=5)
    refetched = pl.DataFrame(
        {
            "retailer": ["paris"] * 5,
            "sku": ["p0", "p1", "p2", "p3", "p4"],
            "price_offer": [19_990, 199_990, 9_990, 9_990, 9_990],
            "price_card": [None] * 5,
            "in_stock": [True, True, False, True, True],
            "observed_at": [later, later, later, NOW - timedelta(hours=1), later],
            "fetch_status": ["ok", "ok", "ok", "ok", "missing"],
        }
    )
    outcome = confirm_glitches(candidates, refetched, Thresholds())

    confirmed = only(outcome.confirmed)
    assert (confirmed["buy_sku"], confirmed["buy_price"]) == ("p0", 19_990)
    assert confirmed["severity"] == "high"  # 19 990 / 200 000 = 0.0999
    assert confirmed["margin_clp"] == 200_000 - 19_990
    assert confirmed["observed_at"] == later
    rejected = dict(outcome.rejected.select("buy_sku", "rejection").iter_rows())
    assert rejected == {"p1": "price recovered", "p2": "out of stock"}
    # An older observation or a failed fetch proves nothing yet.
    assert sorted(outcome.pending["buy_sku"]) == ["p3", "p4"]


def test_the_benchmark_panel_finds_exactly_what_the_pipeline_finds_each_day():
    offers = {"f1": FLAT, "f2": [89_990] * 60, "r1": [199_990] * 60}
    hist = history(
        *[closes("ripley" if s[0] == "r" else "falabella", s, o) for s, o in offers.items()]
    )
    today = [
        now_listing("falabella", "f1", 19_990, canonical="tv"),
        now_listing("falabella", "f2", 89_990),
        now_listing("ripley", "r1", 189_990, canonical="tv"),
    ]
    live = find_glitches(hist, market(*today), Thresholds(), NOW)

    # The same market twice, as two panels: each panel alone gives the pipeline's answer.
    points = pl.concat(
        [
            g.market_points(market(*today), Thresholds(), NOW).with_columns(panel=pl.lit(p))
            for p in (1, 2)
        ]
    )
    panel = g.glitch_panel(points, hist, Thresholds())
    assert panel.height == 2 * live.height == 2
    for p in (1, 2):
        assert panel.filter(pl.col("panel") == p).select(live.columns).equals(live)


def test_min_margin_filters_glitches_as_it_filters_spreads():
    hist = history(closes("paris", "p1", [113_990] * 30))
    rows = market(now_listing("paris", "p1", 10_001))  # margin 103 989
    assert only(find_glitches(hist, rows, Thresholds(), NOW))["margin_clp"] == 103_989
    assert find_glitches(hist, rows, Thresholds(min_margin_clp=200_000), NOW).is_empty()


def test_a_glitch_shows_its_depth_and_a_capped_roi():
    found = glitch_details_for("ripley", "r1", [89_990] * 30, 1)
    glitch = found.row(0, named=True)
    assert glitch["depth_pct"] == pytest.approx(-99.9989, abs=1e-3)
    assert glitch["roi_pct"] == GLITCH_ROI_CAP_PCT  # not 8 998 900 %


def test_segment_moves_from_stored_changes_are_the_moves_found_inline():
    """An incremental pass rebuilds each segment's move from the listings' kept changes:
    it must be the move the detector finds over the same listings (nulls say nothing)."""
    import numpy as np

    from arbx_dagster.domain.glitch_references import SEGMENT, market_move, segment_moves

    rng = np.random.default_rng(5)
    n = 400
    reference = rng.integers(10_000, 90_000, n).astype(float)
    drop = np.where(rng.random(n) < 0.5, rng.uniform(0.4, 1.0, n), 1.0)
    points = pl.DataFrame(
        {
            "panel": [0] * n,
            "retailer": rng.choice(["paris", "ripley"], n),
            "category": rng.choice(["tv", "audio", None], n),
            "current_day": [date(2026, 11, 24)] * n,
            "price": (reference * drop).round(),
            "own_base": np.where(rng.random(n) < 0.2, np.nan, reference),
        }
    ).with_columns(pl.col("own_base").fill_nan(None))
    inline = market_move(points.lazy(), "own_base").collect()
    changes = points.select(*SEGMENT, change=(pl.col("price") / pl.col("own_base")).log())
    stored = changes.filter(pl.col("change").is_not_null())
    rebuilt = points.lazy().pipe(market_move, "own_base", segment_moves(stored)).collect()
    assert inline["move"].to_list() == rebuilt["move"].to_list()
    assert inline["move"].min() < 0  # some segment moved, so the comparison says something


def test_the_changes_kept_for_segment_moves_are_the_ones_the_detector_uses():
    offers = [120_000] * 20
    rows = [
        now_listing("paris", sku, price) | {"last_seen": noon_utc(TODAY)}
        for sku, price in (("p1", 90_000), ("p2", 60_000), ("p3", 119_990))
    ]
    closes = pl.concat(
        [history(series_closes("paris", s, offers, TODAY)) for s in ("p1", "p2", "p3")]
    )
    args = (closes, market(*rows), Thresholds(), noon_utc(TODAY))
    kept = g.market_changes(*args).sort("sku", "price_type")
    assert kept.height == 3  # one offer change per listing with a history
    assert kept.equals(g.market_glitches(*args).changes.sort("sku", "price_type"))
