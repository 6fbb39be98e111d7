"""Stage 2: the current, normalised state of every listing.

A full refresh normalises every listing from its latest observation. With ``mode="auto"``
only the listings whose raw rows changed since the last refresh are: raw_prices is
censused per retailer and UTC hour (``raw_census.py``) and each hour's fingerprint compared
with the one the last refresh recorded (``listing_hours``). An hour a scrape only appended
to (every row it held is still there, unchanged) touches only the listings with rows
ingested since; any other changed or vanished hour touches every listing with rows in it,
or whose first or last sighting lay in it (their rows may be gone). Touched listings are
normalised again from all their rows, with the whole catalogue's brand vocabulary as of
the last full refresh (``brand_vocabulary``) plus their own brand fields.
A full refresh runs when there is no record to compare with or more than
``MAX_TOUCHED_SHARE`` of the listings changed, and daily (the ``rematch_all`` job).
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.matching.brands import infer_brand_vocabulary
from arbx_dagster.domain.matching.incremental import listing_identities
from arbx_dagster.domain.matching.normalize import enrich_listings
from arbx_dagster.domain.schema import LISTING_KEY, LISTING_SCHEMA, UTC_DATETIME, conform
from arbx_dagster.pipeline.raw_census import hour_census, hours_only_gained_rows, with_bounds
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.warehouse import Warehouse

MAX_TOUCHED_SHARE = 0.2  # beyond this, normalising everything costs little more
REFRESH_MODES = ("auto", "full")

# The latest successful observation of each listing, with when it was first and last seen.
LATEST_OBSERVATIONS_SQL = """
SELECT * FROM (
    SELECT r.*,
           min(observed_at) OVER (PARTITION BY retailer, sku) AS first_seen,
           max(observed_at) OVER (PARTITION BY retailer, sku) AS last_seen,
           row_number() OVER (PARTITION BY retailer, sku ORDER BY observed_at DESC) AS recency
    FROM raw_prices AS r
    WHERE fetch_status = 'ok'
) AS ranked
WHERE recency = 1
"""

# The same for the listings whose raw rows are {raw} (those of the staged keys).
_LATEST_OF_LISTINGS_SQL = """
SELECT * FROM (
    SELECT r.*,
           min(r.observed_at) OVER (PARTITION BY r.retailer, r.sku) AS first_seen,
           max(r.observed_at) OVER (PARTITION BY r.retailer, r.sku) AS last_seen,
           row_number() OVER (
               PARTITION BY r.retailer, r.sku ORDER BY r.observed_at DESC
           ) AS recency
    FROM {raw} AS r
    WHERE r.fetch_status = 'ok'
) AS ranked
WHERE recency = 1
"""

# Listings touched by the hours staged as {staged}: with raw rows in one ingested after its
# ``since`` (any, when null), or first or last seen in one that may have lost rows (``whole``).
LISTINGS_IN_HOURS_SQL = """
SELECT DISTINCT r.retailer, r.sku FROM raw_prices AS r
JOIN {staged} AS h ON r.retailer = h.retailer AND r.observed_at >= h.start
    AND r.observed_at < h.stop AND (h.since IS NULL OR r.ingested_at > h.since)
UNION
SELECT l.retailer, l.sku FROM listings AS l
JOIN {staged} AS h ON h.whole AND l.retailer = h.retailer
    AND ((l.last_seen >= h.start AND l.last_seen < h.stop)
         OR (l.first_seen >= h.start AND l.first_seen < h.stop))
