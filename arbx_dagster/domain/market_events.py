"""Chile's market-wide shopping events, and the pre-event baseline that judges event prices.

During CyberDay or Black Friday a whole market drops at once and stores inflate prices in the
weeks before so that their "discounts" look deeper. The honest yardstick for an event price is
the **event baseline**: the lowest offer price of the ``BASELINE_DAYS`` (30) days before the
event starts. The glitch detector uses it as a reference on event days (an inflated recent
price must not make a real event price look like a mistake), and :func:`event_discounts`
tells real event discounts from fake ones.

Dates follow the organisers' usual pattern (Cámara de Comercio de Santiago for the Cyber
events), computed by rule for any year; every date is a calendar day in Chile:

* ``cyberday``     — first Monday of June, Monday to Wednesday (2026: 1-3 June);
* ``cybermonday``  — first Monday of October, Monday to Wednesday (2026: 5-7 October);
* ``black_friday`` — the Friday after US Thanksgiving, Friday to Sunday (2026: 27-29 Nov).

Organisers sometimes move an edition; announced dates are configured as explicit events
(JSON, e.g. in ``ARBX_MARKET_EVENTS``), and an explicit event replaces the rule's edition of
the same name in the same year::

    {"rules": ["cyberday", "black_friday"],
     "events": [{"name": "CyberDay", "start": "2027-06-07", "end": "2027-06-09"}]}
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl

BASELINE_DAYS = 30
# A claimed discount (against the crossed-out list price) this many points above the real one
# (against the event baseline) is a fake discount.
FAKE_DISCOUNT_GAP = 0.10

_MONDAY, _THURSDAY = 0, 3


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _cyberday(year: int) -> tuple[str, date, date]:
    start = _nth_weekday(year, 6, _MONDAY, 1)
    return "CyberDay", start, start + timedelta(days=2)


def _cybermonday(year: int) -> tuple[str, date, date]:
    start = _nth_weekday(year, 10, _MONDAY, 1)
    return "CyberMonday", start, start + timedelta(days=2)


def _black_friday(year: int) -> tuple[str, date, date]:
    start = _nth_weekday(year, 11, _THURSDAY, 4) + timedelta(days=1)
    return "Black Friday", start, start + timedelta(days=2)


RULES: dict[str, Callable[[int], tuple[str, date, date]]] = {
    "cyberday": _cyberday,
    "cybermonday": _cybermonday,
    "black_friday": _black_friday,
}


@dataclass(frozen=True)
class MarketEvent:
    name: str
    start: date
    end: date  # inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"event {self.name!r} ends ({self.end}) before it starts")

    @property
    def baseline_start(self) -> date:
        """First day of the baseline window (the window ends the day before ``start``)."""
        return self.start - timedelta(days=BASELINE_DAYS)


@dataclass(frozen=True)
class EventCalendar:
    """Which events exist: rule-based editions plus explicitly announced ones."""

    rules: tuple[str, ...] = tuple(RULES)
    explicit: tuple[MarketEvent, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rules) - set(RULES))
        if unknown:
            raise ValueError(f"unknown event rules {unknown}; known: {sorted(RULES)}")

    def events(self, first: date, last: date) -> list[MarketEvent]:
        """Events overlapping ``[first, last]`` (any year), in date order."""
        overridden = {(e.name.lower(), e.start.year) for e in self.explicit}
        found = list(self.explicit)
        for year in range(first.year - 1, last.year + 1):
            for rule in self.rules:
                name, start, end = RULES[rule](year)
                if (name.lower(), year) not in overridden:
                    found.append(MarketEvent(name, start, end))
        return sorted(
            {e for e in found if e.start <= last and e.end >= first}, key=lambda e: e.start
        )

    def event_on(self, day: date) -> MarketEvent | None:
        matches = self.events(day, day)
        return matches[0] if matches else None

    def event_start(self, day: pl.Expr, first: date, last: date) -> pl.Expr:
        """Start date of the event running on ``day`` (null on ordinary days)."""
        expr = pl.lit(None, dtype=pl.Date)
        for event in self.events(first, last):
            expr = pl.when(day.is_between(event.start, event.end)).then(event.start).otherwise(expr)
        return expr

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventCalendar:
        try:
            rules = tuple(str(r).lower() for r in data.get("rules", tuple(RULES)))
            explicit = tuple(
                MarketEvent(
                    str(e["name"]), date.fromisoformat(e["start"]), date.fromisoformat(e["end"])
                )
                for e in data.get("events", [])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                'event calendar expects {"rules": [...], "events": [{"name", "start", "end"}]} '
                f"with ISO dates: {exc}"
            ) from None
        return cls(rules=rules, explicit=explicit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": list(self.rules),
            "events": [
                {"name": e.name, "start": e.start.isoformat(), "end": e.end.isoformat()}
                for e in self.explicit
            ],
        }

    @classmethod
    def from_setting(cls, value: str | None) -> EventCalendar:
        """The calendar a setting gives (``ARBX_MARKET_EVENTS``: JSON text or a path to a
        JSON file); the default rules when it is unset."""
        value = (value or "").strip()
        if not value:
            return cls()
        text = value if value.startswith("{") else Path(value).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))


DEFAULT_CALENDAR = EventCalendar()


def event_discounts(
    history: pl.DataFrame, day: date, calendar: EventCalendar = DEFAULT_CALENDAR
) -> pl.DataFrame:
    """On an event day, each listing's real discount against its claimed one.

    ``history`` is ``PRICE_HISTORY_SCHEMA``. Per listing priced on ``day``: ``baseline`` (lowest
    offer of the 30 days before the event), ``real_discount`` = 1 - offer / baseline,
    ``claimed_discount`` = 1 - offer / list price, and ``fake_discount`` when the claim exceeds
    the real discount by ``FAKE_DISCOUNT_GAP`` or more (the list price was inflated, or the
    "event price" is no lower than before). Empty on ordinary days.
    """
    event = calendar.event_on(day)
    schema = {
        "retailer": pl.String(),
        "sku": pl.String(),
        "event": pl.String(),
        "price_offer": pl.Int64(),
        "price_list": pl.Int64(),
        "baseline": pl.Int64(),
        "real_discount": pl.Float64(),
        "claimed_discount": pl.Float64(),
        "fake_discount": pl.Boolean(),
    }
    if event is None or history.is_empty():
        return pl.DataFrame(schema=schema)
    priced = pl.col("price_offer").fill_null(0) > 0
    baseline = (
        history.lazy()
        .filter(priced & pl.col("day").is_between(event.baseline_start, event.start, closed="left"))
        .group_by("retailer", "sku")
        .agg(baseline=pl.col("price_offer").min())
    )
    today = history.lazy().filter(priced & (pl.col("day") == day))
    out = (
        today.join(baseline, on=["retailer", "sku"], how="inner")
        .with_columns(
            event=pl.lit(event.name),
            real_discount=1 - pl.col("price_offer") / pl.col("baseline"),
            claimed_discount=1 - pl.col("price_offer") / pl.col("price_list"),
        )
        .with_columns(
            fake_discount=(
                pl.col("claimed_discount").fill_null(0.0) - pl.col("real_discount")
                >= FAKE_DISCOUNT_GAP
            )
        )
        .select(list(schema))
        .sort("retailer", "sku")
        .collect()
    )
    return out.cast(schema)  # type: ignore[arg-type]
