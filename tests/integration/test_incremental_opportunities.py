"""Opportunities between full passes: a pass evaluates only the products whose inputs
changed (and those a moved segment or fence affects) and ends with exactly what a full
pass over the same data finds, on both engines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from arbx_dagster.bench.freshness import (
    COMPARED,
    OPPORTUNITY_TABLES,
    compare_opportunities,
    restore,
    snapshot,
)
from arbx_dagster.domain.matching import RuleScorer
from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform
from arbx_dagster.pipeline.history import refresh_price_history
from arbx_dagster.pipeline.ingest import ingest_observations
from arbx_dagster.pipeline.listings import refresh_listings
from arbx_dagster.pipeline.matching import refresh_matches
from arbx_dagster.pipeline.opportunities import refresh_opportunities
from arbx_dagster.storage.settings_store import set_setting
from arbx_dagster.storage.warehouse import Warehouse

RETAILERS = ("falabella", "paris", "ripley")
CATEGORIES = {
    "Televisores": ("Samsung", "Smart TV", "QN"),
    "Notebooks": ("Lenovo", "Notebook", "IP"),
}
PER_CATEGORY = 24  # enough products for a category's own review fence
DAYS = 12  # enough closes for an established history
TODAY = date(2026, 11, 24)
FIRST_PASS = datetime(2026, 11, 24, 15, tzinfo=UTC)  # noon in Santiago
SECOND_PASS = FIRST_PASS + timedelta(hours=1)
KEY = ["retailer", "sku"]


def _catalogue() -> pl.DataFrame:
    """One listing per product and store, each store's price a few % off the product's."""
    rng = np.random.default_rng(11)
    rows = []
    for category, (brand, kind, prefix) in CATEGORIES.items():
        for n in range(PER_CATEGORY):
            base = int(rng.integers(150, 900)) * 1_000
            code = f"{prefix}{n:04d}K"
            for retailer in RETAILERS:
                offset = 1 + float(rng.uniform(-0.04, 0.04))
                # Every sixth product has a store well under the others: a standing spread.
                if n % 6 == 0 and retailer == "ripley":
                    offset = 0.78
                price = round(base * offset, -1) - 10
                name = f"{kind} {brand} {code} {n % 3 + 1}"
                sku = f"{retailer[:2]}-{code}"
                rows.append((retailer, sku, name, brand, code, category, price))
    columns = ["retailer", "sku", "name", "brand", "model", "category", "price_offer"]
    return pl.DataFrame(rows, schema=columns, orient="row")


def _observations(catalogue: pl.DataFrame, at: datetime) -> pl.DataFrame:
    frame = catalogue.with_columns(
        observed_at=pl.lit(at),
        price_list=pl.col("price_offer") * 12 // 10,
        url=pl.format("https://{}.example/{}", "retailer", "sku"),
        currency=pl.lit("CLP"),
        in_stock=pl.lit(True),
        fetch_status=pl.lit("ok"),
        source=pl.lit("test"),
    )
    return conform(frame, RAW_PRICE_SCHEMA)


def _changes(catalogue: pl.DataFrame) -> pl.DataFrame:
    """A new spread, a glitch, a price rise, a new listing, and most of one store's
    notebooks down 40 % (a store-wide sale: that segment's market move)."""

    def listing(code: str, retailer: str) -> pl.DataFrame:
        return catalogue.filter((pl.col("model") == code) & (pl.col("retailer") == retailer))

    sale = (pl.col("retailer") == "paris") & (pl.col("category") == "Notebooks")
    offer = pl.col("price_offer")
    changed = pl.concat(
        [
            listing("QN0003K", "paris").with_columns(price_offer=offer * 6 // 10),
            listing("QN0005K", "falabella").with_columns(price_offer=offer // 10),
            listing("QN0007K", "ripley").with_columns(price_offer=offer * 11 // 10),
            listing("QN0009K", "paris").with_columns(
                retailer=pl.lit("hites"), sku=pl.lit("hi-QN0009K")
            ),
            catalogue.filter(sale).head(13).with_columns(price_offer=offer * 6 // 10),
        ]
    )
    return changed


def _refresh(warehouse: Warehouse, now: datetime, mode: str = "auto"):
    refresh_listings(warehouse, now=now, mode="auto")
    refresh_matches(warehouse, now=now, scorer=RuleScorer(), workers=1, mode="auto")
    refresh_price_history(warehouse, now=now)
    return refresh_opportunities(warehouse, now=now, mode=mode)


@pytest.fixture
def market(warehouse: Warehouse) -> Warehouse:
    """Twelve days of a quiet market, fully processed at noon of the last."""
    catalogue = _catalogue()
    for back in range(DAYS, 0, -1):
        at = FIRST_PASS - timedelta(days=back - 1, hours=1)
        ingest_observations(warehouse, _observations(catalogue, at), now=at)
    first = _refresh(warehouse, FIRST_PASS)
    assert first.counts["mode"] == "full"
    assert first.counts["why_full"] == "no earlier pass recorded"
    return warehouse


def _live(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query("SELECT * FROM opportunities").sort("opportunity_id")


def _land_changes_upstream(market: Warehouse, landed: datetime, now: datetime) -> None:
    """The changes landed at ``landed``, and every stage before opportunities run at ``now``."""
    ingest_observations(market, _observations(_changes(_catalogue()), landed), now=landed)
    refresh_listings(market, now=now, mode="auto")
    refresh_matches(market, now=now, scorer=RuleScorer(), workers=1, mode="auto")
    refresh_price_history(market, now=now)


def _incremental_then_full(market: Warehouse, now: datetime):
    """``(incremental report, its opportunities, full report, a full pass's opportunities)``
    of the same data: the tables are put back between the two passes."""
    before = snapshot(market, OPPORTUNITY_TABLES)
    incremental = refresh_opportunities(market, now=now)
    found_incrementally = _live(market)
    restore(market, before)
    full = refresh_opportunities(market, now=now, mode="full")
    return incremental, found_incrementally, full, _live(market)


def test_a_pass_after_changes_evaluates_only_what_they_touch_and_agrees_with_a_full_one(
    market: Warehouse,
) -> None:
    _land_changes_upstream(market, SECOND_PASS - timedelta(minutes=20), SECOND_PASS)

    incremental, found_incrementally, full, found_by_full = _incremental_then_full(
        market, SECOND_PASS
    )

    counts = incremental.counts
    assert counts["mode"] == "incremental" and full.counts["mode"] == "full"
    # The 17 landed, and the new listing's product's members (their match was rewritten).
    assert 17 <= counts["changed_listings"] <= 20
    products = market.scalar("SELECT count(DISTINCT canonical_id) FROM product_matches")
    # The store-wide sale moved its segment: its other products were evaluated too.
    assert 16 < counts["evaluated_products"] < products
    assert counts["carried_over"] > 0
    assert compare_opportunities(found_incrementally, found_by_full)["identical"]
    live = found_incrementally.filter(pl.col("status") != "expired")
    assert live.filter((pl.col("kind") == "glitch") & (pl.col("buy_sku") == "fa-QN0005K")).height
    assert live.filter((pl.col("kind") == "spread") & (pl.col("buy_sku") == "pa-QN0003K")).height


def test_a_pass_with_nothing_changed_evaluates_nothing_and_carries_every_opportunity(
    market: Warehouse,
) -> None:
    before = _live(market)
    later = FIRST_PASS + timedelta(minutes=30)
    again = _refresh(market, later)

    assert again.counts["mode"] == "incremental"
    assert again.counts["changed_listings"] == 0
    assert again.counts["evaluated_products"] == 0
    after = _live(market)
    opened = before.filter(pl.col("status") != "expired")
    assert again.counts["carried_over"] == opened.height > 0
    assert after.select(COMPARED[:-4]).equals(before.select(COMPARED[:-4]))
    assert (after.filter(pl.col("status") != "expired")["last_seen"] == later).all()
    aged = after["confidence"] / before["confidence"]
    assert ((aged - 0.5 ** (0.5 / 24)).abs() < 1e-12).all()


def test_only_rows_written_since_the_last_pass_are_compared_and_a_vanished_one_is_found(
    market: Warehouse,
) -> None:
    spread = market.query(
        "SELECT buy_retailer, buy_sku FROM opportunities WHERE kind = 'spread' "
        "AND status <> 'expired' ORDER BY buy_sku LIMIT 1"
    ).row(0)
    # The listing leaves the catalogue behind every stage's back: nothing is stamped.
    for table in ("product_matches", "listings"):
        market.execute(f"DELETE FROM {table} WHERE retailer = $1 AND sku = $2", list(spread))

    incremental, found_incrementally, _, found_by_full = _incremental_then_full(
        market, FIRST_PASS + timedelta(minutes=30)
    )

    assert incremental.counts["mode"] == "incremental"
    assert incremental.counts["changed_listings"] == 1
    assert compare_opportunities(found_incrementally, found_by_full)["identical"]
    bought_there = (pl.col("buy_retailer") == spread[0]) & (pl.col("buy_sku") == spread[1])
    assert found_incrementally.filter(bought_there)["status"].to_list() == ["expired"]


def test_changes_stamped_at_the_very_instant_of_the_last_pass_are_not_missed(
    market: Warehouse,
) -> None:
    """A clock pinned for a replay stamps the next run exactly like the last pass."""
    _land_changes_upstream(market, FIRST_PASS - timedelta(minutes=10), FIRST_PASS)

    again, found, _, found_by_full = _incremental_then_full(market, FIRST_PASS)

    assert again.counts["mode"] == "incremental" and again.counts["changed_listings"] >= 17
    assert compare_opportunities(found, found_by_full)["identical"]


def test_a_new_market_day_and_changed_thresholds_mean_a_full_pass(market: Warehouse) -> None:
    next_day = FIRST_PASS + timedelta(days=1)
    assert _refresh(market, next_day).counts["why_full"] == "a new market day"
    set_setting(market, "min_margin_clp", 30_000, actor="test")
    later = next_day + timedelta(minutes=30)
    assert _refresh(market, later).counts["why_full"].startswith("thresholds, labels")


def test_an_opportunity_that_comes_back_carries_on_where_it_expired(market: Warehouse) -> None:
    standing = _catalogue().filter(pl.col("sku") == "ri-QN0000K")  # a standing spread
    spread = pl.col("buy_sku") == "ri-QN0000K"
    first = _live(market).filter(spread).row(0, named=True)

    closed, reopened = FIRST_PASS + timedelta(minutes=30), FIRST_PASS + timedelta(minutes=60)
    raised = standing.with_columns(price_offer=pl.col("price_offer") * 13 // 10)
    ingest_observations(market, _observations(raised, closed), now=closed)
    assert _refresh(market, closed).counts["mode"] == "incremental"
    assert _live(market).filter(spread)["status"].to_list() == ["expired"]

    ingest_observations(market, _observations(standing, reopened), now=reopened)
    _refresh(market, reopened)
    back = _live(market).filter(spread).row(0, named=True)
    assert back["opportunity_id"] == first["opportunity_id"]
    assert (back["status"], back["first_seen"], back["times_seen"]) == ("active", FIRST_PASS, 2)
    assert back["expired_at"] is None
