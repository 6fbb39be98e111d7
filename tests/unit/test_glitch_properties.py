"""The glitch detector's behaviour as a specification, checked on generated series.

Each property is stated in terms of what retailers do (a promotion takes at most half off,
a mistake is fixed within three days, a permanent cut is the new price) and is checked over
series hypothesis generates: step-shaped histories with earlier promotions and permanent
shifts, zero to two other stores at nearby prices or on their own sales, list and card
prices. The detector is the one the pipeline and the bench share (``glitch_panel``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbx_dagster.domain import glitches as g
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitch_references import LEVEL_ADOPTED_AFTER
from arbx_dagster.domain.schema import PRICE_HISTORY_SCHEMA

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)  # 12:00 in Santiago, no shopping event near
TODAY = date(2025, 3, 10)
THRESHOLDS = Thresholds()
STORES = ("falabella", "ripley")  # the other stores; the listing judged is at Paris
SEVERITY_RANK = {None: 0, "low": 1, "medium": 2, "high": 3}

# 50 examples each keep the suite fast; ARBX_PROPERTY_EXAMPLES=1000 searches harder.
PROPERTY = settings(
    max_examples=int(os.environ.get("ARBX_PROPERTY_EXAMPLES", "50")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def shelf_floor(value: float) -> int:
    """The shelf price at or below ``value`` (…90 under 10.000 CLP, …990 above, in steps
    of 1.000 under 200.000 and 10.000 over): how stores round a sale price."""
    step = 100 if value < 10_000 else 1_000 if value < 200_000 else 10_000
    return max(int((value + 10) // step) * step - 10, 90)


@dataclass
class Market:
    """The listing judged (Paris) with its daily closes, and the other stores' prices."""

    closes: list[int] = field(default_factory=list)  # oldest first, ending yesterday
    others: list[int] = field(default_factory=list)
    price_list: int | None = None

    def judge(self, price: int, card: int | None = None) -> pl.DataFrame:
        """The detector's glitches (either series) of the listing at ``price`` now."""
        start = TODAY - timedelta(days=len(self.closes))
        rows = [
            {
                "retailer": "paris",
                "sku": "p1",
                "day": start + timedelta(days=i),
                "price_list": self.price_list,
                "price_offer": close,
                "price_card": None,
                "in_stock": True,
                "observations": 1,
            }
            for i, close in enumerate(self.closes)
        ]
        history = pl.DataFrame(rows, schema=PRICE_HISTORY_SCHEMA)
        listings = [("paris", "p1", price, card, self.price_list)]
        listings += [
            (s, f"{s[:3]}1", p, None, None) for s, p in zip(STORES, self.others, strict=False)
        ]
        market = pl.DataFrame(
            [
                {
                    "canonical_id": "product",
                    "match_probability": 1.0,
                    "retailer": retailer,
                    "sku": sku,
                    "name": "Smart TV 55",
                    "category": f"tv-{retailer}",
                    "url": None,
                    "price_list": listed,
                    "price_offer": offer,
                    "price_card": card_price,
                    "in_stock": True,
                    "last_seen": NOW,
                }
                for retailer, sku, offer, card_price, listed in listings
            ]
        )
        points = g.market_points(market, THRESHOLDS, NOW)
        found = g.glitch_panel(points, history, THRESHOLDS)
        return found.filter(pl.col("buy_retailer") == "paris")


# --- generated histories ------------------------------------------------------------------

regular_prices = st.integers(1_990, 2_500_000)


@st.composite
def histories(draw: st.DrawFn, regular: int, min_days: int = 7) -> list[int]:
    """Closes of a listing whose current everyday price is ``regular`` and has held for at
    least ``min_days``: maybe an older level before it (a permanent shift), and ordinary
    promotions (at most half off, a day to a week) scattered over it."""
    days = draw(st.integers(min_days, 80))
    closes = [regular] * days
    if draw(st.booleans()):
        older = shelf_floor(regular * draw(st.floats(0.6, 1.6)))
        closes = [older] * draw(st.integers(1, 60)) + closes
    everyday = list(closes)
    for _ in range(draw(st.integers(0, 3))):
        length = draw(st.integers(1, 7))
        start = draw(st.integers(0, max(len(closes) - length, 0)))
        sale = shelf_floor(everyday[start] * (1 - draw(st.floats(0.1, 0.5))))
        closes[start : start + length] = [sale] * len(closes[start : start + length])
    return closes


@st.composite
def any_history(draw: st.DrawFn, regular: int) -> tuple[str, list[int]]:
    """No history at all, a few days of the regular price, or an established one."""
    kind = draw(st.sampled_from(["none", "a few days", "established"]))
    closes = {
        "none": lambda: [],
        "a few days": lambda: [regular] * draw(st.integers(1, 6)),
        "established": lambda: draw(histories(regular)),
    }[kind]()
    return kind, closes


@st.composite
def other_stores(draw: st.DrawFn, regular: int, at_least: int = 0) -> list[int]:
    """Zero to two other stores: their everyday price within 10 % of this one's, or on their
    own sale (at most half off)."""
    prices = []
    for _ in range(draw(st.integers(at_least, 2))):
        theirs = regular * draw(st.floats(0.9, 1.1))
        if draw(st.booleans()):
            theirs *= 1 - draw(st.floats(0.0, 0.5))
        prices.append(shelf_floor(theirs))
    return prices


