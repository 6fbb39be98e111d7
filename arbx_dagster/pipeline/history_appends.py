"""Days of price history whose only change is new rows: only their listings' closes move.

A scrape appends observations to today; rebuilding every close of the day for it costs as
much as the catalogue. A changed (retailer, day) slice is *appended to* when, compared with
the hour census the last refresh recorded (``price_history_hours``):

* the last refresh recorded hours of that day (else nothing is known to compare with);
* none of those hours lost all its rows;
* every recorded hour whose fingerprint changed still holds the rows it held then: its rows
  ingested no later than its last recorded ingestion have the recorded fingerprint (a row
  deleted, corrected or ingested again by another run changes it).

Then only listings with rows new since that census — in new hours, or ingested after an
hour's last recorded ingestion — have a different close, and each is rebuilt from all its
rows of the day. Any other change rebuilds the whole slice (``history.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from arbx_dagster.domain.history import market_day
from arbx_dagster.domain.schema import UTC_DATETIME
from arbx_dagster.pipeline.raw_census import hours_only_gained_rows, with_bounds
from arbx_dagster.storage.warehouse import Warehouse

SLICE = ["retailer", "day"]
HOUR = ["retailer", "hour"]

# Listings with rows in the hours staged as {staged} ingested after ``since`` (any, if null).
_WITH_NEW_ROWS_SQL = """
SELECT DISTINCT r.retailer, r.sku, h.day FROM raw_prices AS r JOIN {staged} AS h
    ON r.retailer = h.retailer AND r.observed_at >= h.start AND r.observed_at < h.stop
    AND (h.since IS NULL OR r.ingested_at > h.since)
"""
_EPOCH = pl.lit(datetime(1970, 1, 1, tzinfo=UTC)).cast(UTC_DATETIME)
_LISTINGS = {"retailer": pl.String(), "sku": pl.String(), "day": pl.Date()}


def _with_day(hours: pl.DataFrame) -> pl.DataFrame:
    return hours.with_columns(day=market_day(_EPOCH + pl.duration(hours=pl.col("hour"))))


def appended_slices(
    warehouse: Warehouse, rebuild: pl.DataFrame, census: pl.DataFrame, *, full: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(slices, listings)``: of the slices to ``rebuild``, those only appended to, and the
    listings (``retailer, sku, day``) whose closes of those days must be rebuilt (none
    when ``full``). ``census``: the census by hour now (``retailer, hour, raw_rows,
    last_ingested, fingerprint``)."""
    if full:
        return pl.DataFrame(schema={"retailer": pl.String(), "day": pl.Date()}), pl.DataFrame(
            schema=_LISTINGS
        )
    ledger = _with_day(
        warehouse.query(
            "SELECT retailer, hour, fingerprint, raw_rows, last_ingested FROM price_history_hours"
        )
    )
    now = _with_day(census).join(rebuild.select(SLICE), on=SLICE, how="semi")
    then = ledger.join(rebuild.select(SLICE), on=SLICE, how="semi")
    changed = (
        now.join(then.select(*HOUR, "fingerprint"), on=[*HOUR, "fingerprint"], how="anti")
        .join(then.select(*HOUR, recorded="fingerprint", since="last_ingested"), on=HOUR)
        .select(*HOUR, "day", "recorded", "since")
    )
    grown = hours_only_gained_rows(warehouse, changed)
    failed = pl.concat(
        [
            then.join(now, on=HOUR, how="anti").select(SLICE),  # an hour lost every row
            changed.join(grown, on=HOUR, how="anti").select(SLICE),
        ]
    )
    slices = then.select(SLICE).unique().join(failed, on=SLICE, how="anti").sort(SLICE)
    fresh = pl.concat(
        [
            now.join(then, on=HOUR, how="anti")
            .select(*HOUR, "day")
            .with_columns(since=pl.lit(None, dtype=UTC_DATETIME)),
            changed.join(grown, on=HOUR, how="semi").select(*HOUR, "day", "since"),
        ]
    ).join(slices, on=SLICE, how="semi")
    if fresh.is_empty():
        return slices, pl.DataFrame(schema=_LISTINGS)
    staged = with_bounds(fresh).select("retailer", "start", "stop", "since", "day")
    return slices, warehouse.query_with(_WITH_NEW_ROWS_SQL, staged)
