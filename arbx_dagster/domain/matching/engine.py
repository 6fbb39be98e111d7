"""The matcher end to end: records -> candidates -> features -> scores -> products.

``match_listings`` matches one catalogue in one go; ``match_by_block`` splits it into
independent match blocks (``blocks``) and matches them in parallel worker processes (or
only some of them, for a Dagster partition), with the same result per block.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import polars as pl

from arbx_dagster.domain.matching.blocking import DEFAULT_NEIGHBOURS, candidate_pairs, keyed_pairs
from arbx_dagster.domain.matching.blocks import (
    BLOCK_MAP_SCHEMA,
    BLOCKS_FROM_LISTINGS,
    UNCATEGORIZED,
    assign_blocks,
    shard_of,
)
from arbx_dagster.domain.matching.clustering import (
    build_outputs,
    carry_over_canonical_ids,
    cluster,
    one_to_one,
)
from arbx_dagster.domain.matching.features import PairFeaturizer
from arbx_dagster.domain.matching.normalize import matching_records
from arbx_dagster.domain.matching.scoring import PairScorer, RuleScorer, score_pairs
from arbx_dagster.domain.matching.vectorize import text_vectors
from arbx_dagster.domain.schema import (
    CANONICAL_PRODUCT_SCHEMA,
    MATCH_PAIR_SCHEMA,
    PRODUCT_MATCH_SCHEMA,
    empty,
)

CANDIDATE_SCHEMA: dict[str, pl.DataType] = MATCH_PAIR_SCHEMA | {
    "by_code": pl.Boolean(),
    "by_similarity": pl.Boolean(),
}


@dataclass(frozen=True)
class MatchResult:
    """What the matcher decided.

    * ``pairs``: accepted cross-retailer pairs (``MATCH_PAIR_SCHEMA``), every pair of
      listings that share a canonical product, left retailer alphabetically first;
    * ``product_matches``: every input listing exactly once (``PRODUCT_MATCH_SCHEMA``);
    * ``canonical_products``: one row per canonical product (``CANONICAL_PRODUCT_SCHEMA``);
    * ``candidates``: every scored candidate pair with its probability and which blocker
      proposed it (for reporting and for choosing pairs to label);
    * ``stats``: candidate counts and timings;
    * ``blocks``: the match block of every category (``BLOCK_MAP_SCHEMA``), which an
      incremental match (``incremental.py``) keeps to match within the same blocks.
    """

    pairs: pl.DataFrame
    product_matches: pl.DataFrame
    canonical_products: pl.DataFrame
    candidates: pl.DataFrame = field(default_factory=lambda: empty(CANDIDATE_SCHEMA))
    stats: dict[str, float] = field(default_factory=dict)
    blocks: pl.DataFrame = field(default_factory=lambda: empty(BLOCK_MAP_SCHEMA))

    def carry_over(self, previous: pl.DataFrame) -> MatchResult:
        """This result with canonical ids carried over from ``previous`` product matches
        (see ``clustering.carry_over_canonical_ids``): ``product_matches`` and
        ``canonical_products`` renamed consistently."""
        matches = carry_over_canonical_ids(previous, self.product_matches)
        rename = (
            self.product_matches.select("retailer", "sku", pl.col("canonical_id").alias("old"))
            .join(matches.select("retailer", "sku", "canonical_id"), on=["retailer", "sku"])
            .select("old", "canonical_id")
            .unique("old")
        )
        products = (
            self.canonical_products.rename({"canonical_id": "old"})
            .join(rename, on="old", how="left")
            .with_columns(pl.coalesce("canonical_id", "old").alias("canonical_id"))
            .select(self.canonical_products.columns)
            .sort("canonical_id")
        )
        return replace(self, product_matches=matches, canonical_products=products)


def assign(
    records: pl.DataFrame, scored: pl.DataFrame, threshold: float
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, float]]:
    """From scored candidates (``i, j, probability``) to ``(pairs, product_matches,
    canonical_products, counts)``: one-to-one per retailer pair above ``threshold``, then
    transitive one-per-retailer clusters."""
    accepted = scored.filter(pl.col("probability") >= threshold)
    edges = one_to_one(accepted, records)
    membership, kept = cluster(edges, scored, records)
    pairs, product_matches, canonical_products = build_outputs(records, membership, kept, scored)
    counts = {
        "accepted_above_threshold": float(accepted.height),
        "one_to_one_edges": float(edges.height),
        "kept_edges": float(kept.height),
        "canonical_products": float(canonical_products.height),
    }
    return pairs, product_matches, canonical_products, counts


def match_listings(
    listings: pl.DataFrame,
    *,
    threshold: float | None = None,
    scorer: PairScorer | None = None,
    k: int = DEFAULT_NEIGHBOURS,
    decisions: pl.DataFrame | None = None,
) -> MatchResult:
    """Match enriched listings across retailers into canonical products.

    ``scorer`` is a ``TrainedPairModel`` (see ``shipped.pipeline_model``) or any
    ``PairScorer``; it defaults to the unsupervised ``RuleScorer()``. ``threshold`` is the
    minimum pair probability to accept (default: the scorer's own). ``k`` is how many
    nearest listings per other retailer the similarity blocker proposes for each listing.
    An optional ``description`` column is used as evidence when present. ``decisions``:
    pairs people labelled, settled (see ``match_records``).
    """
    if listings.height == 0:
        return _empty_result()
    return match_records(
        _records(listings), threshold=threshold, scorer=scorer, k=k, decisions=decisions
    )


def _empty_result() -> MatchResult:
    return MatchResult(
        empty(MATCH_PAIR_SCHEMA), empty(PRODUCT_MATCH_SCHEMA), empty(CANONICAL_PRODUCT_SCHEMA)
    )


def _records(listings: pl.DataFrame) -> pl.DataFrame:
    if listings.select("retailer", "sku").is_duplicated().any():
        raise ValueError("listings must hold each (retailer, sku) once")
    # A canonical row order: ties (identical titles) break the same way however the
    # listings arrive, so the same listings always give the same products.
    return matching_records(listings.sort("retailer", "sku"))


def match_records(
    records: pl.DataFrame,
    *,
    threshold: float | None = None,
    scorer: PairScorer | None = None,
    k: int = DEFAULT_NEIGHBOURS,
    threads: int | None = None,
    catalogue_size: int | None = None,
    keep_candidates: bool = True,
    decisions: pl.DataFrame | None = None,
) -> MatchResult:
    """``match_listings`` on matcher records (``matching_records``; ``idx`` = 0 .. n-1).

    ``threads`` caps the threads the blocker and the string scorers use (default: all
    cores); worker processes that share the machine set it to 1. ``catalogue_size``: the
    size of the catalogue these records are a block of (see
    ``blocking.prune_common_features``). ``keep_candidates=False`` leaves
    ``MatchResult.candidates`` empty: at a million listings they are 7M rows a worker
    would otherwise build and ship back for nobody. ``decisions`` (``DECISION_SCHEMA``:
    pairs people labelled) are settled: a confirmed pair scores 1 (and is matched even if
    the blocker never proposed it), a rejected one 0 (never matched, nor joined through a
    third listing).
    """
    scorer = scorer or RuleScorer()
    cut = scorer.threshold if threshold is None else threshold
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if records.height == 0:
        return _empty_result()
    vectors = text_vectors(records["text"])
    pairs, stats = candidate_pairs(
        records, vectors.matrix, k=k, workers=threads, catalogue_size=catalogue_size
    )
    timings["seconds_blocking"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    featurizer = PairFeaturizer(
        records, vectors, threads=threads, tokens=getattr(scorer, "tokens", None)
    )
    features = featurizer.features(pairs.select("i", "j"))
    scored = settle(records, score_pairs(features, scorer), decisions)
    timings["seconds_scoring"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    out_pairs, product_matches, canonical_products, counts = assign(records, scored, cut)
    timings["seconds_clustering"] = time.perf_counter() - t2

    candidates = _keyed_candidates(records, scored, pairs) if keep_candidates else None
    stats_out: dict[str, float] = {key: float(v) for key, v in stats.items()}
    stats_out.update(counts, **timings, threshold=float(cut))
    return MatchResult(
        out_pairs,
        product_matches,
        canonical_products,
        empty(CANDIDATE_SCHEMA) if candidates is None else candidates,
        stats_out,
    )


# Pairs people decided (``storage.labels.read_labels`` has these columns).
DECISION_SCHEMA: dict[str, pl.DataType] = {
    "left_retailer": pl.String(),
    "left_sku": pl.String(),
    "right_retailer": pl.String(),
    "right_sku": pl.String(),
    "is_match": pl.Boolean(),
}


def settle(
    records: pl.DataFrame, scored: pl.DataFrame, decisions: pl.DataFrame | None
) -> pl.DataFrame:
    """``scored`` (``i, j, probability``) with the decided pairs among ``records`` at 1
    (confirmed, added when missing) or 0 (rejected); pairs of listings not in
    ``records`` are ignored."""
    if decisions is None or decisions.height == 0:
        return scored
    settled = (
        keyed_pairs(records, decisions.select(list(DECISION_SCHEMA)))
        .select("i", "j", pl.col("is_match").cast(pl.Float64).alias("probability"))
        .unique(["i", "j"], keep="last")
    )
    if settled.height == 0:
        return scored
    return pl.concat([scored.join(settled, on=["i", "j"], how="anti"), settled.cast(scored.schema)])


def _keyed_candidates(
    records: pl.DataFrame, scored: pl.DataFrame, pairs: pl.DataFrame
) -> pl.DataFrame:
    """Scored candidates named by their listings' keys (``CANDIDATE_SCHEMA``)."""
    keys = records.select("idx", "retailer", "sku")
    return (
        scored.join(pairs, on=["i", "j"])
        .join(keys.rename({"idx": "i", "retailer": "left_retailer", "sku": "left_sku"}), on="i")
        .join(keys.rename({"idx": "j", "retailer": "right_retailer", "sku": "right_sku"}), on="j")
        .select(list(CANDIDATE_SCHEMA))
    )


# --- match blocks in parallel -------------------------------------------------------------


def default_workers() -> int:
    """Worker processes for ``match_by_block`` when none are asked for: every core."""
    if hasattr(os, "sched_getaffinity"):  # the cores this process may use (Linux)
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def match_by_block(
    listings: pl.DataFrame,
    *,
    threshold: float | None = None,
    scorer: PairScorer | None = None,
    k: int = DEFAULT_NEIGHBOURS,
    workers: int | None = None,
    blocks: Collection[str] | None = None,
    shard: tuple[int, int] | None = None,
    blocks_from: int = BLOCKS_FROM_LISTINGS,
    keep_candidates: bool = False,
    decisions: pl.DataFrame | None = None,
) -> MatchResult:
    """``match_listings`` block by block (see ``blocks``): each match block of the
    catalogue is matched on its own, in ``workers`` processes (default
    ``default_workers()``), largest blocks first; ``blocks`` restricts the work to those
    block names, ``shard=(index, count)`` to the blocks ``blocks.shard_of`` puts in that
    shard (a Dagster partition's share). A catalogue under ``blocks_from`` listings is
    one block, matched in this process (see ``blocks.BLOCKS_FROM_LISTINGS``), unless a
    shard or blocks are asked for. ``stats`` sum the blocks' counts and worker seconds,
    and add ``blocks`` and ``seconds_wall``. ``candidates`` stay empty unless
    ``keep_candidates``. ``decisions`` are settled (see ``match_records``) inside the
    block that holds both listings.
    """
    started = time.perf_counter()
    if listings.height == 0:
        return _empty_result()
    records = _records(listings)
    split = blocks is not None or shard is not None
    records = records.with_columns(
        block=assign_blocks(records, from_listings=0 if split else blocks_from)
    )
    block_map = (
        records.select(pl.col("category").fill_null(UNCATEGORIZED), "block")
        .unique("category")
        .sort("category")
    )
    parts = [
        part.drop("block").with_columns(idx=pl.int_range(pl.len(), dtype=pl.Int64))
        for _, part in records.group_by("block", maintain_order=True)
        if _selected(part["block"][0], blocks, shard)
    ]
    parts.sort(key=lambda part: part.height, reverse=True)
    catalogue_size = records.height
    del records  # the blocks hold every row now (a million listings: a GB not kept twice)
    workers = default_workers() if workers is None else max(1, workers)
    options = {
        "threshold": threshold,
        "scorer": scorer,
        "k": k,
        "catalogue_size": catalogue_size,
        "keep_candidates": keep_candidates,
        "decisions": decisions,
    }
    if workers == 1 or len(parts) < 2:
        results = [match_records(p, **options) for p in parts]
    else:
        results = _match_on_workers(parts, workers, options)
    merged = replace(merge_results(results), blocks=block_map)
    merged.stats.update(blocks=float(len(parts)), seconds_wall=time.perf_counter() - started)
    return merged


def _selected(block: str, blocks: Collection[str] | None, shard: tuple[int, int] | None) -> bool:
    if blocks is not None and block not in blocks:
        return False
    return shard is None or shard_of(block, shard[1]) == shard[0]


def _match_on_workers(
    parts: list[pl.DataFrame], workers: int, options: dict[str, object]
) -> list[MatchResult]:
    """``match_records`` of each block on ``workers`` processes, in order, consuming
    ``parts``: a block is handed over only when a worker is about to be free, and this
    process lets go of it once matched (at a million listings it no longer holds every
    block until the last one is done)."""
    queue = list(enumerate(parts))[::-1]  # popped from the end: in the order given
    parts.clear()
    results: dict[int, MatchResult] = {}
    running: dict[Future[MatchResult], int] = {}
    with _worker_pool(min(workers, len(queue))) as pool:
        while queue or running:
            while queue and len(running) <= workers:  # one queued behind the busy ones
                index, part = queue.pop()
                running[pool.submit(match_records, part, threads=1, **options)] = index
                del part
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                results[running.pop(future)] = future.result()
    return [results[index] for index in sorted(results)]


@contextmanager
def _worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """Fresh (spawned) worker processes, one Polars thread each: forking a process whose
    thread pools are running can deadlock, and the workers already fill the cores."""
    before = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = "1"
    try:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            yield pool
    finally:
        if before is None:
            os.environ.pop("POLARS_MAX_THREADS", None)
        else:
            os.environ["POLARS_MAX_THREADS"] = before


def merge_results(results: list[MatchResult]) -> MatchResult:
    """One result of several blocks' (stats summed, the threshold kept)."""
    if not results:
        return _empty_result()
    stats: dict[str, float] = {}
    for result in results:
        for key, value in result.stats.items():
            stats[key] = stats.get(key, 0.0) + value
    if "threshold" in stats:
        stats["threshold"] = results[0].stats["threshold"]
    return MatchResult(
        pl.concat([r.pairs for r in results]).sort(
            "left_retailer", "left_sku", "right_retailer", "right_sku"
        ),
        pl.concat([r.product_matches for r in results]).sort("retailer", "sku"),
        pl.concat([r.canonical_products for r in results]).sort("canonical_id"),
        pl.concat([r.candidates for r in results]),
        stats,
    )
