"""Price history is rebuilt only where raw prices changed, and rebuilt slices are replaced.

Runs on both engines (the ``warehouse`` fixture): the census query and the canonical view
must mean the same thing on DuckDB and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import polars as pl
import pytest

from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform
from arbx_dagster.pipeline.history import refresh_price_history
from arbx_dagster.pipeline.ingest import ingest_observations
from arbx_dagster.storage.warehouse import Warehouse

DAY_1, DAY_2 = date(2026, 11, 20), date(2026, 11, 21)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

# Tests whose SQL the two-engine tests already cover run on DuckDB only (suite time).
DUCKDB_ONLY = pytest.mark.parametrize("warehouse", ["duckdb"], indirect=True)


def noon(day: date, hours: int = 0) -> datetime:
    """Noon in Santiago (15:00 UTC in November) of ``day``, plus ``hours``."""
    return datetime(day.year, day.month, day.day, 15, tzinfo=UTC) + timedelta(hours=hours)


def observations(rows: list[tuple[str, str, datetime, int]]) -> pl.DataFrame:
    """(retailer, sku, observed_at, offer) -> raw observations a connector would yield."""
    frame = pl.DataFrame(
        rows, schema=["retailer", "sku", "observed_at", "price_offer"], orient="row"
    ).with_columns(
        name=pl.lit("Smart TV 55"),
        currency=pl.lit("CLP"),
        in_stock=pl.lit(True),
        fetch_status=pl.lit("ok"),
        source=pl.lit("test"),
    )
    return conform(frame, RAW_PRICE_SCHEMA)


def land(
    warehouse: Warehouse,
    rows: list[tuple[str, str, datetime, int]],
    *,
    now: datetime = NOW,
    replace: tuple[str, date] | None = None,
    run_id: str = "run-1",
) -> None:
    ingest_observations(warehouse, observations(rows), now=now, run_id=run_id, replace=replace)


def closes(warehouse: Warehouse) -> list[tuple]:
    return warehouse.query(
        "SELECT retailer, sku, day, price_offer, observations FROM price_history "
        "ORDER BY retailer, sku, day"
    ).rows()


def test_a_new_partition_leaves_the_other_days_untouched(warehouse: Warehouse) -> None:
    land(warehouse, [("paris", "a", noon(DAY_1), 100_000), ("ripley", "r", noon(DAY_1), 90_000)])
    first = refresh_price_history(warehouse)
    assert first.counts["slices_rebuilt"] == 2
    # Mark day 1's closes: a rebuild would overwrite the marker with the real count.
    warehouse.execute("UPDATE price_history SET observations = 99")

    land(warehouse, [("paris", "a", noon(DAY_2), 80_000)], now=NOW + timedelta(hours=1))
    second = refresh_price_history(warehouse)

    assert second.counts["slices_rebuilt"] == 1
    assert second.counts["slices_unchanged"] == 2
    assert second.counts["rebuilt_days"] == [str(DAY_2)]
    assert closes(warehouse) == [
        ("paris", "a", DAY_1, 100_000, 99),
        ("paris", "a", DAY_2, 80_000, 1),
        ("ripley", "r", DAY_1, 90_000, 99),
    ]
    assert refresh_price_history(warehouse).counts["slices_rebuilt"] == 0


def test_a_scrape_appended_to_today_rebuilds_only_the_closes_of_what_it_saw(
    warehouse: Warehouse,
) -> None:
    land(
        warehouse,
        [
            (s, sku, noon(DAY_2), p)
            for s, sku, p in [
                ("paris", "a", 100_000),
                ("paris", "b", 50_000),
                ("paris", "c", 70_000),
            ]
        ],
    )
    refresh_price_history(warehouse)
    warehouse.execute("UPDATE price_history SET observations = 99")  # a rebuilt close loses it

    # Half an hour later b is seen again (the same hour), an hour later a at a new price.
    later = NOW + timedelta(hours=2)
    rows = [
        ("paris", "b", noon(DAY_2) + timedelta(minutes=30), 50_000),
        ("paris", "a", noon(DAY_2, 1), 90_000),
    ]
    land(warehouse, rows, now=later, run_id="run-2")
    report = refresh_price_history(warehouse)

    assert report.counts["slices_appended_to"] == 1
    assert report.counts["slices_rebuilt"] == 0
    assert report.counts["listings_rebuilt"] == 2
    assert closes(warehouse) == [
        ("paris", "a", DAY_2, 90_000, 2),
        ("paris", "b", DAY_2, 50_000, 2),
        ("paris", "c", DAY_2, 70_000, 99),
    ]
    assert refresh_price_history(warehouse).counts["listings_rebuilt"] == 0


def test_a_corrected_observation_rebuilds_its_whole_day(warehouse: Warehouse) -> None:
    land(warehouse, [("paris", "a", noon(DAY_2), 100_000), ("paris", "b", noon(DAY_2), 50_000)])
    refresh_price_history(warehouse)
    warehouse.execute("UPDATE price_history SET observations = 99")

    # The same observation of a, ingested again by another run with its price corrected,
    # and a new sighting of b: the day is not merely appended to.
    later = NOW + timedelta(hours=2)
    rows = [("paris", "a", noon(DAY_2), 95_000), ("paris", "b", noon(DAY_2, 1), 50_000)]
    land(warehouse, rows, now=later, run_id="run-2")
    report = refresh_price_history(warehouse)

    assert (report.counts["slices_rebuilt"], report.counts["slices_appended_to"]) == (1, 0)
    assert closes(warehouse) == [
        ("paris", "a", DAY_2, 95_000, 1),
        ("paris", "b", DAY_2, 50_000, 2),
    ]


def test_a_rewritten_day_loses_its_stale_rows(warehouse: Warehouse) -> None:
    land(
        warehouse,
        [
            ("paris", "a", noon(DAY_1), 100_000),
            ("paris", "b", noon(DAY_1), 50_000),
            ("paris", "a", noon(DAY_2), 100_000),
        ],
    )
    refresh_price_history(warehouse)

    # A backfill rebuilds day 1 from the archive: listing b was a parser bug, a's price
    # was misread. Same pinned clock, so only the content tells the day changed.
    land(
        warehouse,
        [("paris", "a", noon(DAY_1, 1), 95_000)],
        replace=("paris", DAY_1),
        run_id="backfill",
    )
    report = refresh_price_history(warehouse)

    assert report.counts["slices_rebuilt"] == 1
    assert closes(warehouse) == [
        ("paris", "a", DAY_1, 95_000, 1),
        ("paris", "a", DAY_2, 100_000, 1),
    ]


def test_a_day_whose_raw_rows_are_all_gone_loses_its_closes(warehouse: Warehouse) -> None:
    land(warehouse, [("paris", "a", noon(DAY_1), 100_000), ("paris", "a", noon(DAY_2), 90_000)])
    refresh_price_history(warehouse)
    land(warehouse, [], replace=("paris", DAY_1))
    report = refresh_price_history(warehouse)
    assert report.counts["slices_removed"] == 1
    assert closes(warehouse) == [("paris", "a", DAY_2, 90_000, 1)]


@DUCKDB_ONLY
def test_closes_written_before_the_ledger_existed_are_reconciled(warehouse: Warehouse) -> None:
    land(warehouse, [("paris", "a", noon(DAY_2), 90_000)])
    stale = pl.DataFrame(
        {"retailer": ["paris"], "sku": ["gone"], "day": [DAY_1], "observations": [1]}
    )
    warehouse.insert("price_history", stale)  # a close whose raw rows were deleted
    refresh_price_history(warehouse)
    assert closes(warehouse) == [("paris", "a", DAY_2, 90_000, 1)]


@DUCKDB_ONLY
def test_full_rebuilds_every_slice(warehouse: Warehouse) -> None:
    land(warehouse, [("paris", "a", noon(DAY_1), 100_000), ("paris", "a", noon(DAY_2), 90_000)])
    refresh_price_history(warehouse)
    warehouse.execute("UPDATE price_history SET observations = 99")
    report = refresh_price_history(warehouse, full=True)
    assert report.counts["slices_rebuilt"] == 2
    assert [row[-1] for row in closes(warehouse)] == [1, 1]


def test_the_canonical_series_has_one_row_per_product_retailer_and_day(
    warehouse: Warehouse,
) -> None:
    land(
        warehouse,
        [
            ("paris", "p1", noon(DAY_1), 100_000),
            ("paris", "p1", noon(DAY_2), 95_000),
            # A second paris listing of the same product (a duplicate SKU), pricier.
            ("paris", "p2", noon(DAY_1), 120_000),
            ("ripley", "r1", noon(DAY_1), 110_000),
            ("ripley", "r1", noon(DAY_1, 3), 105_000),  # the day's close
            ("ripley", "other", noon(DAY_1), 5_000),  # another product
        ],
    )
    refresh_price_history(warehouse)
    matches = pl.DataFrame(
        {
            "retailer": ["paris", "paris", "ripley", "ripley"],
            "sku": ["p1", "p2", "r1", "other"],
            "canonical_id": ["tv", "tv", "tv", "cable"],
            "match_probability": [0.9, 0.8, 0.95, 1.0],
            "matched_at": [NOW] * 4,
        }
    )
    warehouse.insert("product_matches", matches)

    series = warehouse.query(
        "SELECT canonical_id, retailer, day, sku, price_offer, listings "
        "FROM canonical_price_history ORDER BY canonical_id, retailer, day"
    )
    assert series.rows() == [
        ("cable", "ripley", DAY_1, "other", 5_000, 1),
        ("tv", "paris", DAY_1, "p1", 100_000, 2),
        ("tv", "paris", DAY_2, "p1", 95_000, 1),
        ("tv", "ripley", DAY_1, "r1", 105_000, 1),
    ]
    assert set(series.columns) >= {"canonical_id", "retailer", "day"}
    full = warehouse.query("SELECT * FROM canonical_price_history")
    assert {"price_list", "price_offer", "price_card", "in_stock"} <= set(full.columns)
