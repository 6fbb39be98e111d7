"""Matching split into shards (Dagster partitions of product_matches) gives the same
products as one run over every block, on both engines, and never duplicates."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import polars as pl
from listings_table import load_listings

from arbx_dagster.domain.matching import RuleScorer
from arbx_dagster.domain.matching.training_pairs import simulated_listings
from arbx_dagster.pipeline.matching import refresh_matches
from arbx_dagster.storage.warehouse import Warehouse

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SORT = ["retailer", "sku"]


def _load_listings(warehouse: Warehouse, listings: pl.DataFrame) -> None:
    load_listings(warehouse, listings, NOW)


def _matches(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query("SELECT retailer, sku, canonical_id FROM product_matches").sort(SORT)


def test_shards_together_match_like_the_whole_catalogue(warehouse: Warehouse) -> None:
    listings, _ = simulated_listings(seed=307, n_products=120)
    _load_listings(warehouse, listings)
    # one shard holding every block: the block-wise matching the shards split between them
    refresh_matches(warehouse, now=NOW, scorer=RuleScorer(), workers=1, shard=(0, 1))
    whole = _matches(warehouse)
    pairs = warehouse.scalar("SELECT count(*) FROM match_pairs")
    products = warehouse.scalar("SELECT count(*) FROM canonical_products")

    warehouse.replace(
        "product_matches",
        pl.DataFrame(schema=warehouse.query("SELECT * FROM product_matches LIMIT 0").schema),
    )
    warehouse.execute("DELETE FROM match_pairs")
    warehouse.execute("DELETE FROM canonical_products")
    reports = [
        refresh_matches(warehouse, now=NOW, scorer=RuleScorer(), workers=1, shard=(k, 3))
        for k in range(3)
    ]
    assert sum(r.counts["listings_matched"] for r in reports) == listings.height
    assert all(r.counts["listings_matched"] < listings.height for r in reports)
    assert _matches(warehouse).equals(whole)
    assert warehouse.scalar("SELECT count(*) FROM match_pairs") == pairs
    assert warehouse.scalar("SELECT count(*) FROM canonical_products") == products

    # re-running a shard replaces its rows: nothing duplicated, ids carried over
    refresh_matches(warehouse, now=NOW, scorer=RuleScorer(), workers=1, shard=(1, 3))
    assert _matches(warehouse).equals(whole)
    assert warehouse.scalar("SELECT count(*) FROM match_pairs") == pairs


def test_delisted_listings_leave_the_match_tables_on_a_shard_run(warehouse: Warehouse) -> None:
    listings, _ = simulated_listings(seed=307, n_products=60)
    _load_listings(warehouse, listings)
    for k in range(2):
        refresh_matches(warehouse, now=NOW, scorer=RuleScorer(), workers=1, shard=(k, 2))
    gone = listings.sort(SORT).head(5)
    warehouse.delete_keys("listings", gone.select("retailer", "sku"))
    refresh_matches(warehouse, now=NOW, scorer=RuleScorer(), workers=1, shard=(0, 2))
    left = _matches(warehouse)
    assert left.height == listings.height - 5
    assert left.join(gone, on=SORT, how="semi").height == 0
    orphans = warehouse.scalar(
        "SELECT count(*) FROM canonical_products c WHERE NOT EXISTS "
        "(SELECT 1 FROM product_matches m WHERE m.canonical_id = c.canonical_id)"
    )
    assert orphans == 0


def test_match_shards_are_partitions_of_product_matches() -> None:
    code = (
        "import dagster as dg; from arbx_dagster.definitions import defs; "
        "spec = defs.resolve_asset_graph().get(dg.AssetKey('product_matches')); "
        "print(','.join(spec.partitions_def.get_partition_keys()))"
    )
    env = {**os.environ, "ARBX_MATCH_SHARDS": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "shard-0,shard-1,shard-2"
