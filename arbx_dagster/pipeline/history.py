"""Stage 4: daily price history per listing, rebuilt only where raw prices changed.

``raw_prices`` changes one (retailer, market day) slice at a time: live runs append to
today's, a backfill or archive replay *replaces* a past day. Each refresh therefore takes a
census of raw_prices per retailer and UTC hour (one aggregate query; only a few numbers per
hour leave the database), folds it into a fingerprint per (retailer, day) slice, compares it
with the fingerprints stored in ``price_history_slices`` at the last refresh, and rebuilds
only the slices that differ: their closes are deleted and inserted again in one
transaction, so a listing a rewritten day no longer has disappears, and a slice whose raw
rows are all gone loses its closes.

The census is by UTC hour rather than by market day so that the day boundaries come from
one place (:func:`~arbx_dagster.domain.history.market_day`): Santiago's UTC offsets are
whole hours, so every UTC hour lies inside one market day.

The fingerprint summarises a slice: row counts (all, successful, in stock), the sums of the
three prices, the first and last observation, the last ingestion and the first and last run
id. Appending, replacing or re-ingesting rows changes it (a re-run has a new run id, a
corrected price changes a sum), even when the clock is pinned. ``full=True`` rebuilds every
slice whatever the fingerprints say.

A changed slice whose only change is new rows (a scrape appended to today) has only the
closes of the listings with new rows rebuilt (``history_appends.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl

from arbx_dagster.domain.history import daily_close, market_day
from arbx_dagster.domain.schema import PRICE_HISTORY_SCHEMA, RAW_PRICE_SCHEMA, UTC_DATETIME
from arbx_dagster.pipeline.history_appends import appended_slices
from arbx_dagster.pipeline.raw_census import CENSUS_SQL, FINGERPRINT_PARTS, fingerprint
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.warehouse import Warehouse

SLICE = ["retailer", "day"]

# The observations of one retailer's day ($1, $2, $3: retailer, start, stop) of the listings
# staged as {staged}. The day's rows are read by the key's (retailer, observed_at) range
# first: PostgreSQL would otherwise scan that range once per listing.
_LISTING_OBSERVATIONS_SQL = """
WITH day_rows AS MATERIALIZED (
    SELECT retailer, sku, observed_at, price_list, price_offer, price_card, in_stock,
           fetch_status
    FROM raw_prices WHERE retailer = $1 AND observed_at >= $2 AND observed_at < $3
)
SELECT d.* FROM day_rows AS d JOIN {staged} AS k ON d.sku = k.sku
"""

_OBSERVATIONS_SQL = """
SELECT r.retailer, r.sku, r.observed_at, r.price_list, r.price_offer, r.price_card, r.in_stock,
       r.fetch_status
FROM raw_prices AS r JOIN {staged} AS k ON r.retailer = k.retailer AND r.sku = k.sku
    AND r.observed_at >= k.start AND r.observed_at < k.stop
