"""Data-quality checks fail on crafted bad data, with the right severity, on both engines.

Each check is a plain function over the warehouse (``pipeline/quality_checks.py``); these
tests call it on a small warehouse rather than materializing the graph. How a failing check
blocks downstream and raises the 🚨 alert is in ``test_checks_and_alerts.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl

from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform
from arbx_dagster.pipeline import quality_checks as q
from arbx_dagster.storage.warehouse import Warehouse

NOW = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # 18:00 in Santiago
TODAY = date(2026, 11, 23)
RUN = "run-now"


def at_noon(day: date) -> datetime:
    """Noon in Santiago (15:00 UTC in November)."""
    return datetime(day.year, day.month, day.day, 15, tzinfo=UTC)


def raw_rows(
    retailer: str,
    day: date,
    listings: int,
    *,
    run_id: str = "earlier",
    status: str = "ok",
    offer: int | None = 100_000,
) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "retailer": retailer,
            "sku": [f"{retailer}-{i}" for i in range(listings)],
            "name": "Smart TV 55",
            "price_offer": [offer if status == "ok" else None] * listings,
            "currency": "CLP",
            "in_stock": True,
            "fetch_status": status,
            "source": "test",
            "observed_at": at_noon(day),
        }
    )
    return conform(frame, RAW_PRICE_SCHEMA).with_columns(
        ingested_at=pl.lit(at_noon(day)).cast(RAW_PRICE_SCHEMA["observed_at"]),
        run_id=pl.lit(run_id),
    )


def land(warehouse: Warehouse, *frames: pl.DataFrame) -> None:
    warehouse.insert("raw_prices", pl.concat(frames))


def usual_week(warehouse: Warehouse, retailer: str = "paris", listings: int = 20) -> None:
    """The 7 days before yesterday, each with the retailer's whole catalogue."""
    land(warehouse, *(raw_rows(retailer, TODAY - timedelta(days=d), listings) for d in range(2, 9)))


# -- volume -----------------------------------------------------------------------------------


def test_a_usual_day_passes_and_todays_partial_day_is_not_judged(warehouse: Warehouse) -> None:
    usual_week(warehouse)
    land(
        warehouse,
        raw_rows("paris", TODAY - timedelta(days=1), 19),
        raw_rows("paris", TODAY, 3, run_id=RUN),  # the day has only begun
    )
    outcome = q.volume_versus_recent_days(warehouse, RUN, NOW)
    assert outcome.passed, outcome.summary
    assert outcome.metadata["compared_days"] == 1


def test_yesterday_losing_most_listings_fails_at_error(warehouse: Warehouse) -> None:
    usual_week(warehouse)
    land(warehouse, raw_rows("paris", TODAY - timedelta(days=1), 6))
    outcome = q.volume_versus_recent_days(warehouse, RUN, NOW)
    assert not outcome.passed
    assert outcome.severity == "error"
    assert outcome.metadata["low_days"] == ["2026-11-22|paris: 6 listings, 30% of usual"]


def test_a_day_with_no_successful_fetch_is_a_drop_to_zero(warehouse: Warehouse) -> None:
    usual_week(warehouse)
    land(warehouse, raw_rows("paris", TODAY - timedelta(days=1), 20, status="missing"))
    outcome = q.volume_versus_recent_days(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.metadata["low_days"] == ["2026-11-22|paris: 0 listings, 0% of usual"]


def test_a_spike_in_listings_fails_at_warn(warehouse: Warehouse) -> None:
    usual_week(warehouse)
    land(warehouse, raw_rows("paris", TODAY - timedelta(days=1), 50))
    outcome = q.volume_versus_recent_days(warehouse, RUN, NOW)
    assert not outcome.passed
    assert outcome.severity == "warn"
    assert outcome.metadata["high_days"] == ["2026-11-22|paris: 50 listings, 250% of usual"]


def test_a_backfilled_past_day_is_judged_against_the_days_before_it(warehouse: Warehouse) -> None:
    usual_week(warehouse)
    land(
        warehouse,
        raw_rows("paris", TODAY - timedelta(days=1), 20),
        raw_rows("ripley", TODAY - timedelta(days=1), 20),
    )
    # This run rebuilt the 18th, and it came back nearly empty.
    warehouse.execute(
        "DELETE FROM raw_prices WHERE retailer = 'paris' AND observed_at = $1",
        [at_noon(TODAY - timedelta(days=5))],
    )
    land(warehouse, raw_rows("paris", TODAY - timedelta(days=5), 4, run_id=RUN))
    outcome = q.volume_versus_recent_days(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.metadata["low_days"] == ["2026-11-18|paris: 4 listings, 20% of usual"]
    # ripley has no history to compare with: not judged rather than guessed.
    assert outcome.metadata["compared_days"] == 2