# --- the properties -----------------------------------------------------------------------


@PROPERTY
@given(data=st.data(), regular=regular_prices)
def test_a_promotion_of_at_most_half_off_with_the_list_price_unchanged_is_never_a_glitch(
    data: st.DataObject, regular: int
) -> None:
    _, closes = data.draw(any_history(regular))  # a listing's first day too
    depth = data.draw(st.floats(0.0, 0.5))
    sale = shelf_floor(regular * (1 - depth))
    already = data.draw(st.integers(0, 13))  # the sale's days so far
    others = data.draw(other_stores(regular))
    if others and data.draw(st.booleans()):
        others[0] = sale  # a competitor matched it
    listed = shelf_floor(regular * data.draw(st.floats(1.0, 1.3)))
    market = Market(closes + [sale] * already, others, price_list=listed)
    card = shelf_floor(sale * 0.95) if data.draw(st.booleans()) else None  # a normal card price
    assert market.judge(sale, card=card).is_empty()


@PROPERTY
@given(data=st.data(), regular=regular_prices)
def test_a_sale_of_at_most_half_off_a_list_price_lowered_today_is_never_a_glitch(
    data: st.DataObject, regular: int
) -> None:
    # The store cut its regular price today (up to 55 %: the list price says so, where a
    # promotion leaves it as it was) and runs a sale on top of the new price at once.
    closes = data.draw(histories(regular))
    new_list = shelf_floor(regular * data.draw(st.floats(0.45, 1.0)))
    sale = shelf_floor(new_list * (1 - data.draw(st.floats(0.0, 0.5))))
    others = data.draw(other_stores(regular))  # still at the old level, or on their own sale
    assert Market(closes, others, price_list=new_list).judge(sale).is_empty(), (
        closes[-7:],
        new_list,
        sale,
        others,
    )


@PROPERTY
@given(data=st.data(), regular=regular_prices)
def test_a_price_at_or_below_15_percent_of_every_other_store_is_always_flagged(
    data: st.DataObject, regular: int
) -> None:
    kind, closes = data.draw(any_history(regular))
    others = data.draw(other_stores(regular, at_least=1))
    price = max(int(min(others) * data.draw(st.floats(0.0, 0.15))), 1)
    found = Market(closes, others).judge(price)
    assert found["buy_price_type"].to_list() == ["offer"], (kind, closes[-7:], others, price)


@PROPERTY
@given(data=st.data(), regular=regular_prices, length=st.integers(1, 3))
def test_a_glitch_of_up_to_three_days_is_flagged_on_each_of_its_days(
    data: st.DataObject, regular: int, length: int
) -> None:
    first_day = data.draw(st.booleans())  # the listing shows up with the mistake
    closes = [] if first_day else data.draw(histories(regular))
    others = data.draw(other_stores(regular, at_least=1 if first_day else 0))
    market_level = min([regular, *others])
    # The same or a different wrong value each day: a lost digit, two, 1 CLP, 90 % off...
    wrong = [
        max(int(market_level * data.draw(st.sampled_from([0.1, 0.01, 0.001, 0.0, 0.15]))), 1)
        for _ in range(length)
    ]
    for day, price in enumerate(wrong):
        found = Market(closes + wrong[:day], others).judge(price)
        assert found.height == 1, (day + 1, wrong, closes[-7:], others)


@PROPERTY
@given(
    data=st.data(),
    regular=regular_prices,
    factor=st.floats(0.02, 0.95),
    followed=st.booleans(),
)
def test_a_permanent_level_shift_stops_being_flagged_after_a_bounded_number_of_days(
    data: st.DataObject, regular: int, factor: float, followed: bool
) -> None:
    closes = data.draw(histories(regular, min_days=14))
    new_level = max(shelf_floor(regular * factor), 190)
    # The other stores either moved too (a supplier's price, matched) or are not seen.
    others = [shelf_floor(new_level * data.draw(st.floats(0.95, 1.1)))] if followed else []
    flagged_days = [
        day
        for day in range(1, 13)
        if Market(closes + [new_level] * (day - 1), others).judge(new_level).height
    ]
    assert all(day <= LEVEL_ADOPTED_AFTER for day in flagged_days), flagged_days


@PROPERTY
@given(data=st.data(), regular=regular_prices)
def test_a_deeper_price_is_never_less_of_a_glitch(data: st.DataObject, regular: int) -> None:
    _, closes = data.draw(any_history(regular))
    # Anything may be going on elsewhere, another store glitching too.
    others = data.draw(st.lists(st.integers(1, 2 * regular), max_size=2))
    listed = data.draw(st.none() | st.integers(regular, 2 * regular))
    market = Market(closes, others, price_list=listed)
    prices = sorted(data.draw(st.lists(st.integers(1, regular), min_size=2, max_size=4)))
    ranks = []
    for price in prices:
        found = market.judge(price)
        ranks.append(SEVERITY_RANK[found["severity"].first() if found.height else None])
    # Prices ascend, so severities (none < low < medium < high) must not go up.
    assert ranks == sorted(ranks, reverse=True), list(zip(prices, ranks, strict=True))
