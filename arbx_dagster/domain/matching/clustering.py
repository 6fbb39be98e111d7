"""From scored pairs to canonical products.

Guarantees:

* at most one listing per retailer in a canonical product;
* between any two retailers the accepted pairs are one-to-one: each listing keeps its
  best partner at each other retailer, chosen greedily by probability (implemented as
  rounds of mutual-best selection, each a vectorised Polars step; the rounds reproduce
  the greedy result without a Python loop over pairs);
* clusters spanning three or more retailers are consistent under transitivity: they are
  the connected components of the accepted pairs; a component that would hold two
  listings of one retailer, or two listings scored as a clear non-match, is split by
  greedy union-find (only those components, so the Python loop stays small);
* ``canonical_id`` is a hash of the sorted member keys, stable across re-runs.
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from arbx_dagster.domain.schema import (
    CANONICAL_PRODUCT_SCHEMA,
    MATCH_PAIR_SCHEMA,
    PRODUCT_MATCH_SCHEMA,
    conform,
)

# A scored pair below this probability is a "cannot link": transitivity may not join it.
CANNOT_LINK = 0.05


def one_to_one(
    scored: pl.DataFrame, records: pl.DataFrame, *, max_rounds: int = 50
) -> pl.DataFrame:
    """Greedy one-to-one selection per retailer pair over ``i, j, probability`` rows.

    Each round keeps the edges that are the best remaining for both endpoints (best of
    ``i`` among ``j``'s retailer, best of ``j`` among ``i``'s retailer), then drops every
    edge touching a listing that got a partner at that retailer. Ties break on ``(i, j)``.
    """
    retailer = records.select("idx", "retailer")
    edges = (
        scored.join(retailer.rename({"idx": "i", "retailer": "ri"}), on="i")
        .join(retailer.rename({"idx": "j", "retailer": "rj"}), on="j")
        .sort(["probability", "i", "j"], descending=[True, False, False])
        .with_row_index("order")
    )
    chosen = []
    for _ in range(max_rounds):
        if edges.height == 0:
            break
        first_i = pl.col("order").min().over("i", "rj")
        first_j = pl.col("order").min().over("j", "ri")
        mutual = edges.filter((pl.col("order") == first_i) & (pl.col("order") == first_j))
        if mutual.height == 0:  # cannot happen (the global best is always mutual)
            break
        chosen.append(mutual)
        taken_i = mutual.select("i", "rj")
        taken_j = mutual.select("j", "ri")
        edges = edges.join(taken_i, on=["i", "rj"], how="anti").join(
            taken_j, on=["j", "ri"], how="anti"
        )
    else:
        # Out of rounds: fall back to a plain greedy pass over what is left.
        chosen.append(_greedy_rest(edges))
    if not chosen:
        return scored.head(0)
    return pl.concat(chosen).select("i", "j", "probability")


def _greedy_rest(edges: pl.DataFrame) -> pl.DataFrame:
    taken: set[tuple[int, str]] = set()
    keep = []
    for row in edges.sort("order").iter_rows(named=True):
        a, b = (row["i"], row["rj"]), (row["j"], row["ri"])
        if a in taken or b in taken:
            continue
        taken.update((a, b))
        keep.append(row)
    return pl.DataFrame(keep, schema=edges.schema) if keep else edges.head(0)


class _UnionFind:
    """Union-find that refuses merges creating two listings of one retailer."""

    def __init__(self, nodes: list[int], retailer: dict[int, str]) -> None:
        self.parent = {n: n for n in nodes}
        self.retailers = {n: {retailer[n]} for n in nodes}
        self.members = {n: {n} for n in nodes}

    def find(self, n: int) -> int:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def union(self, a: int, b: int, cannot: set[tuple[int, int]]) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb or self.retailers[ra] & self.retailers[rb]:
            return False
        if any(
            (x, y) in cannot or (y, x) in cannot for x in self.members[ra] for y in self.members[rb]
        ):
            return False
        self.parent[rb] = ra
        self.retailers[ra] |= self.retailers.pop(rb)
        self.members[ra] |= self.members.pop(rb)
        return True


def cluster(
    edges: pl.DataFrame, scored: pl.DataFrame, records: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Group listings into clusters from accepted one-to-one ``edges``.

    Returns ``(membership, kept_edges)``: ``membership`` has ``idx, cluster`` for every
    listing (singletons included, cluster = smallest member idx) and ``kept_edges`` the
    accepted edges that ended up inside a cluster.
    """
    n = records.height
    i, j = edges["i"].to_numpy(), edges["j"].to_numpy()
    graph = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    membership = pl.DataFrame(
        {"idx": np.arange(n, dtype=np.int64), "comp": labels.astype(np.int64)}
    )
    membership = membership.join(records.select("idx", "retailer"), on="idx")
    dup_retailer = (
        membership.group_by("comp", "retailer").len().filter(pl.col("len") > 1).select("comp")
    )
    cannot = scored.filter(pl.col("probability") < CANNOT_LINK).select("i", "j")
    comp_of = membership.select("idx", "comp")
    cannot_inside = (
        cannot.join(comp_of.rename({"idx": "i", "comp": "ci"}), on="i")
        .join(comp_of.rename({"idx": "j", "comp": "cj"}), on="j")
        .filter(pl.col("ci") == pl.col("cj"))
        .select(pl.col("ci").alias("comp"))
    )
    bad = pl.concat([dup_retailer, cannot_inside]).unique()
    relabel: dict[int, int] = {}
    if bad.height:
        bad_nodes = membership.join(bad, on="comp", how="semi")
        retailer = dict(
            zip(bad_nodes["idx"].to_list(), bad_nodes["retailer"].to_list(), strict=True)
        )
        uf = _UnionFind(list(retailer), retailer)
        node_set = set(retailer)
        cannot_set = {(a, b) for a, b in cannot.iter_rows() if a in node_set and b in node_set}
        bad_edges = edges.filter(pl.col("i").is_in(list(node_set))).sort(
            ["probability", "i", "j"], descending=[True, False, False]
        )
        for a, b in bad_edges.select("i", "j").iter_rows():
            uf.union(a, b, cannot_set)
        relabel = {node: uf.find(node) for node in node_set}
    comp = membership.with_columns(
        cluster=pl.when(pl.col("idx").is_in(list(relabel)))
        .then(pl.col("idx").replace_strict(relabel, default=None, return_dtype=pl.Int64) + n)
        .otherwise(pl.col("comp"))
    )
    # Canonical numbering: the smallest member idx names the cluster.
    comp = comp.with_columns(cluster=pl.col("idx").min().over("cluster")).select("idx", "cluster")
    kept = (
        edges.join(comp.rename({"idx": "i", "cluster": "ci"}), on="i")
        .join(comp.rename({"idx": "j", "cluster": "cj"}), on="j")
        .filter(pl.col("ci") == pl.col("cj"))
        .select("i", "j", "probability")
    )
    return comp, kept


