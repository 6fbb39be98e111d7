"""Incremental matching: only what changed since the last match is matched again.

A full match scores every candidate pair of the catalogue, so the time from a new listing
to its opportunity would grow with the catalogue, not with the change. Most refreshes
change a few listings:

* a listing whose **identity** (``IDENTITY_COLUMNS``: what the matcher reads — title,
  brand, model codes, category) is unchanged since the last match keeps its product;
* new and changed listings, and the members left in a product that lost a delisted one,
  are the **seeds**;
* their **pool**: listings at other retailers of the same match block that could be their
  match — those sharing the most informative model codes and title words (``retrieval.py``;
  the catalogue's stop keys, recorded by the full match, keep it from reading every title);
* the **neighbourhood**: seeds, pool and every member of their products, matched again
  with the full matcher (blocking, scoring, assignment, settled labels), block by block,
  with the catalogue's size for the blocker's statistics.

A cluster of that match holding a seed replaces what it overlaps; a cluster without a seed
is dropped and its listings keep their products, so listings no change reached never move.
The last match's state is asked about only the listings and products a change reaches
(``StateReader``): in frames (``MatchState``) or, in the pipeline, from the warehouse.
Canonical ids carry over as in a full match (``clustering.carry_over_canonical_ids``). A
full match still runs daily and whenever the model changes; :func:`agreement` measures
how closely the incremental state follows it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from arbx_dagster.domain.matching.blocking import DEFAULT_NEIGHBOURS
from arbx_dagster.domain.matching.blocks import (
    BLOCK_MAP_SCHEMA,
    UNCATEGORIZED,
    WHOLE_CATALOGUE,
)
from arbx_dagster.domain.matching.clustering import (
    canonical_product_rows,
    carry_over_canonical_ids,
)
from arbx_dagster.domain.matching.engine import MatchResult, match_records, merge_results
from arbx_dagster.domain.matching.normalize import matching_records
from arbx_dagster.domain.matching.retrieval import (
    STOP_KEY_SCHEMA,
    candidate_pool,
    stop_keys,
)
from arbx_dagster.domain.matching.scoring import PairScorer
from arbx_dagster.domain.schema import (
    CANONICAL_PRODUCT_SCHEMA,
    LISTING_KEY_SCHEMA,
    MATCH_PAIR_SCHEMA,
    PRODUCT_MATCH_SCHEMA,
    conform,
    empty,
)

IDENTITY_COLUMNS = ("name", "name_norm", "brand", "model_code", "model_codes", "category")
# What finds a changed listing's candidates (``retrieval.candidate_pool``, match blocks).
POOL_COLUMNS = ("retailer", "sku", "name_norm", "model_codes", "category")
IDENTITY_SCHEMA: dict[str, pl.DataType] = {
    "retailer": pl.String(),
    "sku": pl.String(),
    "identity": pl.Int64(),
}
KEY = ["retailer", "sku"]
# The two listings' keys of a matched pair (``MATCH_PAIR_SCHEMA``), left then right.
PAIR_SIDES = (["left_retailer", "left_sku"], ["right_retailer", "right_sku"])


def listing_identities(listings: pl.DataFrame) -> pl.DataFrame:
    """``retailer, sku, identity``: a hash of what the matcher reads of each listing."""
    present = [c for c in IDENTITY_COLUMNS if c in listings.columns]
    text = pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("") for c in present], separator="\x1f"
    )
    return listings.select(*KEY, identity=text.hash().reinterpret(signed=True))


class StateReader(Protocol):
    """What an incremental match reads of the last match's state: the rows of the listings
    and products a change reaches, never the whole catalogue's (``MatchState`` holds the
    state in frames; the pipeline reads it from the warehouse, a few rows at a time)."""

    @property
    def blocks(self) -> pl.DataFrame: ...  # BLOCK_MAP_SCHEMA

    @property
    def stop_keys(self) -> pl.DataFrame: ...  # STOP_KEY_SCHEMA

    def delisted(self, current: pl.DataFrame) -> pl.DataFrame:
        """Keys the last match matched that are not among ``current`` (the current keys)."""
        ...

    def changed(self, listings: pl.DataFrame) -> pl.DataFrame:
        """Keys of the current ``listings`` the last match did not see as they are now (new,
        or their ``IDENTITY_COLUMNS`` changed)."""
        ...

    def matches_of(self, keys: pl.DataFrame) -> pl.DataFrame:
        """The product-match rows (``PRODUCT_MATCH_SCHEMA``) of ``keys``."""
        ...

    def members_of(self, keys: pl.DataFrame) -> pl.DataFrame:
        """Keys of every listing in the products ``keys`` belong to."""
        ...

    def pairs_touching(self, keys: pl.DataFrame) -> pl.DataFrame:
        """The matched pairs (``MATCH_PAIR_SCHEMA``) with either side among ``keys``."""
        ...

    def ids_held_outside(self, ids: pl.Series, keys: pl.DataFrame) -> pl.Series:
        """The canonical ids among ``ids`` that a listing not among ``keys`` holds."""
        ...


@dataclass(frozen=True)
class MatchState:
    """What the last match left, in frames: every listing's product and identity, the
    matched pairs, the match block of every category and the catalogue's stop keys
    (``retrieval.py``; none recorded: the pool reads every title). A ``StateReader``."""

    product_matches: pl.DataFrame  # PRODUCT_MATCH_SCHEMA
    pairs: pl.DataFrame  # MATCH_PAIR_SCHEMA
    identities: pl.DataFrame  # IDENTITY_SCHEMA
    blocks: pl.DataFrame = field(default_factory=lambda: empty(BLOCK_MAP_SCHEMA))
    stop_keys: pl.DataFrame = field(default_factory=lambda: empty(STOP_KEY_SCHEMA))

    @classmethod
    def after(cls, result: MatchResult, listings: pl.DataFrame) -> MatchState:
        """The state a full match of ``listings`` leaves."""
        return cls(
            result.product_matches,
            result.pairs,
            listing_identities(listings),
            result.blocks,
            stop_keys(listings),
        )

    def delisted(self, current: pl.DataFrame) -> pl.DataFrame:
        return self.product_matches.select(KEY).join(current.select(KEY), on=KEY, how="anti")

    def changed(self, listings: pl.DataFrame) -> pl.DataFrame:
        current = listing_identities(listings)
        return current.join(self.identities, on=[*KEY, "identity"], how="anti").select(KEY)

    def matches_of(self, keys: pl.DataFrame) -> pl.DataFrame:
        return self.product_matches.join(keys.select(KEY), on=KEY, how="semi")

    def members_of(self, keys: pl.DataFrame) -> pl.DataFrame:
        products = self.matches_of(keys).select("canonical_id").unique()
        return self.product_matches.join(products, on="canonical_id", how="semi").select(KEY)

    def pairs_touching(self, keys: pl.DataFrame) -> pl.DataFrame:
        touching = [
            self.pairs.join(keys.select(KEY).rename(dict(zip(KEY, side, strict=True))), on=side)
            for side in PAIR_SIDES
        ]
        return pl.concat(touching).unique(maintain_order=True)

    def ids_held_outside(self, ids: pl.Series, keys: pl.DataFrame) -> pl.Series:
        holders = self.product_matches.filter(pl.col("canonical_id").is_in(ids.implode()))
        return holders.join(keys.select(KEY), on=KEY, how="anti")["canonical_id"].unique()


@dataclass(frozen=True)
class IncrementalMatch:
    """Rows that replace the neighbourhood's (and the delisted listings') in the state.

    ``replaced``: keys whose product-match, pair and identity rows are replaced;
    ``retired``: canonical ids those listings had (their product rows are replaced by
    ``canonical_products``); ``touched``: canonical ids whose members changed or that are
    gone (what downstream stages recompute).
    """

    product_matches: pl.DataFrame
    pairs: pl.DataFrame
    canonical_products: pl.DataFrame
    identities: pl.DataFrame
    replaced: pl.DataFrame
    retired: list[str]
    touched: list[str]
    stats: dict[str, float]

    def apply(self, state: MatchState) -> MatchState:
        """``state`` with these rows in place of the replaced ones (what a warehouse does)."""
        left = {"retailer": "left_retailer", "sku": "left_sku"}
        right = {"retailer": "right_retailer", "sku": "right_sku"}
        pairs = state.pairs.join(self.replaced.rename(left), on=list(left.values()), how="anti")
        pairs = pairs.join(self.replaced.rename(right), on=list(right.values()), how="anti")
        return MatchState(
            pl.concat(
                [
                    state.product_matches.join(self.replaced, on=KEY, how="anti"),
                    self.product_matches,
                ]
            ).sort(KEY),
            pl.concat([pairs, self.pairs]),
            pl.concat([state.identities.join(self.replaced, on=KEY, how="anti"), self.identities]),
            state.blocks,
            state.stop_keys,
        )


def match_changes(
    listings: pl.DataFrame,
    state: StateReader,
    *,
    scorer: PairScorer | None = None,
    k: int = DEFAULT_NEIGHBOURS,
    threads: int | None = None,
    decisions: pl.DataFrame | None = None,
    also: pl.DataFrame | None = None,
    changed: pl.DataFrame | None = None,
    rows_of: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
) -> IncrementalMatch:
    """Match the listings that changed since ``state`` (module docstring).

    ``listings``: every current listing (``LISTING_SCHEMA``; or, when ``rows_of`` gives
    the whole rows of the keys it is passed and ``state`` tells the changed ones itself,
    only the key and what finds candidates: ``POOL_COLUMNS`` — a million listings'
    prices, URLs and the rest need not be read to match a few); ``state``: the last
    match's (a ``MatchState``, or any ``StateReader``: only the rows the change reaches
    are read); ``decisions``: pairs people labelled, settled inside the neighbourhood as
    in a full match; ``also``: keys of listings to match again whatever their identity
    (e.g. both sides of a new label); ``changed``: ``state.changed(listings)`` when the
    caller already has it.
    """
    started = time.perf_counter()
    current = listings.select(KEY)
    delisted = state.delisted(current)
    changed = state.changed(listings) if changed is None else changed
    seeds = _seeds(current, changed, state.members_of(delisted), also)
    blocked = _with_blocks(listings, state.blocks)
    # A catalogue without a stop key is small: reading every title costs little.
    stop = state.stop_keys if state.stop_keys.height else None
    pool = candidate_pool(blocked, seeds, stop)
    around = pl.concat([seeds, pool]).unique()
    neighbourhood = (
        pl.concat([around, state.members_of(around)]).unique().join(delisted, on=KEY, how="anti")
    )
    found_at = time.perf_counter()
    around_rows = blocked.join(neighbourhood, on=KEY, how="semi")
    if rows_of is not None:
        around_rows = rows_of(neighbourhood).join(around_rows.select(*KEY, "block"), on=KEY)
    result = _match_blocks(
        around_rows,
        scorer=scorer,
        k=k,
        threads=threads,
        catalogue_size=listings.height,
        decisions=decisions,
    )
    matched_at = time.perf_counter()
    replaced = pl.concat([neighbourhood, delisted]).unique()
    before = state.matches_of(replaced)
    previous = before.join(neighbourhood, on=KEY, how="semi")
    spliced = _splice(result, previous, seeds, state)
    products = _product_rows(spliced, around_rows)
    touched = _touched(before, spliced)
    pairs = _pairs(result, spliced, seeds, state.pairs_touching(neighbourhood))
    return IncrementalMatch(
        product_matches=conform(spliced.sort(KEY), PRODUCT_MATCH_SCHEMA),
        pairs=conform(pairs, MATCH_PAIR_SCHEMA),
        canonical_products=conform(products, CANONICAL_PRODUCT_SCHEMA),
        identities=listing_identities(around_rows.drop("block")),
        replaced=replaced.sort(KEY),
        retired=sorted(before["canonical_id"].unique().to_list()),
        touched=touched,
        stats={
            "seeds": float(seeds.height),
            "delisted": float(delisted.height),
            "pool": float(pool.height),
            "neighbourhood": float(neighbourhood.height),
            "touched_products": float(len(touched)),
            "candidates": float(result.stats.get("candidates", 0.0)),
            "seconds_neighbourhood": found_at - started,
            "seconds_match": matched_at - found_at,
            "seconds_total": time.perf_counter() - started,
        },
    )


def _seeds(
    current: pl.DataFrame,
    changed: pl.DataFrame,
    orphaned: pl.DataFrame,
    also: pl.DataFrame | None,
) -> pl.DataFrame:
    """New and changed listings, those left in a product that lost a delisted one
    (``orphaned``), and those asked for: the current ones among them."""
    seeds = pl.concat(
        [
            changed.select(KEY),
            orphaned.select(KEY),
            pl.DataFrame(schema=LISTING_KEY_SCHEMA) if also is None else also.select(KEY),
        ]
    ).unique()
    return seeds.join(current, on=KEY, how="semi")


def _with_blocks(listings: pl.DataFrame, blocks: pl.DataFrame) -> pl.DataFrame:
    """Listings with the ``block`` the last full match put their category in; a category it
    never saw is a block of its own until the next full match."""
    if blocks.height == 0 or (blocks["block"] == WHOLE_CATALOGUE).all():
        return listings.with_columns(block=pl.lit(WHOLE_CATALOGUE))
    category = pl.col("category").fill_null(UNCATEGORIZED)
    return (
        listings.with_columns(_category=category)
        .join(blocks.rename({"category": "_category"}), on="_category", how="left")
        .with_columns(block=pl.coalesce("block", pl.lit("new:") + pl.col("_category")))
        .drop("_category")
    )


def _match_blocks(
    listings: pl.DataFrame,
    *,
    scorer: PairScorer | None,
    k: int,
    threads: int | None,
    catalogue_size: int,
    decisions: pl.DataFrame | None,
) -> MatchResult:
    """The full matcher on ``listings`` (with ``block``), block by block."""
    results = []
    for _, part in listings.sort(*KEY).group_by("block", maintain_order=True):
        records = matching_records(part.drop("block"))
        results.append(
            match_records(
                records,
                scorer=scorer,
                k=k,
                threads=threads,
                catalogue_size=catalogue_size,
                keep_candidates=False,
                decisions=decisions,
            )
        )
    return merge_results(results)


def _splice(
    result: MatchResult, previous: pl.DataFrame, seeds: pl.DataFrame, state: StateReader
) -> pl.DataFrame:
    """The neighbourhood's product matches: clusters holding a seed as the match found them,
    every other listing in its previous product; canonical ids carried over."""
    new = result.product_matches
    seeded = new.join(seeds, on=KEY, how="semi").select("canonical_id").unique()
    moved = new.join(seeded, on="canonical_id", how="semi")
    stayed = previous.join(moved.select(KEY), on=KEY, how="anti")
    columns = list(PRODUCT_MATCH_SCHEMA)
    groups = pl.concat([moved.select(columns), stayed.select(columns)])
    # A listing left alone in its product has no partner to be confident about.
    groups = groups.with_columns(
        match_probability=pl.when(pl.len().over("canonical_id") == 1)
        .then(1.0)
        .otherwise(pl.col("match_probability"))
    )
    spliced = carry_over_canonical_ids(previous, groups)
    inside = previous.select(KEY)
    return _unique_ids(spliced, lambda ids: state.ids_held_outside(ids, inside))


def _unique_ids(
    matches: pl.DataFrame, held_outside: Callable[[pl.Series], pl.Series]
) -> pl.DataFrame:
    """``matches`` with any canonical id that a product outside them holds re-hashed;
    ``held_outside(ids)``: those of ``ids`` a listing outside ``matches`` holds."""
    ids = matches["canonical_id"].unique()
    clashing = set(held_outside(ids).to_list())
    taken = clashing | set(ids.to_list())
    renamed: dict[str, str] = {}
    salt = 0
    while clashing:  # rare: a product split, its other part outside the change
        for old in sorted(clashing):
            new = renamed.get(old, old)
            while new in taken:
                salt += 1
                new = "cp_" + hashlib.sha1(f"{old}#{salt}".encode()).hexdigest()[:20]
            renamed[old] = new
            taken.add(new)
        fresh = pl.Series(list(renamed.values()), dtype=pl.String)
        held = set(held_outside(fresh).to_list())
        clashing = {old for old, new in renamed.items() if new in held}
        taken |= held
    if not renamed:
        return matches
    return matches.with_columns(pl.col("canonical_id").replace(renamed))


def _product_rows(spliced: pl.DataFrame, listings: pl.DataFrame) -> pl.DataFrame:
    members = spliced.join(listings.select(*KEY, "name", "brand", "model_code", "category"), on=KEY)
    return canonical_product_rows(members)


def _signatures(matches: pl.DataFrame) -> pl.DataFrame:
    """``canonical_id, members``: each product's sorted member keys, as one string."""
    return matches.group_by("canonical_id").agg(
        members=(pl.col("retailer") + ":" + pl.col("sku")).sort().str.join("\n")
    )


