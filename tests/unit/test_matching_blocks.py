"""Match blocks: shelves that share products are one block, and matching block by block
(in worker processes or not) gives the same products as matching each block alone."""

from __future__ import annotations

import polars as pl
import pytest

from arbx_dagster.domain.matching import RuleScorer, match_by_block
from arbx_dagster.domain.matching.blocks import assign_blocks, category_blocks, shard_of
from arbx_dagster.domain.matching.engine import match_listings
from arbx_dagster.domain.matching.normalize import matching_records
from arbx_dagster.domain.matching.training_pairs import simulated_listings


@pytest.fixture(scope="module")
def market() -> tuple[pl.DataFrame, pl.DataFrame]:
    return simulated_listings(seed=211, n_products=150)


def _records(listings: pl.DataFrame) -> pl.DataFrame:
    return matching_records(listings.sort("retailer", "sku"))


def test_shelves_of_one_product_type_form_one_block(
    market: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    listings, truth = market
    records = _records(listings)
    blocks = dict(category_blocks(records).iter_rows())
    # the stores' three names for the TV shelf are one block, unrelated shelves are not
    assert blocks["smart tv"] == blocks["televisores"] == blocks["televisores led"]
    assert blocks["smartphones"] != blocks["televisores"]
    assert len(set(blocks.values())) >= 5
    # no true product is split across blocks
    placed = records.select("retailer", "sku").with_columns(
        block=assign_blocks(records, from_listings=0)
    )
    per_product = (
        placed.join(truth, on=["retailer", "sku"])
        .group_by("true_product_id")
        .agg(pl.col("block").n_unique())
    )
    assert (per_product["block"] == 1).all()


def test_a_category_shared_by_a_few_codes_only_stays_apart() -> None:
    rows = [("a", f"s{k}", "phone", [f"CODE{k}"]) for k in range(20)]
    rows += [("b", f"t{k}", "phones", [f"CODE{k}"]) for k in range(20)]
    rows += [("b", f"u{k}", "tvs", [f"TV{k}"]) for k in range(20)]
    rows += [("a", "x", "tv sets", ["CODE1"]), ("a", "y", "tv sets", ["TV3"])]
    rows += [("a", f"v{k}", "tv sets", [f"TV{k}"]) for k in range(4, 20)]
    records = pl.DataFrame(
        {
            "idx": list(range(len(rows))),
            "retailer": [r[0] for r in rows],
            "sku": [r[1] for r in rows],
            "category": [r[2] for r in rows],
            "codes": [r[3] for r in rows],
            "stems": [[] for _ in rows],
        }
    )
    blocks = dict(category_blocks(records).iter_rows())
    assert blocks["phone"] == blocks["phones"]
    assert blocks["tvs"] == blocks["tv sets"]  # linked by most of their listings
    assert blocks["tv sets"] != blocks["phone"]  # one shared code is not a shelf


def test_uncategorised_listings_form_their_own_block() -> None:
    records = pl.DataFrame(
        {
            "idx": [0, 1],
            "retailer": ["a", "b"],
            "sku": ["1", "2"],
            "category": [None, "tvs"],
            "codes": [["X1"], ["Y1"]],
            "stems": [[], []],
        },
        schema_overrides={"category": pl.String},
    )
    assert assign_blocks(records, from_listings=0).to_list() == ["", "tvs"]


def test_a_small_catalogue_is_one_block(market: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    listings, _ = market
    records = _records(listings)
    assert assign_blocks(records).unique().to_list() == ["*"]
    assert match_by_block(listings, scorer=RuleScorer(), workers=1).stats["blocks"] == 1


def test_shards_are_stable_and_in_range() -> None:
    assert shard_of("televisores", 4) == shard_of("televisores", 4)
    assert {shard_of(name, 3) for name in ("a", "b", "c", "d", "e", "f", "g")} <= {0, 1, 2}
    assert shard_of("anything", 1) == 0


def test_worker_processes_give_the_same_products_as_one_process(
    market: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    listings, _ = market
    serial = match_by_block(listings, scorer=RuleScorer(), workers=1, blocks_from=0)
    parallel = match_by_block(listings, scorer=RuleScorer(), workers=2, blocks_from=0)
    assert serial.stats["blocks"] >= 5
    assert parallel.product_matches.equals(serial.product_matches)
    assert parallel.pairs.equals(serial.pairs)
    assert serial.product_matches.height == listings.height


def test_each_block_matches_as_if_it_were_the_whole_catalogue(
    market: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    listings, _ = market
    records = _records(listings)
    block = records.with_columns(block=assign_blocks(records, from_listings=0)).filter(
        pl.col("block") == "smart tv"
    )
    one = listings.join(block.select("retailer", "sku"), on=["retailer", "sku"], how="semi")
    only = match_by_block(listings, scorer=RuleScorer(), blocks={"smart tv"}, workers=1)
    alone = match_listings(one, scorer=RuleScorer())
    assert set(only.product_matches["sku"]) == set(one["sku"])
    # the same pairs, up to the pruning limit being the whole catalogue's
    both = only.pairs.join(alone.pairs, on=["left_sku", "right_sku"], how="inner").height
    assert both >= 0.95 * max(alone.pairs.height, 1)
