"""Data-quality checks fail on crafted bad data, with the right severity, on both engines.

Each check is a plain function over the warehouse (``pipeline/quality_checks.py``); these
tests call it on a small warehouse rather than materializing the graph. How a failing check
blocks downstream and raises the 🚨 alert is in ``test_checks_and_alerts.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform
from arbx_dagster.pipeline import quality_checks as q
from arbx_dagster.pipeline.ingest import ingest_observations
from arbx_dagster.storage.warehouse import Warehouse

NOW = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # 18:00 in Santiago
TODAY = date(2026, 11, 23)
RUN = "run-now"

# Tests whose SQL the two-engine tests already cover run on DuckDB only (suite time).
DUCKDB_ONLY = pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)


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


@DUCKDB_ONLY
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


@DUCKDB_ONLY
def test_a_day_with_no_successful_fetch_is_a_drop_to_zero(warehouse: Warehouse) -> None:
    usual_week(warehouse)
    land(warehouse, raw_rows("paris", TODAY - timedelta(days=1), 20, status="missing"))
    outcome = q.volume_versus_recent_days(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.metadata["low_days"] == ["2026-11-22|paris: 0 listings, 0% of usual"]


@DUCKDB_ONLY
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


# -- quarantine ------------------------------------------------------------------------------


def a_run(warehouse: Warehouse, run_id: str, stored: int, bad: int, at: datetime = NOW) -> None:
    """An ingestion run landing ``stored`` good rows and ``bad`` ones with a negative price."""
    rows = raw_rows("paris", TODAY, stored + bad, run_id=run_id).with_columns(
        sku=pl.col("sku") + f"-{run_id}",
        observed_at=pl.lit(at - timedelta(minutes=1)).cast(RAW_PRICE_SCHEMA["observed_at"]),
        price_offer=pl.when(pl.int_range(pl.len()) < bad).then(-5).otherwise(pl.col("price_offer")),
    )
    ingest_observations(warehouse, rows.drop("ingested_at", "run_id"), now=at, run_id=run_id)


@DUCKDB_ONLY
def test_a_run_quarantining_most_rows_fails_at_error(warehouse: Warehouse) -> None:
    a_run(warehouse, RUN, stored=10, bad=30)
    outcome = q.quarantine_rate(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.metadata["top_reasons"] == {"non-positive price": 30}


def test_a_quarantine_spike_is_judged_against_recent_runs(warehouse: Warehouse) -> None:
    for i in range(4):  # this source always sends ~8 % bad rows
        a_run(warehouse, f"old-{i}", stored=92, bad=8, at=NOW - timedelta(days=1, hours=i))
    a_run(warehouse, "usual", stored=90, bad=10)
    usual = q.quarantine_rate(warehouse, "usual", NOW)
    assert usual.passed, usual.summary  # above the 5 % floor, but as usual
    assert usual.metadata["recent_runs"] == 4

    a_run(warehouse, RUN, stored=70, bad=30)
    spike = q.quarantine_rate(warehouse, RUN, NOW)
    assert not spike.passed and spike.severity == "warn"
    assert "usual 8.0% over 5 recent runs" in spike.summary


@DUCKDB_ONLY
def test_without_recent_runs_the_fixed_floor_decides(warehouse: Warehouse) -> None:
    a_run(warehouse, RUN, stored=90, bad=10)
    outcome = q.quarantine_rate(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "warn"
    assert "too few recent runs" in outcome.summary


# -- listings, matches, opportunities ---------------------------------------------------------


def listings(rows: list[tuple[str, str, str, int]], last_seen: datetime = NOW) -> pl.DataFrame:
    """(retailer, sku, category, offer) -> listings rows."""
    frame = pl.DataFrame(rows, schema=["retailer", "sku", "category", "price_offer"], orient="row")
    return frame.with_columns(
        name=pl.lit("Smart TV 55"),
        name_norm=pl.lit("smart tv 55"),
        first_seen=pl.lit(last_seen),
        last_seen=pl.lit(last_seen),
        updated_at=pl.lit(last_seen),
    )


@DUCKDB_ONLY
def test_a_listing_many_times_its_category_median_warns(warehouse: Warehouse) -> None:
    tvs = [("paris", f"tv-{i}", "tv", 300_000) for i in range(5)]
    warehouse.insert("listings", listings([*tvs, ("paris", "tv-typo", "tv", 30_000_000)]))
    outcome = q.prices_plausible_for_category(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "warn"
    assert outcome.metadata["outliers"] == ["paris/tv-typo Smart TV 55: 30000000"]


def matches(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["retailer", "sku", "canonical_id"], orient="row"
    ).with_columns(match_probability=pl.lit(0.9), matched_at=pl.lit(NOW))


def labels(rows: list[tuple[str, str, bool]]) -> pl.DataFrame:
    """(paris sku, ripley sku, is_match) -> labelled pairs."""
    return pl.DataFrame(
        rows, schema=["left_sku", "right_sku", "is_match"], orient="row"
    ).with_columns(
        left_retailer=pl.lit("paris"),
        right_retailer=pl.lit("ripley"),
        labelled_by=pl.lit("tester"),
        labelled_at=pl.lit(NOW),
    )


@DUCKDB_ONLY
def test_matches_contradicting_the_labelled_pairs_fail_at_error(warehouse: Warehouse) -> None:
    warehouse.insert(
        "product_matches",
        matches(
            [("paris", f"p{i}", f"c{i}") for i in range(4)]
            + [("ripley", f"r{i}", f"c{i}") for i in range(4)]
        ),
    )
    # Users said two of the four matched pairs are different products.
    warehouse.insert(
        "match_labels",
        labels([("p0", "r0", True), ("p1", "r1", True), ("p2", "r2", False), ("p3", "r3", False)]),
    )
    outcome = q.match_quality_on_labels(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.metadata["precision"] == 0.5


def glitch(retailer: str, sku: str) -> dict:
    return {
        "opportunity_id": f"g-{retailer}-{sku}",
        "kind": "glitch",
        "buy_retailer": retailer,
        "buy_sku": sku,
        "buy_price": 10_000,
        "buy_price_type": "offer",
        "ref_price": 300_000,
        "margin_clp": 290_000,
        "roi_pct": 2900.0,
        "confidence": 0.8,
        "status": "new",
        "first_seen": NOW,
        "last_seen": NOW,
        "times_seen": 1,
    }


@DUCKDB_ONLY
def test_a_retailer_glitching_wholesale_fails_at_error(warehouse: Warehouse) -> None:
    catalogue = [("ripley", f"r{i}", "tv", 300_000) for i in range(40)]
    catalogue += [("paris", f"p{i}", "tv", 300_000) for i in range(40)]
    warehouse.insert("listings", listings(catalogue))
    glitches = [glitch("ripley", f"r{i}") for i in range(10)] + [glitch("paris", "p0")]
    warehouse.insert("opportunities", pl.DataFrame(glitches))
    outcome = q.no_retailer_wide_glitching(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.metadata["retailers"] == {"ripley": 0.25}  # paris's one glitch is news


# -- tiers ------------------------------------------------------------------------------------


def tiered(warehouse: Warehouse, tier: str, last_seen: datetime, *, source: str = "http") -> None:
    rows = [("falabella", f"{tier}-{i}", "tv", 300_000) for i in range(10)]
    warehouse.insert("listings", listings(rows, last_seen=last_seen))
    warehouse.insert(
        "listing_tiers",
        pl.DataFrame({"retailer": "falabella", "sku": [r[1] for r in rows]}).with_columns(
            volatility=pl.lit(0.1),
            price_changes=pl.lit(1),
            tier=pl.lit(tier),
            interval_minutes=pl.lit(30),
            assigned_at=pl.lit(NOW),
        ),
    )
    seen = pl.DataFrame({"sku": [r[1] for r in rows]}).with_columns(
        retailer=pl.lit("falabella"),
        name=pl.lit("Smart TV 55"),
        price_offer=pl.lit(300_000),
        currency=pl.lit("CLP"),
        fetch_status=pl.lit("ok"),
        source=pl.lit(source),
        observed_at=pl.lit(last_seen),
    )
    land(
        warehouse,
        conform(seen, RAW_PRICE_SCHEMA).with_columns(
            ingested_at=pl.lit(last_seen).cast(RAW_PRICE_SCHEMA["observed_at"]),
            run_id=pl.lit("earlier"),
        ),
    )


@DUCKDB_ONLY
def test_a_stale_critical_tier_fails_at_error(warehouse: Warehouse) -> None:
    tiered(warehouse, "critical", NOW - timedelta(hours=3))
    tiered(warehouse, "tracking", NOW - timedelta(hours=20))
    outcome = q.tier_freshness(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.summary == "stale tiers: critical 100%"


@DUCKDB_ONLY
def test_a_stale_important_tier_only_warns(warehouse: Warehouse) -> None:
    tiered(warehouse, "critical", NOW - timedelta(minutes=20))
    tiered(warehouse, "important", NOW - timedelta(hours=13))
    outcome = q.tier_freshness(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "warn"


def test_simulated_listings_are_judged_by_the_simulators_daily_cadence(
    warehouse: Warehouse,
) -> None:
    # Crawled this morning by the simulator, which cannot be read more often than daily.
    tiered(warehouse, "critical", NOW - timedelta(hours=11), source="simulator")
    fresh = q.tier_freshness(warehouse, RUN, NOW)
    assert fresh.passed, fresh.summary
    assert fresh.metadata["by_tier"]["critical"]["judged_by_source_cadence"] == 10

    # Not seen for three days: stale whatever the source.
    warehouse.execute("UPDATE listings SET last_seen = $1", [NOW - timedelta(days=3)])
    warehouse.execute("UPDATE raw_prices SET observed_at = $1", [NOW - timedelta(days=3)])
    stale = q.tier_freshness(warehouse, RUN, NOW)
    assert not stale.passed and stale.severity == "error"


# -- price history ----------------------------------------------------------------------------


def closes(rows: list[tuple[str, date, int | None]]) -> pl.DataFrame:
    """(sku, day, offer) -> paris closes."""
    return pl.DataFrame(rows, schema=["sku", "day", "price_offer"], orient="row").with_columns(
        retailer=pl.lit("paris"), in_stock=pl.lit(True), observations=pl.lit(1)
    )


def test_closes_without_a_plausible_price_fail_at_error(warehouse: Warehouse) -> None:
    yesterday = TODAY - timedelta(days=1)
    warehouse.insert(
        "price_history",
        closes([("ok", yesterday, 100_000), ("zero", yesterday, 0), ("none", yesterday, None)]),
    )
    outcome = q.price_history_is_plausible(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.metadata == {"repeated_keys": 0, "implausible_closes": 2}


def test_a_close_no_successful_fetch_showed_fails_at_error(warehouse: Warehouse) -> None:
    yesterday = TODAY - timedelta(days=1)
    land(
        warehouse,
        raw_rows("paris", yesterday, 2),  # paris-0 and paris-1 at 100 000
        raw_rows("paris", TODAY, 1, status="missing"),  # paris-0 failed today
    )
    warehouse.insert(
        "price_history",
        closes(
            [
                ("paris-0", yesterday, 100_000),  # what the fetch showed
                ("paris-1", yesterday, 90_000),  # a price nobody saw
                ("paris-0", TODAY, 100_000),  # yesterday's price carried over a failure
            ]
        ),
    )
    outcome = q.closes_come_from_successful_fetches(warehouse, RUN, NOW)
    assert not outcome.passed and outcome.severity == "error"
    assert outcome.metadata["examples"] == [
        "2026-11-23|paris/paris-0: 100000",
        "2026-11-22|paris/paris-1: 90000",
    ]


@DUCKDB_ONLY
def test_closes_built_by_the_pipeline_pass_both_history_checks(warehouse: Warehouse) -> None:
    from arbx_dagster.pipeline.history import refresh_price_history

    yesterday = TODAY - timedelta(days=1)
    land(
        warehouse,
        raw_rows("paris", yesterday, 3),
        raw_rows("paris", TODAY, 3, status="missing"),
    )
    refresh_price_history(warehouse)
    for check in (q.price_history_is_plausible, q.closes_come_from_successful_fetches):
        outcome = check(warehouse, RUN, NOW)
        assert outcome.passed, outcome.summary
