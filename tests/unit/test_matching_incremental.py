"""Incremental matching: only what changed is matched again, and the result is what a full
match of the same catalogue would have found."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from arbx_dagster.domain.matching import match_by_block
from arbx_dagster.domain.matching.incremental import (
    MatchState,
    _unique_ids,
    agreement,
    listing_identities,
    match_changes,
)
from arbx_dagster.domain.matching.normalize import enrich_listings
from arbx_dagster.domain.schema import LISTING_SCHEMA, conform
from arbx_dagster.domain.simulator import simulate_snapshot

KEY = ["retailer", "sku"]


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, pl.DataFrame]:
    """(listings, truth) of a simulated three-store market of about 3,000 listings."""
    snapshot = simulate_snapshot(3_000, seed=5)
    listings = conform(enrich_listings(snapshot.observations), LISTING_SCHEMA)
    return listings.unique(KEY, keep="last").sort(KEY), snapshot.truth_listings


def _state(listings: pl.DataFrame) -> MatchState:
    return MatchState.after(match_by_block(listings), listings)


def _product_of(state_or_matches: pl.DataFrame, retailer: str, sku: str) -> str:
    row = state_or_matches.filter((pl.col("retailer") == retailer) & (pl.col("sku") == sku))
    return row["canonical_id"].item()


def _partners(matches: pl.DataFrame, retailer: str, sku: str) -> set[tuple[str, str]]:
    product = _product_of(matches, retailer, sku)
    members = matches.filter(pl.col("canonical_id") == product).select(KEY).rows()
    return set(members) - {(retailer, sku)}


def _true_partner(listings: pl.DataFrame, truth: pl.DataFrame) -> tuple[tuple, tuple]:
    """Two listings at different stores that are the same product."""
    pairs = (
        truth.join(truth, on="true_product_id", suffix="_r")
        .filter(pl.col("retailer") < pl.col("retailer_r"))
        .join(listings.select(KEY), on=KEY, how="semi")
        .sort(KEY)
    )
    row = pairs.row(0, named=True)
    return (row["retailer"], row["sku"]), (row["retailer_r"], row["sku_r"])


def test_an_unchanged_catalogue_matches_nothing_again(market) -> None:
    listings, _ = market
    state = _state(listings)
    change = match_changes(listings, state)
    assert change.replaced.height == 0
    assert change.touched == []
    assert change.stats["seeds"] == 0
    after = change.apply(state)
    assert agreement(after.product_matches, state.product_matches) == 1.0


def test_a_new_listing_joins_its_counterparts_product_and_nothing_far_away_moves(
    market,
) -> None:
    listings, truth = market
    new, partner = _true_partner(listings, truth)
    without = listings.filter(~((pl.col("retailer") == new[0]) & (pl.col("sku") == new[1])))
    state = _state(without)
    partner_product = _product_of(state.product_matches, *partner)

    change = match_changes(listings, state)
    after = change.apply(state)

    assert change.stats["seeds"] == 1
    assert new in _partners(after.product_matches, *partner)
    # The partner's product keeps its id; it is the only one that gained a member.
    assert _product_of(after.product_matches, *partner) == partner_product
    assert partner_product in change.touched
    # Only the neighbourhood was matched again; everything else is exactly as it was.
    assert change.replaced.height < 0.2 * listings.height
    untouched = state.product_matches.join(change.replaced, on=KEY, how="anti")
    assert untouched.equals(after.product_matches.join(change.replaced, on=KEY, how="anti"))


def test_a_delisted_listing_leaves_its_product(market) -> None:
    listings, truth = market
    gone, partner = _true_partner(listings, truth)
    state = _state(listings)
    assert gone in _partners(state.product_matches, *partner)

    remaining = listings.filter(~((pl.col("retailer") == gone[0]) & (pl.col("sku") == gone[1])))
    after = match_changes(remaining, state).apply(state)

    assert gone not in set(after.product_matches.select(KEY).rows())
    assert gone not in _partners(after.product_matches, *partner)
    assert after.product_matches.height == remaining.height
    pairs = after.pairs
    assert pairs.filter(
        ((pl.col("left_retailer") == gone[0]) & (pl.col("left_sku") == gone[1]))
        | ((pl.col("right_retailer") == gone[0]) & (pl.col("right_sku") == gone[1]))
    ).is_empty()


def test_a_listing_renamed_to_another_product_moves_to_it(market) -> None:
    listings, truth = market
    (moved, old_partner) = _true_partner(listings, truth)
    # Its title becomes another product's, carried by the other stores.
    other = truth.join(truth.filter(pl.col("retailer") != moved[0]), on="true_product_id")
    target = (
        other.filter(pl.col("retailer") == moved[0])
        .join(listings.select(KEY), on=KEY, how="semi")
        .filter(pl.col("sku") != moved[1])
        .sort(KEY)
        .row(0, named=True)
    )
    source = listings.filter(
        (pl.col("retailer") == target["retailer"]) & (pl.col("sku") == target["sku"])
    ).row(0, named=True)
    renamed = listings.with_columns(
        [
            pl.when((pl.col("retailer") == moved[0]) & (pl.col("sku") == moved[1]))
            .then(pl.lit(source[c]))
            .otherwise(pl.col(c))
            .alias(c)
            for c in ("name", "name_norm", "brand", "model_code", "model_codes", "category")
        ]
    )
    # The renamed listing's old twin at its own store goes, as when a store re-lists a page.
    renamed = renamed.filter(
        ~((pl.col("retailer") == target["retailer"]) & (pl.col("sku") == target["sku"]))
    )
    state = _state(listings)
    change = match_changes(renamed, state)
    after = change.apply(state)

    assert old_partner not in _partners(after.product_matches, *moved)
    full = match_by_block(renamed)
    assert _partners(after.product_matches, *moved) == _partners(full.product_matches, *moved)


def test_the_incremental_state_agrees_with_a_full_match(market) -> None:
    listings, _ = market
    rng = np.random.default_rng(3)
    order = rng.permutation(listings.height)
    held_out = listings[order[:40]].select(KEY)
    delisted = listings[order[40:60]].select(KEY)
    before = listings.join(held_out, on=KEY, how="anti")
    state = _state(before)
    after_listings = listings.join(delisted, on=KEY, how="anti")

    change = match_changes(after_listings, state)
    incremental = change.apply(state)
    full = match_by_block(after_listings)

    assert change.stats["seeds"] >= 40
    assert agreement(incremental.product_matches, full.product_matches) >= 0.99
    # One row per listing, products named once, pairs inside products only.
    matches = incremental.product_matches
    assert matches.height == after_listings.height
    assert not matches.select(KEY).is_duplicated().any()
    assert matches.group_by("canonical_id", "retailer").len()["len"].max() == 1
    ids = matches.select(*KEY, "canonical_id")
    inside = (
        incremental.pairs.join(
            ids.rename({"retailer": "left_retailer", "sku": "left_sku"}),
            on=["left_retailer", "left_sku"],
        )
        .join(
            ids.rename({"retailer": "right_retailer", "sku": "right_sku", "canonical_id": "r"}),
            on=["right_retailer", "right_sku"],
        )
        .filter(pl.col("canonical_id") == pl.col("r"))
    )
    assert inside.height == incremental.pairs.height


def test_products_the_change_did_not_reach_keep_their_ids(market) -> None:
    listings, truth = market
    new, _ = _true_partner(listings, truth)
    without = listings.filter(~((pl.col("retailer") == new[0]) & (pl.col("sku") == new[1])))
    state = _state(without)
    change = match_changes(listings, state)
    after = change.apply(state)
    before_ids = set(state.product_matches["canonical_id"].to_list())
    after_ids = set(after.product_matches["canonical_id"].to_list())
    assert before_ids - after_ids <= set(change.touched)
    assert len(set(change.touched)) <= 3


def test_listings_asked_for_are_matched_again_even_unchanged(market) -> None:
    listings, truth = market
    one, other = _true_partner(listings, truth)
    state = _state(listings)
    rejected = pl.DataFrame(
        {
            "left_retailer": [one[0]],
            "left_sku": [one[1]],
            "right_retailer": [other[0]],
            "right_sku": [other[1]],
            "is_match": [False],
        }
    )
    also = pl.DataFrame({"retailer": [one[0], other[0]], "sku": [one[1], other[1]]})
    after = match_changes(listings, state, decisions=rejected, also=also).apply(state)
    assert other not in _partners(after.product_matches, *one)


def test_identity_ignores_prices_and_stock(market) -> None:
    listings, _ = market
    moved = listings.with_columns(price_offer=pl.col("price_offer") // 2, in_stock=False)
    assert listing_identities(moved).equals(listing_identities(listings))
    renamed = listings.with_columns(name=pl.col("name") + " x")
    assert not listing_identities(renamed)["identity"].equals(
        listing_identities(listings)["identity"]
    )


def test_a_recomputed_product_never_takes_an_id_a_product_outside_it_holds() -> None:
    matches = pl.DataFrame({"retailer": ["a", "b"], "sku": ["1", "2"], "canonical_id": ["x", "y"]})
    kept = _unique_ids(matches, _held(["z", "w"]))
    assert kept["canonical_id"].to_list() == ["x", "y"]
    renamed = _unique_ids(matches, _held(["y", "z"]))["canonical_id"].to_list()
    assert renamed[0] == "x" and renamed[1] not in {"x", "y", "z"}


def _held(outside: list[str]):
    """``held_outside`` of a catalogue whose other products hold ``outside``."""
    return lambda ids: ids.filter(ids.is_in(outside))