"""

_OBSERVATIONS_SQL = """
SELECT retailer, sku, observed_at, price_list, price_offer, price_card, in_stock, fetch_status
FROM raw_prices WHERE retailer = $1 AND observed_at >= $2 AND observed_at < $3
"""


@dataclass(frozen=True)
class SlicePlan:
    """What one refresh must do: rebuild the changed slices, drop the vanished ones."""

    census: pl.DataFrame  # retailer, day, fingerprint, raw_rows, first_hour, last_hour
    hours: pl.DataFrame  # the census by hour, as price_history_hours keeps it
    rebuild: pl.DataFrame  # census rows whose fingerprint changed (or that are new)
    vanished: pl.DataFrame  # retailer, day: closes whose raw rows are all gone
    unchanged: int


def slice_census(hours: pl.DataFrame) -> pl.DataFrame:
    """One fingerprint per (retailer, market day) of the rows now in raw_prices
    (``hours``: ``CENSUS_SQL``'s rows)."""
    start = pl.lit(datetime(1970, 1, 1, tzinfo=UTC)).cast(UTC_DATETIME)
    return (
        hours.lazy()
        .with_columns(day=market_day(start + pl.duration(hours=pl.col("hour"))))
        .group_by(SLICE)
        .agg(
            *[pl.col(c).sum() for c in FINGERPRINT_PARTS[:6]],
            pl.col("first_observed", "first_run").min(),
            pl.col("last_observed", "last_ingested", "last_run").max(),
            first_hour=pl.col("hour").min(),
            last_hour=pl.col("hour").max(),
        )
        .select(
            *SLICE,
            "raw_rows",
            "first_hour",
            "last_hour",
            fingerprint=fingerprint(),
        )
        .sort(SLICE)
        .collect()
    )


def plan_refresh(warehouse: Warehouse, *, full: bool = False) -> SlicePlan:
    """Compare the census with the fingerprints of the last refresh."""
    hours = warehouse.query(CENSUS_SQL)
    census = slice_census(hours)
    ledger = warehouse.query("SELECT retailer, day, fingerprint FROM price_history_slices")
    if ledger.is_empty():
        # First incremental refresh: closes written before the ledger existed are known
        # only by price_history itself.
        ledger = warehouse.query("SELECT DISTINCT retailer, day FROM price_history").with_columns(
            fingerprint=pl.lit(None, dtype=pl.String)
        )
    if full:
        rebuild = census
    else:
        rebuild = census.join(ledger, on=[*SLICE, "fingerprint"], how="anti", nulls_equal=False)
    vanished = ledger.select(SLICE).join(census, on=SLICE, how="anti")
    hour_rows = hours.select(
        "retailer", "hour", "raw_rows", "last_ingested", fingerprint=fingerprint()
    )
    return SlicePlan(census, hour_rows, rebuild, vanished, census.height - rebuild.height)


def day_runs(slices: pl.DataFrame) -> pl.DataFrame:
    """Group (retailer, day) slices into runs of consecutive days per retailer, so a
    backfilled week is one range query, not seven."""
    hours = (
        [pl.col("first_hour").min(), pl.col("last_hour").max()]
        if "first_hour" in slices.columns
        else []
    )
    ordinal = (pl.col("day") - pl.lit(date(1970, 1, 1))).dt.total_days()
    return (
        slices.sort(SLICE)
        .with_columns(run=ordinal - pl.int_range(pl.len()).over("retailer"))
        .group_by("retailer", "run")
        .agg(*hours, first_day=pl.col("day").min(), last_day=pl.col("day").max())
        .sort("retailer", "first_day")
    )


def _read_slices(warehouse: Warehouse, rebuild: pl.DataFrame) -> pl.DataFrame:
    """Raw observations of the slices to rebuild, read by (retailer, observed_at) ranges."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    frames = [
        warehouse.query(
            _OBSERVATIONS_SQL,
            [
                run["retailer"],
                epoch + timedelta(hours=run["first_hour"]),
                epoch + timedelta(hours=run["last_hour"] + 1),
            ],
        )
        for run in day_runs(rebuild).iter_rows(named=True)
    ]
    columns = ["retailer", "sku", "observed_at", "price_list", "price_offer", "price_card"]
    schema = {c: RAW_PRICE_SCHEMA[c] for c in [*columns, "in_stock", "fetch_status"]}
    if not frames:
        return pl.DataFrame(schema=schema)
    return pl.concat([f.cast(schema) for f in frames])  # type: ignore[arg-type]


def _listing_closes(
    warehouse: Warehouse, listings: pl.DataFrame, census: pl.DataFrame
) -> pl.DataFrame:
    """Closes of ``listings`` (``retailer, sku, day``) rebuilt from all their rows of the day."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    days = listings.join(census.select(*SLICE, "first_hour", "last_hour"), on=SLICE)
    frames = [
        warehouse.query_with(
            _LISTING_OBSERVATIONS_SQL,
            part.select("sku"),
            [
                retailer,
                epoch + timedelta(hours=part["first_hour"][0]),
                epoch + timedelta(hours=part["last_hour"][0] + 1),
            ],
        )
        for (retailer, _), part in days.group_by(SLICE)
    ]
    if not frames:
        return pl.DataFrame(schema=PRICE_HISTORY_SCHEMA)
    rows = pl.concat(frames, how="vertical_relaxed")
    return daily_close(rows).join(listings, on=[*SLICE, "sku"], how="semi")


def refresh_price_history(
    warehouse: Warehouse, *, full: bool = False, now: datetime | None = None
) -> StageReport:
    """Rebuild the daily closes of the slices whose raw rows changed (see module doc)."""
    now = now or datetime.now(UTC)
    plan = plan_refresh(warehouse, full=full)
    appended, listings = appended_slices(warehouse, plan.rebuild, plan.hours, full=full)
    whole = plan.rebuild.join(appended, on=SLICE, how="anti")
    closes = daily_close(_read_slices(warehouse, whole)).join(
        whole.select(SLICE), on=SLICE, how="semi"
    )
    grown = _listing_closes(warehouse, listings, plan.census).select(list(PRICE_HISTORY_SCHEMA))
    ledger = plan.rebuild.select(*SLICE, "fingerprint", "raw_rows").with_columns(
        refreshed_at=pl.lit(now).cast(UTC_DATETIME)
    )
    replaced = pl.concat([whole.select(SLICE), plan.vanished])
    closes = closes.select(list(PRICE_HISTORY_SCHEMA))
    with warehouse.transaction():
        # Run by run (consecutive days of one retailer), each table's rows of the run
        # replaced by the new ones (``replace``: no key deleted and inserted again).
        for run in day_runs(replaced).iter_rows(named=True):
            params = [run["retailer"], run["first_day"], run["last_day"]]
            inside = (pl.col("retailer") == run["retailer"]) & pl.col("day").is_between(
                run["first_day"], run["last_day"]
            )
            for table, rows in (("price_history", closes), ("price_history_slices", ledger)):
                warehouse.replace(
                    table,
                    rows.filter(inside),
                    where="retailer = $1 AND day >= $2 AND day <= $3",
                    params=params,
                )
        # Days only appended to: the closes of the listings with new rows, and their ledger.
        warehouse.upsert("price_history", grown, ["retailer", "sku", "day"])
        warehouse.upsert("price_history_slices", ledger.join(appended, on=SLICE), SLICE)
        warehouse.replace("price_history_hours", plan.hours)
    totals = warehouse.query(
        "SELECT count(*) AS closes, count(DISTINCT day) AS days, min(day) AS first_day, "
        "max(day) AS last_day FROM price_history"
    ).row(0, named=True)
    return StageReport(
        rows=closes.height + grown.height,
        counts={
            "slices_rebuilt": whole.height,
            "slices_appended_to": appended.height,
            "slices_unchanged": plan.unchanged,
            "slices_removed": plan.vanished.height,
            "rebuilt_days": sorted({str(d) for d in plan.rebuild["day"]})[-10:],
            "closes_total": int(totals["closes"]),
            "days": int(totals["days"]),
            "listings_rebuilt": pl.concat([closes, grown]).select("retailer", "sku").n_unique(),
            "first_day": str(totals["first_day"]),
            "last_day": str(totals["last_day"]),
        },
        preview=closes.sort("day", descending=True).head(10),
    )
