"""Daily closes: the last successful price of each Chilean calendar day."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from arbx_dagster.domain.history import daily_close, day_of
from arbx_dagster.domain.schema import PRICE_HISTORY_SCHEMA, RAW_PRICE_SCHEMA, conform


def obs(
    sku: str,
    at: datetime,
    offer: int | None,
    *,
    status: str = "ok",
    card: int | None = None,
    in_stock: bool = True,
) -> dict:
    return {
        "retailer": "falabella",
        "sku": sku,
        "observed_at": at,
        "price_offer": offer,
        "price_card": card,
        "in_stock": in_stock,
        "fetch_status": status,
    }


def raw(*rows: dict) -> pl.DataFrame:
    frame = pl.DataFrame(
        list(rows),
        schema={k: RAW_PRICE_SCHEMA[k] for k in rows[0]} if rows else None,
    )
    return conform(frame, RAW_PRICE_SCHEMA)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def test_the_close_is_the_last_successful_observation_of_the_day():
    closes = daily_close(
        raw(
            obs("a", at(10, 14), 100_000, card=90_000),
            obs("a", at(10, 20), 95_000),  # last ok of the day: its card price is gone
            obs("a", at(10, 22), None, status="missing"),  # a failed fetch is not a price
            obs("a", at(10, 16), 97_000, card=88_000),
        )
    )
    assert closes.schema == pl.Schema(PRICE_HISTORY_SCHEMA)
    assert closes.select("day", "price_offer", "price_card", "observations").rows() == [
        (date(2025, 3, 10), 95_000, None, 3)
    ]


def test_days_are_santiago_calendar_days():
    # 02:00 UTC on the 11th is still the evening of the 10th in Santiago.
    closes = daily_close(raw(obs("a", at(10, 14), 100_000), obs("a", at(11, 2), 80_000)))
    assert closes.select("day", "price_offer").rows() == [(date(2025, 3, 10), 80_000)]
    assert day_of(at(11, 2)) == date(2025, 3, 10)


def test_a_day_with_only_failed_fetches_has_no_close():
    closes = daily_close(
        raw(
            obs("a", at(10, 14), 100_000),
            obs("a", at(11, 14), None, status="missing"),
            obs("a", at(12, 14), 100_000),
        )
    )
    assert closes["day"].to_list() == [date(2025, 3, 10), date(2025, 3, 12)]


def test_no_observations_give_an_empty_history_with_the_contract():
    closes = daily_close(pl.DataFrame(schema=RAW_PRICE_SCHEMA))
    assert closes.is_empty()
    assert closes.schema == pl.Schema(PRICE_HISTORY_SCHEMA)
