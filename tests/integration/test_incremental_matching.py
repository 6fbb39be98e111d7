"""product_matches between full matches: only what changed is matched again, the tables
stay whole and consistent on both engines, and a full match runs when it is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from listings_table import load_listings

from arbx_dagster.domain.matching import RuleScorer
from arbx_dagster.domain.matching.incremental import agreement
from arbx_dagster.domain.matching.training_pairs import simulated_listings
from arbx_dagster.pipeline.match_state import StoredMatchState, read_match_state
from arbx_dagster.pipeline.matching import FULL_MATCH_EVERY, read_listings, refresh_matches
from arbx_dagster.storage.labels import ListingKey, label_pair
from arbx_dagster.storage.warehouse import Warehouse

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
KEY = ["retailer", "sku"]


class _Versioned(RuleScorer):
    """The rule scorer under another version: what a retrained model looks like."""

    version = "rules-v2"


@pytest.fixture
def listings() -> pl.DataFrame:
    frame, _ = simulated_listings(seed=307, n_products=120)
    return frame.sort(KEY)


def _matches(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query(
        "SELECT retailer, sku, canonical_id, match_probability FROM product_matches"
    ).sort(KEY)


def _match(warehouse: Warehouse, at: datetime, scorer=None, mode: str = "auto"):
    return refresh_matches(warehouse, now=at, scorer=scorer or RuleScorer(), workers=1, mode=mode)


def _assert_consistent(warehouse: Warehouse) -> None:
    """One row per listing, every product named once with its true counts, pairs inside
    products, identities for exactly the matched listings."""
    matches = _matches(warehouse)
    listed = warehouse.query("SELECT retailer, sku FROM listings")
    assert matches.select(KEY).sort(KEY).equals(listed.sort(KEY))
    products = warehouse.query(
        "SELECT canonical_id, n_listings, n_retailers FROM canonical_products"
    )
    counts = matches.group_by("canonical_id").agg(
        n_listings=pl.len().cast(pl.Int32), n_retailers=pl.col("retailer").n_unique().cast(pl.Int32)
    )
    assert products.sort("canonical_id").equals(
        counts.sort("canonical_id").select(products.columns)
    )
    stray_pairs = warehouse.scalar(
        "SELECT count(*) FROM match_pairs p "
        "JOIN product_matches l ON l.retailer = p.left_retailer AND l.sku = p.left_sku "
        "JOIN product_matches r ON r.retailer = p.right_retailer AND r.sku = p.right_sku "
        "WHERE l.canonical_id <> r.canonical_id"
    )
    assert stray_pairs == 0
    identities = warehouse.query("SELECT retailer, sku FROM match_identities").sort(KEY)
    assert identities.equals(listed.sort(KEY))


def test_the_first_match_is_full_and_an_unchanged_catalogue_is_not_matched_again(
    warehouse: Warehouse, listings: pl.DataFrame
) -> None:
    load_listings(warehouse, listings, NOW)
    first = _match(warehouse, NOW)
    assert first.counts["mode"] == "full" and first.counts["why_full"] == "no full match yet"
    before = _matches(warehouse)

    again = _match(warehouse, NOW + timedelta(minutes=30))
    assert again.counts["mode"] == "incremental"
    assert again.counts["changed_listings"] == 0
    assert again.counts["rematched_listings"] == 0
    assert _matches(warehouse).equals(before)
    runs = warehouse.query("SELECT mode FROM match_runs ORDER BY matched_at")["mode"].to_list()
    assert runs == ["full", "incremental"]


def test_new_changed_and_delisted_listings_are_matched_without_the_rest(
    warehouse: Warehouse, listings: pl.DataFrame
) -> None:
    held_out = listings[::25]
    delisted = listings[7::40]
    load_listings(warehouse, listings.join(held_out.select(KEY), on=KEY, how="anti"), NOW)
    _match(warehouse, NOW)

    now = listings.join(delisted.select(KEY), on=KEY, how="anti")
    load_listings(warehouse, now, NOW + timedelta(minutes=30))  # normalised after the match
    report = _match(warehouse, NOW + timedelta(hours=1))

    assert report.counts["mode"] == "incremental"
    assert report.counts["changed_listings"] >= held_out.join(delisted, on=KEY, how="anti").height
    assert report.counts["rematched_listings"] < now.height
    _assert_consistent(warehouse)
    incremental = _matches(warehouse)
    full = _match(warehouse, NOW + timedelta(hours=2), mode="full")
    assert full.counts["mode"] == "full"
    assert agreement(incremental, _matches(warehouse)) >= 0.97
    _assert_consistent(warehouse)


def test_a_full_match_runs_when_the_model_changes_or_the_last_one_is_old(
    warehouse: Warehouse, listings: pl.DataFrame
) -> None:
    load_listings(warehouse, listings, NOW)
    _match(warehouse, NOW)
    retrained = _match(warehouse, NOW + timedelta(hours=1), scorer=_Versioned())
    assert retrained.counts["mode"] == "full"
    assert "model changed" in retrained.counts["why_full"]
    same = _match(warehouse, NOW + timedelta(hours=2), scorer=_Versioned())
    assert same.counts["mode"] == "incremental"
    late = _match(
        warehouse,
        NOW + timedelta(hours=1) + FULL_MATCH_EVERY + timedelta(minutes=1),
        scorer=_Versioned(),
    )
    assert late.counts["mode"] == "full" and "older than" in late.counts["why_full"]


def test_a_new_label_is_settled_at_the_next_incremental_match(
    warehouse: Warehouse, listings: pl.DataFrame
) -> None:
    load_listings(warehouse, listings, NOW)
    _match(warehouse, NOW)
    pair = warehouse.query(
        "SELECT left_retailer, left_sku, right_retailer, right_sku FROM match_pairs "
        "ORDER BY probability DESC LIMIT 1"
    ).row(0, named=True)
    label_pair(
        warehouse,
        ListingKey(pair["left_retailer"], pair["left_sku"]),
        ListingKey(pair["right_retailer"], pair["right_sku"]),
        is_match=False,
        actor="test",
        now=NOW + timedelta(minutes=5),
    )
    report = _match(warehouse, NOW + timedelta(minutes=30))
    assert report.counts["mode"] == "incremental" and report.counts["changed_listings"] >= 2
    ids = _matches(warehouse)
    left = ids.filter(
        (pl.col("retailer") == pair["left_retailer"]) & (pl.col("sku") == pair["left_sku"])
    )
    right = ids.filter(
        (pl.col("retailer") == pair["right_retailer"]) & (pl.col("sku") == pair["right_sku"])
    )
    assert left["canonical_id"].item() != right["canonical_id"].item()
    _assert_consistent(warehouse)


def test_listings_without_an_identity_are_matched_in_full_once_then_incrementally(
    warehouse: Warehouse, listings: pl.DataFrame
) -> None:
    """Listings normalised before they carried their identity (an upgraded deployment) are
    all changed: one full match, which fills their identities in, then incremental ones."""
    load_listings(warehouse, listings, NOW)
    _match(warehouse, NOW)
    warehouse.execute("UPDATE listings SET identity = NULL")

    upgraded = _match(warehouse, NOW + timedelta(minutes=30))
    assert upgraded.counts["mode"] == "full"
    assert "changed" in upgraded.counts["why_full"]
    assert warehouse.scalar("SELECT count(*) FROM listings WHERE identity IS NULL") == 0
    after = _match(warehouse, NOW + timedelta(hours=1))
    assert after.counts["mode"] == "incremental" and after.counts["changed_listings"] == 0


def test_the_stored_state_answers_what_the_state_in_frames_does(
    warehouse: Warehouse, listings: pl.DataFrame
) -> None:
    """An incremental match reads the warehouse a few keys at a time (``StoredMatchState``):
    each answer is the one the whole state, read into frames, gives."""
    held_out, delisted = listings[::30], listings[5::45]
    load_listings(warehouse, listings.join(held_out.select(KEY), on=KEY, how="anti"), NOW)
    _match(warehouse, NOW)
    current = listings.join(delisted.select(KEY), on=KEY, how="anti")
    load_listings(
        warehouse,
        pl.concat([current.head(3).with_columns(name=pl.col("name") + " v2"), current[3:]]),
        NOW,
    )
    frames, stored = read_match_state(warehouse), StoredMatchState(warehouse, NOW)
    now_listed = read_listings(warehouse)

    def same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
        return a.sort(a.columns).equals(b.sort(b.columns))

    assert same(stored.delisted(now_listed), frames.delisted(now_listed))
    assert stored.delisted(now_listed).height == delisted.join(held_out, on=KEY, how="anti").height
    changed = stored.changed(now_listed)
    assert same(changed, frames.changed(now_listed))
    new = held_out.join(delisted, on=KEY, how="anti").select(KEY)
    assert same(changed, pl.concat([new, current.head(3).select(KEY)]).unique())
    some = pl.concat([listings.select(KEY)[::7], pl.DataFrame({"retailer": ["x"], "sku": ["y"]})])
    assert same(stored.matches_of(some), frames.matches_of(some))
    assert same(stored.members_of(some), frames.members_of(some))
    assert same(stored.pairs_touching(some), frames.pairs_touching(some))
    # Products whose every member is among the keys are held by nobody outside them.
    inside, members = frames.matches_of(some)["canonical_id"], frames.members_of(some)
    ids = pl.concat([inside, frames.product_matches["canonical_id"][::5]])
    held = stored.ids_held_outside(ids, members)
    assert sorted(held.to_list()) == sorted(frames.ids_held_outside(ids, members).to_list())
    assert held.len() > 0 and not held.is_in(inside.implode()).any()
