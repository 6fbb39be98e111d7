"""Watch rules: target price, % drop, N-day low, back in stock — scoped, in bulk."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from arbx_dagster.alerts.rules import (
    WatchRule,
    evaluate_watch_rules,
    rules_frame,
    rules_from_frame,
    rules_from_json,
    rules_to_json,
)
from arbx_dagster.domain.schema import PRICE_HISTORY_SCHEMA

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 12:00 in Santiago
TODAY = date(2026, 11, 23)


def listing(sku: str, offer: int, **extra: object) -> dict:
    return {
        "retailer": "falabella",
        "sku": sku,
        "canonical_id": "tv-55",
        "name": f"TV {sku}",
        "category": "Tecnología > TV > Televisores",
        "url": f"https://x/{sku}",
        "price_offer": offer,
        "price_card": None,
        "in_stock": True,
        "is_first_party": True,
        "last_seen": NOW,
    } | extra


def closes(sku: str, offers: list[int], stock: list[bool] | None = None) -> list[dict]:
    stock = stock or [True] * len(offers)
    start = TODAY - timedelta(days=len(offers))
    return [
        {
            "retailer": "falabella",
            "sku": sku,
            "day": start + timedelta(days=i),
            "price_offer": p,
            "in_stock": s,
        }
        for i, (p, s) in enumerate(zip(offers, stock, strict=True))
    ]


def evaluate(rules: list[WatchRule], listings: list[dict], history: list[dict]) -> pl.DataFrame:
    hist = pl.DataFrame(history, schema=PRICE_HISTORY_SCHEMA)
    return evaluate_watch_rules(rules, pl.DataFrame(listings), hist, NOW)


def hits(frame: pl.DataFrame) -> list[tuple[str, str]]:
    return frame.filter("hit").select("rule_id", "sku").rows()


def test_target_price_fires_at_or_below_the_target_and_rearms_above_a_band():
    rule = WatchRule("r1", "target_price", target_price=300_000, canonical_id="tv-55")
    found = evaluate(
        [rule],
        [listing("a", 299_990), listing("b", 305_000), listing("c", 320_000)],
        [],
    )
    assert hits(found) == [("r1", "a")]
    # b is above the target but inside the 2 % band: neither fires nor re-arms (no flapping).
    assert found.filter("rearm")["sku"].to_list() == ["c"]


def test_pct_drop_is_measured_from_the_high_of_the_window():
    rule = WatchRule("r2", "pct_drop", pct=20, days=7)
    found = evaluate(
        [rule],
        [listing("a", 299_990), listing("b", 399_990)],
        closes("a", [399_990] * 3 + [349_990] * 4) + closes("b", [399_990] * 7),
    )
    row = found.filter("hit").row(0, named=True)
    assert (row["sku"], row["reference_price"]) == ("a", 399_990)
    assert row["drop_pct"] == pytest.approx(25.0, abs=0.01)
    assert found.filter(pl.col("sku") == "b")["rearm"].to_list() == [True]


def test_lowest_in_days_fires_on_a_new_low_only():
    rule = WatchRule("r3", "lowest_in_days", days=5)
    found = evaluate(
        [rule],
        [listing("a", 279_990), listing("b", 299_990), listing("c", 279_990)],
        closes("a", [299_990] * 5)
        + closes("b", [299_990] * 5)
        # c was lower six days ago: outside the 5-day window, so today is a 5-day low.
        + closes("c", [269_990] + [299_990] * 5),
    )
    assert hits(found) == [("r3", "a"), ("r3", "c")]
    assert found.filter(pl.col("sku") == "b").is_empty()  # equal to the low: stays armed


def test_back_in_stock_needs_the_previous_close_out_of_stock():
    rule = WatchRule("r4", "back_in_stock")
    found = evaluate(
        [rule],
        [listing("a", 299_990), listing("b", 299_990), listing("c", 299_990, in_stock=False)],
        closes("a", [299_990] * 3, [True, False, False])
        + closes("b", [299_990] * 3)
        + closes("c", [299_990] * 3),
    )
    assert hits(found) == [("r4", "a")]
    assert found.filter("rearm")["sku"].to_list() == ["c"]


def test_scope_first_party_retailer_and_category():
    listings = [
        listing("own", 99_990),
        listing("mkt", 99_990, is_first_party=False),
        listing("rip", 99_990, retailer="ripley"),
        listing("fridge", 99_990, category="Electro > Refrigeradores"),
    ]
    rules = [
        WatchRule(
            "first",
            "target_price",
            target_price=100_000,
            first_party_only=True,
            category="televisores",
        ),
        WatchRule("store", "target_price", target_price=100_000, retailers=("ripley",)),
        WatchRule("sku", "target_price", target_price=100_000, sku="fridge"),
    ]
    assert sorted(hits(evaluate(rules, listings, []))) == [
        ("first", "own"),
        ("first", "rip"),
        ("sku", "fridge"),
        ("store", "rip"),
    ]


def test_card_prices_count_only_when_the_rule_says_so():
    listings = [listing("a", 329_990, price_card=289_990)]
    plain = WatchRule("plain", "target_price", target_price=300_000)
    card = WatchRule("card", "target_price", target_price=300_000, include_card=True)
    assert hits(evaluate([plain, card], listings, [])) == [("card", "a")]


def test_rules_are_plain_data_in_json_and_frames():
    rules = rules_from_json(
        '[{"rule_id": "r1", "kind": "pct_drop", "pct": 15, "retailers": "falabella, Paris",'
        ' "category": "televisores", "owner": "ana"},'
        ' {"rule_id": "r2", "kind": "back_in_stock", "sku": "123", "enabled": false}]'
    )
    assert rules[0].retailers == ("falabella", "paris")
    assert rules_from_json(rules_to_json(rules)) == rules
    assert rules_from_frame(rules_frame(rules)) == rules
    # A disabled rule is stored but never evaluated.
    assert evaluate(rules[1:], [listing("123", 1_000)], []).is_empty()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rule_id": "x", "kind": "moon"}, "kind must be one of"),
        ({"rule_id": "x", "kind": "target_price"}, "positive target_price"),
        ({"rule_id": "x", "kind": "pct_drop", "pct": 120}, "between 0 and 100"),
        ({"rule_id": "x", "kind": "back_in_stock", "colour": "red"}, "unknown watch rule"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(data, message):
    with pytest.raises(ValueError, match=message):
        WatchRule.from_dict(data)