def canonical_ids(members: pl.DataFrame) -> pl.DataFrame:
    """``cluster -> canonical_id``: sha1 of the sorted ``retailer:sku`` member keys.

    Polars' own hash is not stable across versions, so the digest is computed with
    hashlib, once per cluster (not per listing) over the joined member keys.
    """
    keys = (
        members.select("cluster", (pl.col("retailer") + ":" + pl.col("sku")).alias("key"))
        .group_by("cluster")
        .agg(pl.col("key").sort().str.join("\n").alias("joined"))
    )
    ids = [
        "cp_" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]
        for text in keys["joined"].to_list()
    ]
    return keys.select("cluster").with_columns(canonical_id=pl.Series(ids, dtype=pl.String))


def build_outputs(
    records: pl.DataFrame,
    membership: pl.DataFrame,
    kept: pl.DataFrame,
    scored: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(pairs, product_matches, canonical_products)`` in the schema contracts.

    * pairs: every cross-retailer pair inside a cluster (so they are closed under
      transitivity); probability = the pair's own score when it was scored, else the
      weaker of the two listings' match probabilities (joined only through a third);
    * match_probability: the listing's best kept edge; 1.0 for singletons, which are
      trivially their own product (they never form cross-retailer opportunities);
    * canonical title / model / brand / category: from the member with the best match
      probability and longest title, and the most frequent non-null values.
    """
    members = _members(records, membership, kept)
    product_matches = conform(members.sort("idx"), PRODUCT_MATCH_SCHEMA)
    canonical_products = conform(canonical_product_rows(members), CANONICAL_PRODUCT_SCHEMA)
    pairs = conform(_pairs_within_clusters(members, scored), MATCH_PAIR_SCHEMA)
    return pairs, product_matches, canonical_products


def _members(records: pl.DataFrame, membership: pl.DataFrame, kept: pl.DataFrame) -> pl.DataFrame:
    """Every listing with its ``cluster``, ``canonical_id`` and ``match_probability`` (its
    best kept edge, 1.0 for singletons)."""
    best_edge = (
        pl.concat(
            [
                kept.select(pl.col("i").alias("idx"), "probability"),
                kept.select(pl.col("j").alias("idx"), "probability"),
            ]
        )
        .group_by("idx")
        .agg(pl.col("probability").max().alias("match_probability"))
    )
    members = (
        records.select("idx", "retailer", "sku", "name", "brand", "model_code", "category")
        .join(membership, on="idx")
        .join(best_edge, on="idx", how="left")
        .with_columns(pl.col("match_probability").fill_null(1.0))
    )
    return members.join(canonical_ids(members), on="cluster")


def _most_frequent(members: pl.DataFrame, col: str) -> pl.DataFrame:
    """Most frequent non-null value per product (ties: longest, then smallest)."""
    return (
        members.drop_nulls(col)
        .group_by("canonical_id", col)
        .len()
        .sort(
            ["canonical_id", "len", pl.col(col).str.len_chars(), col],
            descending=[False, True, True, False],
        )
        .unique("canonical_id", keep="first")
        .select("canonical_id", col)
    )


def canonical_product_rows(members: pl.DataFrame) -> pl.DataFrame:
    """One row per canonical product: the title of the member with the best match
    probability and longest title, counts, and the most frequent brand, model, category."""
    canon = (
        members.sort(
            ["match_probability", pl.col("name").str.len_chars(), "retailer", "sku"],
            descending=[True, True, False, False],
            nulls_last=True,
        )
        .group_by("canonical_id", maintain_order=True)
        .agg(
            pl.col("name").first().alias("title"),
            pl.len().cast(pl.Int32).alias("n_listings"),
            pl.col("retailer").n_unique().cast(pl.Int32).alias("n_retailers"),
        )
    )
    for col in ("brand", "model_code", "category"):
        canon = canon.join(_most_frequent(members, col), on="canonical_id", how="left")
    return canon.sort("canonical_id")


def _pairs_within_clusters(members: pl.DataFrame, scored: pl.DataFrame) -> pl.DataFrame:
    """Every cross-retailer pair of listings in one cluster, keyed by retailer and sku,
    with its own score or, unscored, the weaker of the two match probabilities."""
    multi = members.filter(pl.len().over("cluster") > 1).select(
        "idx", "retailer", "sku", "cluster", "match_probability"
    )
    all_pairs = (
        multi.join(multi, on="cluster", suffix="_r")
        .filter(pl.col("retailer") < pl.col("retailer_r"))
        .rename({"idx": "i", "idx_r": "j"})
    )
    both = pl.concat(
        [
            scored.select("i", "j", "probability"),
            scored.select(pl.col("j").alias("i"), pl.col("i").alias("j"), "probability"),
        ]
    ).unique(["i", "j"], keep="first")
    all_pairs = all_pairs.join(both, on=["i", "j"], how="left").with_columns(
        probability=pl.coalesce(
            "probability", pl.min_horizontal("match_probability", "match_probability_r")
        )
    )
    return all_pairs.select(
        pl.col("retailer").alias("left_retailer"),
        pl.col("sku").alias("left_sku"),
        pl.col("retailer_r").alias("right_retailer"),
        pl.col("sku_r").alias("right_sku"),
        "probability",
    ).sort("left_retailer", "left_sku", "right_retailer", "right_sku")


def carry_over_canonical_ids(previous: pl.DataFrame, current: pl.DataFrame) -> pl.DataFrame:
    """``current`` product matches with canonical ids carried over from ``previous``.

    Opportunities and reports reference canonical ids across runs, so a product must keep
    its id while its membership drifts (a listing joins, one is delisted). The rule, for
    each current cluster C and each previous cluster P it overlaps:

    * only P's members still present in ``current`` count (delisted listings do not vote);
    * C takes P's id when the overlap is a strict majority of P's surviving members and
      at least half of C's members (so at most one current cluster can claim each P);
    * when two P qualify (C merged two halves), the larger overlap wins, then the smaller
      id, so the result does not depend on row order;
    * otherwise C keeps its freshly computed id (a hash of its members); should that
      equal an id carried by another cluster, it is re-hashed with a suffix.

    Both frames follow ``PRODUCT_MATCH_SCHEMA``; rows and row order of ``current`` are kept.
    """
    cur = current.select("retailer", "sku", pl.col("canonical_id").alias("cur_id"))
    prev = previous.select("retailer", "sku", pl.col("canonical_id").alias("prev_id"))
    alive = prev.join(cur, on=["retailer", "sku"], how="inner")
    if alive.height == 0:
        return current
    p_size = alive.group_by("prev_id").len("p_size")
    c_size = cur.group_by("cur_id").len("c_size")
    chosen = (
        alive.group_by("cur_id", "prev_id")
        .len("overlap")
        .join(p_size, on="prev_id")
        .join(c_size, on="cur_id")
        .filter(
            (pl.col("overlap") * 2 > pl.col("p_size")) & (pl.col("overlap") * 2 >= pl.col("c_size"))
        )
        .sort(["cur_id", "overlap", "prev_id"], descending=[False, True, False])
        .unique("cur_id", keep="first")
        .select("cur_id", "prev_id")
    )
    carried = set(chosen["prev_id"].to_list())
    fresh = sorted(set(cur["cur_id"].unique().to_list()) - set(chosen["cur_id"].to_list()))
    renamed: dict[str, str] = {}
    for old in fresh:
        new, salt = old, 0
        while new in carried:
            salt += 1
            digest = hashlib.sha1(f"{old}#{salt}".encode()).hexdigest()[:20]
            new = "cp_" + digest
        renamed[old] = new
    mapping = pl.concat(
        [
            chosen.rename({"prev_id": "new_id"}),
            pl.DataFrame(
                {"cur_id": list(renamed), "new_id": list(renamed.values())},
                schema={"cur_id": pl.String, "new_id": pl.String},
            ),
        ]
    )
    return (
        current.with_columns(pl.col("canonical_id").alias("cur_id"))
        .join(mapping, on="cur_id", how="left", maintain_order="left")
        .with_columns(pl.coalesce("new_id", "cur_id").alias("canonical_id"))
        .select(current.columns)
    )