def _touched(before: pl.DataFrame, after: pl.DataFrame) -> list[str]:
    """Canonical ids whose members differ between ``before`` and ``after`` (or that exist in
    only one of them)."""
    old, new = _signatures(before), _signatures(after)
    same = old.join(new, on=["canonical_id", "members"], how="inner")["canonical_id"]
    ids = set(old["canonical_id"].to_list()) | set(new["canonical_id"].to_list())
    return sorted(ids - set(same.to_list()))


def _pairs(
    result: MatchResult, spliced: pl.DataFrame, seeds: pl.DataFrame, previous_pairs: pl.DataFrame
) -> pl.DataFrame:
    """Pairs within the neighbourhood's products: the match's own inside products that hold
    a seed, the previous ones inside the others."""
    product = spliced.select(*KEY, "canonical_id")
    seeded = product.join(seeds, on=KEY, how="semi").select("canonical_id").unique()

    def inside(pairs: pl.DataFrame) -> pl.DataFrame:
        return (
            pairs.join(
                product.rename({"retailer": "left_retailer", "sku": "left_sku"}),
                on=["left_retailer", "left_sku"],
            )
            .join(
                product.rename(
                    {"retailer": "right_retailer", "sku": "right_sku", "canonical_id": "right_id"}
                ),
                on=["right_retailer", "right_sku"],
            )
            .filter(pl.col("canonical_id") == pl.col("right_id"))
        )

    fresh = inside(result.pairs).join(seeded, on="canonical_id", how="semi")
    kept = inside(previous_pairs).join(seeded, on="canonical_id", how="anti")
    columns = list(MATCH_PAIR_SCHEMA)
    return pl.concat([fresh.select(columns), kept.select(columns)]).sort(columns[:4])


def agreement(incremental: pl.DataFrame, full: pl.DataFrame) -> float:
    """Share of listings whose product has the same members in both product matches (ids
    aside): 1.0 when the incremental state is what a full match would have found."""

    def by_listing(matches: pl.DataFrame) -> pl.DataFrame:
        return matches.select(*KEY, "canonical_id").join(_signatures(matches), on="canonical_id")

    joined = by_listing(full).join(by_listing(incremental), on=KEY, how="left", suffix="_inc")
    if joined.height == 0:
        return 1.0
    return float((joined["members"] == joined["members_inc"]).fill_null(False).mean())


__all__ = [
    "IDENTITY_COLUMNS",
    "IDENTITY_SCHEMA",
    "PAIR_SIDES",
    "POOL_COLUMNS",
    "IncrementalMatch",
    "MatchState",
    "StateReader",
    "agreement",
    "listing_identities",
    "match_changes",
]