"""


def refresh_listings(warehouse: Warehouse, *, now: datetime, mode: str = "full") -> StageReport:
    """Normalise every listing, or (``mode="auto"``) only those whose raw rows changed."""
    if mode not in REFRESH_MODES:
        raise ValueError(f"mode must be one of {REFRESH_MODES}, not {mode!r}")
    census = hour_census(warehouse)
    why = "asked for"
    if mode == "auto":
        touched, why = _touched_listings(warehouse, census)
        if touched is not None:
            return _refresh_some(warehouse, touched, census, now)
    return _refresh_all(warehouse, census, now, why)


def _touched_listings(
    warehouse: Warehouse, census: pl.DataFrame
) -> tuple[pl.DataFrame | None, str]:
    """The listings to normalise again, or None and why everything must be."""
    ledger = warehouse.query("SELECT retailer, hour, fingerprint, last_ingested FROM listing_hours")
    if ledger.is_empty():
        return None, "no earlier refresh recorded"
    hours = _changed_hours(warehouse, census, ledger)
    if hours.is_empty():
        return pl.DataFrame(schema={"retailer": pl.String, "sku": pl.String}), ""
    touched = warehouse.query_with(LISTINGS_IN_HOURS_SQL, hours)
    listed = warehouse.scalar("SELECT count(*) FROM listings") or 0
    if touched.height > MAX_TOUCHED_SHARE * max(listed, 1):
        return None, f"more than {MAX_TOUCHED_SHARE:.0%} of the listings changed"
    return touched, ""


def _changed_hours(
    warehouse: Warehouse, census: pl.DataFrame, ledger: pl.DataFrame
) -> pl.DataFrame:
    """``retailer, start, stop, since, whole`` of every hour whose rows changed since the
    ledger: new hours and hours only appended to (rows after ``since`` are new), and hours
    that vanished or changed otherwise (``whole``: every listing in them is touched)."""
    hour = ["retailer", "hour"]
    changed = census.join(ledger, on=[*hour, "fingerprint"], how="anti")
    recorded = changed.join(
        ledger.select(*hour, recorded="fingerprint", since="last_ingested"), on=hour
    ).filter(pl.col("since").is_not_null())
    grown = hours_only_gained_rows(warehouse, recorded.select(*hour, "recorded", "since"))
    vanished = with_bounds(ledger.join(census, on=hour, how="anti").select(hour))
    no_since = pl.lit(None, dtype=UTC_DATETIME)
    columns = ["retailer", "start", "stop", "since", "whole"]
    return pl.concat(
        [
            changed.join(ledger, on=hour, how="anti").with_columns(
                since=no_since, whole=pl.lit(False)
            ),
            recorded.join(grown, on=hour, how="semi").with_columns(whole=pl.lit(False)),
            changed.join(grown, on=hour, how="anti")
            .join(ledger, on=hour, how="semi")
            .with_columns(since=no_since, whole=pl.lit(True)),
            vanished.with_columns(since=no_since, whole=pl.lit(True)),
        ],
        how="diagonal_relaxed",
    ).select(columns)


def _normalised(
    latest: pl.DataFrame, now: datetime, vocabulary: pl.DataFrame | None = None
) -> pl.DataFrame:
    listings = conform(enrich_listings(latest, vocabulary), LISTING_SCHEMA)
    return listings.with_columns(
        updated_at=pl.lit(now).cast(UTC_DATETIME),
        # What the matcher reads of it, hashed: how a match finds the listings that changed.
        identity=listing_identities(listings)["identity"],
    )


def _refresh_all(
    warehouse: Warehouse, census: pl.DataFrame, now: datetime, why: str
) -> StageReport:
    latest = warehouse.query(LATEST_OBSERVATIONS_SQL)
    listings = _normalised(latest, now)
    vocabulary = infer_brand_vocabulary(listings["name_norm"], listings["brand"])
    with warehouse.transaction():
        warehouse.upsert("listings", listings, LISTING_KEY)
        warehouse.replace("brand_vocabulary", vocabulary)
        warehouse.replace("listing_hours", _ledger(census))
    return _report(listings, mode="full", why_full=why)


def _refresh_some(
    warehouse: Warehouse, touched: pl.DataFrame, census: pl.DataFrame, now: datetime
) -> StageReport:
    raw = warehouse.keyed_rows_sql("raw_prices", "{staged}", LISTING_KEY)
    sql = _LATEST_OF_LISTINGS_SQL.format(raw=raw)
    latest = warehouse.query_with(sql, touched) if touched.height else pl.DataFrame()
    vocabulary = warehouse.query("SELECT alias, brand FROM brand_vocabulary")
    listings = _normalised(latest, now, vocabulary) if latest.height else empty_listings()
    with warehouse.transaction():
        warehouse.upsert("listings", listings, LISTING_KEY)
        warehouse.replace("listing_hours", _ledger(census))
    return _report(listings, mode="incremental", touched=touched.height)


def _ledger(census: pl.DataFrame) -> pl.DataFrame:
    return census.select("retailer", "hour", "fingerprint", "last_ingested")


def empty_listings() -> pl.DataFrame:
    return conform(pl.DataFrame(), LISTING_SCHEMA).with_columns(
        updated_at=pl.lit(None, dtype=UTC_DATETIME), identity=pl.lit(None, dtype=pl.Int64)
    )


def _report(listings: pl.DataFrame, **mode: object) -> StageReport:
    return StageReport(
        rows=listings.height,
        counts={
            **mode,
            "listings": listings.height,
            "with_model_code": int(listings["model_code"].is_not_null().sum()),
            "with_brand": int(listings["brand"].is_not_null().sum()),
            "in_stock": int(listings["in_stock"].fill_null(False).sum()),
            "per_retailer": dict(listings.group_by("retailer").len().sort("retailer").iter_rows()),
        },
        preview=listings.select(
            "retailer", "sku", "name", "brand", "model_code", "category", "price_offer"
        ).head(10),
    )
