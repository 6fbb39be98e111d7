"""normalized_listings between full refreshes: only the listings whose raw prices changed
are normalised again, and the table is what a full refresh gives, on both engines."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from arbx_dagster.domain.matching.incremental import listing_identities
from arbx_dagster.domain.schema import LISTING_SCHEMA, conform
from arbx_dagster.domain.simulator import simulate_snapshot
from arbx_dagster.pipeline.ingest import ingest_observations
from arbx_dagster.pipeline.listings import refresh_listings
from arbx_dagster.storage.warehouse import Warehouse

KEY = ["retailer", "sku"]


@pytest.fixture
def observations() -> pl.DataFrame:
    return simulate_snapshot(600, seed=11).observations


def _listings(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query("SELECT * FROM listings").drop("updated_at").sort(KEY)


def _full_result(warehouse: Warehouse, now) -> pl.DataFrame:
    refresh_listings(warehouse, now=now, mode="full")
    return _listings(warehouse)


def test_only_listings_with_new_prices_are_normalised_again(
    warehouse: Warehouse, observations: pl.DataFrame
) -> None:
    now = observations["observed_at"].max() + timedelta(minutes=1)
    ingest_observations(warehouse, observations, now=now)
    first = refresh_listings(warehouse, now=now, mode="auto")
    assert first.counts["mode"] == "full"

    unchanged = refresh_listings(warehouse, now=now, mode="auto")
    assert unchanged.counts["mode"] == "incremental" and unchanged.rows == 0

    later = now + timedelta(hours=2)
    moved = observations.head(15).with_columns(
        price_offer=pl.col("price_offer") // 2, observed_at=pl.lit(later - timedelta(minutes=5))
    )
    new = observations.head(3).with_columns(
        sku=pl.col("sku") + "-new", name=pl.col("name") + " Pack 2", observed_at=pl.lit(later)
    )
    ingest_observations(warehouse, pl.concat([moved, new]), now=later)
    report = refresh_listings(warehouse, now=later, mode="auto")

    assert report.counts["mode"] == "incremental"
    assert report.rows == 18
    incremental = _listings(warehouse)
    assert incremental.equals(_full_result(warehouse, later))
    halved = incremental.join(moved.select(KEY), on=KEY, how="semi")
    assert (halved["price_offer"] * 2 <= observations.head(15)["price_offer"].max()).all()


def test_rows_that_vanish_from_an_hour_take_the_listing_back_to_its_earlier_price(
    warehouse: Warehouse, observations: pl.DataFrame
) -> None:
    now = observations["observed_at"].max() + timedelta(minutes=1)
    ingest_observations(warehouse, observations, now=now)
    refresh_listings(warehouse, now=now, mode="auto")
    later = now + timedelta(hours=3)
    moved = observations.head(5).with_columns(
        price_offer=pl.col("price_offer") + 1000, observed_at=pl.lit(later)
    )
    ingest_observations(warehouse, moved, now=later)
    refresh_listings(warehouse, now=later, mode="auto")
    # The run that landed them is undone: its rows leave raw_prices.
    warehouse.execute("DELETE FROM raw_prices WHERE observed_at = $1", [later])
    report = refresh_listings(warehouse, now=later, mode="auto")
    assert report.counts["mode"] == "incremental" and report.rows == 5
    back = _listings(warehouse).join(moved.select(KEY), on=KEY, how="semi")
    original = observations.head(5).sort(KEY)
    assert back["price_offer"].to_list() == original["price_offer"].to_list()
    assert _listings(warehouse).equals(_full_result(warehouse, later))


def test_many_changes_at_once_normalise_everything(
    warehouse: Warehouse, observations: pl.DataFrame
) -> None:
    now = observations["observed_at"].max() + timedelta(minutes=1)
    ingest_observations(warehouse, observations.head(300), now=now)
    refresh_listings(warehouse, now=now, mode="auto")
    later = now + timedelta(hours=1)
    ingest_observations(
        warehouse, observations.tail(300).with_columns(observed_at=pl.lit(later)), now=later
    )
    report = refresh_listings(warehouse, now=later, mode="auto")
    assert report.counts["mode"] == "full"
    assert "more than" in report.counts["why_full"]


def _normalised_in_one_hour(
    warehouse: Warehouse, observations: pl.DataFrame
) -> tuple[pl.DataFrame, datetime]:
    """The whole market observed within one UTC hour (as a scrape of the catalogue lands),
    landed and normalised: ``(its observations, the hour)``."""
    hour = observations["observed_at"].max().replace(minute=0, second=0, microsecond=0)
    hour += timedelta(hours=1)
    market = observations.with_columns(observed_at=pl.lit(hour + timedelta(minutes=5)))
    ingest_observations(warehouse, market, now=hour + timedelta(minutes=10))
    refresh_listings(warehouse, now=hour + timedelta(minutes=10), mode="auto")
    return market, hour


def test_a_scrape_appended_to_an_hour_normalises_only_its_listings(
    warehouse: Warehouse, observations: pl.DataFrame
) -> None:
    market, hour = _normalised_in_one_hour(warehouse, observations)
    later = hour + timedelta(minutes=20)
    moved = market.head(5).with_columns(
        price_offer=pl.col("price_offer") + 1000, observed_at=pl.lit(later)
    )
    ingest_observations(warehouse, moved, now=later)

    report = refresh_listings(warehouse, now=later, mode="auto")

    # The hour holds every listing; it only gained rows, so only their five are touched.
    assert report.counts["mode"] == "incremental" and report.rows == 5
    assert _listings(warehouse).equals(_full_result(warehouse, later))


def test_a_corrected_row_in_an_hour_touches_every_listing_of_the_hour(
    warehouse: Warehouse, observations: pl.DataFrame
) -> None:
    market, hour = _normalised_in_one_hour(warehouse, observations)
    sku = market["sku"][0]
    warehouse.execute("UPDATE raw_prices SET price_offer = 12345 WHERE sku = $1", [sku])

    report = refresh_listings(warehouse, now=hour + timedelta(minutes=20), mode="auto")

    # Not an append: the whole hour (the whole market here) is normalised again.
    assert report.counts["mode"] == "full"
    corrected = _listings(warehouse).filter(pl.col("sku") == sku)
    assert corrected["price_offer"].to_list() == [12345] * corrected.height


def test_each_listing_carries_the_identity_a_match_compares(
    warehouse: Warehouse, observations: pl.DataFrame
) -> None:
    """Normalisation writes what the matcher reads of each listing, hashed: a price move
    keeps it, a new title changes it, whichever way the listing was normalised."""
    now = observations["observed_at"].max() + timedelta(minutes=1)
    ingest_observations(warehouse, observations, now=now)
    refresh_listings(warehouse, now=now, mode="full")
    stored = _listings(warehouse)
    expected = listing_identities(conform(stored, LISTING_SCHEMA))
    assert stored.select(*KEY, "identity").equals(expected)

    later = now + timedelta(hours=1)
    first, second = observations.head(1), observations.slice(1, 1)
    ingest_observations(
        warehouse,
        pl.concat(
            [
                first.with_columns(price_offer=pl.col("price_offer") // 2),
                second.with_columns(name=pl.col("name") + " Pack 2"),
            ]
        ).with_columns(observed_at=pl.lit(later)),
        now=later,
    )
    refresh_listings(warehouse, now=later, mode="auto")
    after = _listings(warehouse).join(stored.select(*KEY, before="identity"), on=KEY)
    kept = after.with_columns(same=pl.col("identity") == pl.col("before"))
    assert kept.filter(~pl.col("same")).select(KEY).equals(second.select(KEY))
