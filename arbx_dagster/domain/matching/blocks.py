"""Match blocks: groups of categories that never share a product with another group.

Each store names its categories its own way ('smart tv', 'televisores', 'televisores
led'), so the category string alone cannot split the matching work. Listings that share a
model code across stores reveal which names mean the same shelf: two categories are one
block when at least ``min_share`` of the smaller one's listings share a code key with the
other (a few incidental shared codes, e.g. a generation marker, do not merge shelves).
Blocks are the connected components of that graph.

Blocks are independent units of work: matching each on its own gives every listing the
same candidates it would meet inside the whole catalogue (minus other shelves' noise),
so they can run in parallel processes or as separate Dagster partitions. A listing
without a category forms, with the others like it, a block of its own.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from arbx_dagster.domain.matching.blocking import code_key_pairs

# Two categories are one block when this share of the smaller one's listings shares a
# code key with the other. Chosen on simulated markets (the shelves of one product type
# link at 80-140 %, unrelated shelves at under 5 %); abt_buy has no categories.
DEFAULT_MIN_SHARE = 0.2
UNCATEGORIZED = ""
# Below this many listings the catalogue is one block. Shelf-local statistics (word and
# code rarity, a listing's rank among its candidates) get thin on small shelves: on a
# simulated market of 480 listings, matching per shelf found 88 % of the true pairs
# against 94 % for the whole catalogue, while at 100k listings both find 95-96 %. Large
# catalogues are where blocks pay (parallel workers, partitions), small ones need no split.
BLOCKS_FROM_LISTINGS = 40_000
WHOLE_CATALOGUE = "*"
BLOCK_MAP_SCHEMA: dict[str, pl.DataType] = {"category": pl.String(), "block": pl.String()}


def category_blocks(records: pl.DataFrame, *, min_share: float = DEFAULT_MIN_SHARE) -> pl.DataFrame:
    """``category -> block`` for every category of ``records`` (null category: ``""``).

    ``records`` are matcher records (``matching_records``: ``idx``, ``retailer``,
    ``category``, ``codes``, ``stems``). ``block`` names the component by its
    alphabetically first category, so the name is stable while the shelves stay linked.
    """
    category = records.select("idx", pl.col("category").fill_null(UNCATEGORIZED))
    sizes = category.group_by("category").len("n")
    names = sizes["category"].sort().to_list()
    if not names:
        return pl.DataFrame(schema={"category": pl.String, "block": pl.String})
    position = {name: k for k, name in enumerate(names)}
    pairs = code_key_pairs(records)
    sides = pairs.join(category.rename({"idx": "i", "category": "ci"}), on="i").join(
        category.rename({"idx": "j", "category": "cj"}), on="j"
    )
    # listings of each category that share a code with the other category, both ways
    linked = (
        pl.concat(
            [
                sides.select(
                    pl.col("i").alias("idx"), pl.col("ci").alias("a"), pl.col("cj").alias("b")
                ),
                sides.select(
                    pl.col("j").alias("idx"), pl.col("cj").alias("a"), pl.col("ci").alias("b")
                ),
            ]
        )
        .filter((pl.col("a") != pl.col("b")) & (pl.col("a") != UNCATEGORIZED))
        .filter(pl.col("b") != UNCATEGORIZED)
        .group_by("a", "b")
        .agg(pl.col("idx").n_unique().alias("linked"))
        .join(sizes.rename({"category": "a", "n": "n_a"}), on="a")
        .join(sizes.rename({"category": "b", "n": "n_b"}), on="b")
    )
    # the smaller shelf decides: its share of listings with a code at the other shelf
    strong = linked.filter(
        (pl.col("n_a") <= pl.col("n_b")) & (pl.col("linked") >= min_share * pl.col("n_a"))
    )
    a = np.array([position[x] for x in strong["a"].to_list()], dtype=np.int64)
    b = np.array([position[x] for x in strong["b"].to_list()], dtype=np.int64)
    graph = sp.coo_matrix((np.ones(len(a)), (a, b)), shape=(len(names), len(names)))
    _, component = connected_components(graph, directed=False)
    frame = pl.DataFrame({"category": names, "component": component.astype(np.int64)})
    return frame.with_columns(block=pl.col("category").min().over("component")).select(
        "category", "block"
    )


def assign_blocks(
    records: pl.DataFrame,
    *,
    min_share: float = DEFAULT_MIN_SHARE,
    from_listings: int = BLOCKS_FROM_LISTINGS,
) -> pl.Series:
    """The block of every record, in the order of ``records``: one block named
    ``WHOLE_CATALOGUE`` for catalogues under ``from_listings`` listings."""
    if records.height < from_listings:
        return pl.Series("block", [WHOLE_CATALOGUE] * records.height, dtype=pl.String)
    blocks = category_blocks(records, min_share=min_share)
    return (
        records.select(pl.col("category").fill_null(UNCATEGORIZED))
        .join(blocks, on="category", how="left", maintain_order="left")["block"]
        .alias("block")
    )


def shard_of(block: str, shards: int) -> int:
    """Stable shard (0 .. shards-1) of a block name, the same in every process and run."""
    digest = hashlib.sha1(block.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % max(shards, 1)
