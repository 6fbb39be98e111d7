"""Market events: Chile's CyberDay / CyberMonday / Black Friday, and real vs fake discounts."""

from __future__ import annotations

import json
from datetime import date, timedelta

import polars as pl
import pytest

from arbx_dagster.domain.market_events import (
    BASELINE_DAYS,
    DEFAULT_CALENDAR,
    EventCalendar,
    MarketEvent,
    event_discounts,
)
from arbx_dagster.domain.schema import PRICE_HISTORY_SCHEMA
from arbx_dagster.resources import ClockResource


def test_default_dates_follow_the_organisers_rules():
    events = DEFAULT_CALENDAR.events(date(2026, 1, 1), date(2026, 12, 31))
    assert [(e.name, e.start, e.end) for e in events] == [
        ("CyberDay", date(2026, 6, 1), date(2026, 6, 3)),
        ("CyberMonday", date(2026, 10, 5), date(2026, 10, 7)),
        ("Black Friday", date(2026, 11, 27), date(2026, 11, 29)),
    ]
    # Another year: CyberDay starts on the first Monday of June.
    assert DEFAULT_CALENDAR.event_on(date(2025, 6, 2)).name == "CyberDay"
    assert DEFAULT_CALENDAR.event_on(date(2025, 6, 5)) is None


def test_an_announced_date_replaces_the_rule_for_that_edition_only():
    calendar = EventCalendar.from_dict(
        {"events": [{"name": "CyberDay", "start": "2027-06-14", "end": "2027-06-16"}]}
    )
    assert calendar.event_on(date(2027, 6, 7)) is None  # the rule's date, overridden
    assert calendar.event_on(date(2027, 6, 15)).start == date(2027, 6, 14)
    assert calendar.event_on(date(2026, 6, 1)).name == "CyberDay"  # other years keep the rule
    assert EventCalendar.from_dict(calendar.to_dict()) == calendar


def test_rules_can_be_switched_off_and_bad_config_is_explained(monkeypatch):
    only_black_friday = EventCalendar(rules=("black_friday",))
    assert [e.name for e in only_black_friday.events(date(2026, 1, 1), date(2026, 12, 31))] == [
        "Black Friday"
    ]
    with pytest.raises(ValueError, match="unknown event rules"):
        EventCalendar(rules=("navidad",))
    with pytest.raises(ValueError, match="ISO dates"):
        EventCalendar.from_dict({"events": [{"name": "X", "start": "mañana", "end": "2026-1-1"}]})
    with pytest.raises(ValueError, match="ends"):
        MarketEvent("X", date(2026, 1, 2), date(2026, 1, 1))

    assert EventCalendar.from_setting(json.dumps({"rules": ["cyberday"]})).rules == ("cyberday",)
    assert EventCalendar.from_setting(None) == EventCalendar()
    monkeypatch.setenv("ARBX_MARKET_EVENTS", json.dumps({"rules": ["cyberday"]}))
    assert ClockResource().calendar() == EventCalendar()  # the resource is configured, not read
    assert ClockResource(market_events='{"rules": ["cyberday"]}').calendar().rules == ("cyberday",)


def test_event_start_expression_marks_event_days_only():
    days = pl.DataFrame({"day": [date(2026, 6, 1), date(2026, 6, 3), date(2026, 6, 4)]})
    starts = days.select(
        DEFAULT_CALENDAR.event_start(pl.col("day"), date(2026, 5, 1), date(2026, 6, 30))
    ).to_series()
    assert starts.to_list() == [date(2026, 6, 1), date(2026, 6, 1), None]


def _history(offers: dict[date, tuple[int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "retailer": "ripley",
                "sku": "r1",
                "day": day,
                "price_offer": offer,
                "price_list": listed,
                "in_stock": True,
            }
            for day, (offer, listed) in offers.items()
        ],
        schema=PRICE_HISTORY_SCHEMA,
    )


def test_a_list_price_inflated_before_the_event_is_a_fake_discount():
    cyberday = date(2026, 6, 1)
    before = {cyberday - timedelta(days=d): (100_000, 110_000) for d in range(1, BASELINE_DAYS)}
    # The crossed-out price jumps to 180 000 for the event: "-44 %!" for a 10 % real cut.
    fake = _history({**before, cyberday: (90_000, 180_000)})
    row = event_discounts(fake, cyberday).row(0, named=True)
    assert (row["event"], row["baseline"]) == ("CyberDay", 100_000)
    assert row["real_discount"] == pytest.approx(0.10)
    assert row["claimed_discount"] == pytest.approx(0.5)
    assert row["fake_discount"] is True

    honest = _history({**before, cyberday: (80_000, 110_000)})
    assert event_discounts(honest, cyberday)["fake_discount"].to_list() == [False]


def test_no_event_no_discount_report():
    assert event_discounts(_history({date(2026, 5, 1): (1, 1)}), date(2026, 5, 1)).is_empty()
