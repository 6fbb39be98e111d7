"""A census of raw_prices per retailer and UTC hour: what changed since a stage last looked.

One aggregate query (only a few numbers per hour leave the database) gives each hour a
fingerprint: row counts (all, successful, in stock), the sums of the three prices, the
first and last observation, the last ingestion and the first and last run id. Appending,
replacing or re-ingesting rows changes it (a re-run has a new run id, a corrected price
changes a sum), even when the clock is pinned. The price history folds hours into market
days (``history.py``); normalisation compares hours (``listings.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from arbx_dagster.domain.schema import UTC_DATETIME
from arbx_dagster.storage.warehouse import Warehouse

# What a census counts of a set of raw rows ``r`` (one fingerprint's parts).
CENSUS_AGGREGATES = """
       count(*) AS raw_rows,
       CAST(sum(CASE WHEN r.fetch_status = 'ok' THEN 1 ELSE 0 END) AS BIGINT) AS ok_rows,
       CAST(sum(CASE WHEN r.in_stock THEN 1 ELSE 0 END) AS BIGINT) AS in_stock_rows,
       CAST(sum(r.price_list) AS BIGINT) AS sum_list,
       CAST(sum(r.price_offer) AS BIGINT) AS sum_offer,
       CAST(sum(r.price_card) AS BIGINT) AS sum_card,
       min(r.observed_at) AS first_observed,
       max(r.observed_at) AS last_observed,
       max(r.ingested_at) AS last_ingested,
       min(r.run_id) AS first_run,
       max(r.run_id) AS last_run
"""

# Per retailer and UTC hour (epoch hours: independent of the session time zone).
CENSUS_SQL = f"""
SELECT r.retailer, r.hour, {CENSUS_AGGREGATES}
FROM (
    SELECT *, CAST(floor(extract(epoch FROM observed_at) / 3600) AS BIGINT) AS hour
    FROM raw_prices
) AS r
GROUP BY r.retailer, r.hour
"""

FINGERPRINT_PARTS = (
    "raw_rows",
    "ok_rows",
    "in_stock_rows",
    "sum_list",
    "sum_offer",
    "sum_card",
    "first_observed",
    "last_observed",
    "last_ingested",
    "first_run",
    "last_run",
)


def fingerprint() -> pl.Expr:
    """One string of an hour's (or a day's) ``FINGERPRINT_PARTS``."""
    return pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("-") for c in FINGERPRINT_PARTS], separator="|"
    )


def with_bounds(hours: pl.DataFrame) -> pl.DataFrame:
    """``hours`` (with ``hour``: hours since the epoch) with the ``start`` and ``stop``
    instants of each hour."""
    epoch = pl.lit(datetime(1970, 1, 1, tzinfo=UTC)).cast(UTC_DATETIME)
    return hours.with_columns(
        start=epoch + pl.duration(hours=pl.col("hour")),
        stop=epoch + pl.duration(hours=pl.col("hour") + 1),
    )


def hour_census(warehouse: Warehouse) -> pl.DataFrame:
    """One fingerprint per (retailer, UTC hour) of the rows now in raw_prices: ``retailer,
    hour`` (hours since the epoch), ``start``, ``stop``, ``fingerprint`` and
    ``last_ingested``."""
    hours = warehouse.query(CENSUS_SQL).select(
        "retailer", "hour", "last_ingested", fingerprint=fingerprint()
    )
    return with_bounds(hours).sort("retailer", "hour")


# Per changed hour staged as {staged}: the census of its rows ingested by ``since``.
_KEPT_SQL = f"""
SELECT h.retailer, h.hour, {CENSUS_AGGREGATES}
FROM {{staged}} AS h JOIN raw_prices AS r
    ON r.retailer = h.retailer AND r.observed_at >= h.start AND r.observed_at < h.stop
    AND r.ingested_at <= h.since
GROUP BY h.retailer, h.hour
"""


def hours_only_gained_rows(warehouse: Warehouse, changed: pl.DataFrame) -> pl.DataFrame:
    """Of the changed hours a stage recorded (``retailer, hour, recorded, since``: the
    fingerprint and last ingestion it saw), those that still hold every row they held,
    unchanged (``retailer, hour``): a scrape only appended to them, so only their rows
    ingested after ``since`` are new. A row deleted, corrected or ingested again by another
    run changes the census of the rows ingested by ``since``."""
    hour = ["retailer", "hour"]
    if changed.is_empty():
        return changed.select(hour)
    staged = with_bounds(changed).select(*hour, "start", "stop", "since")
    kept = warehouse.query_with(_KEPT_SQL, staged).select(*hour, kept=fingerprint())
    return changed.join(kept, on=hour).filter(pl.col("kept") == pl.col("recorded")).select(hour)
