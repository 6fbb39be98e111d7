"""Evaluating matching on a labelled benchmark: its feature frames and the metrics.

Pair records are lower-cased and tokenised by the benchmark's authors, so they are scored
on their own text. Their *context* (how a pair ranks among each record's other plausible
partners) comes from the full, unlabelled catalogues: each pair record is located in its
catalogue by text similarity and the pair is placed among the blocker's candidates there.
No label other than the training split's is ever read, and ``matches.csv`` only to score.
Loading a benchmark from disk is ``bench.datasets``'.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from sparse_dot_topn import sp_matmul_topn

from arbx_dagster.domain.matching.blocking import candidate_pairs
from arbx_dagster.domain.matching.candidate_context import (
    CONTEXT_FEATURES,
    context_features,
    context_for_queries,
)
from arbx_dagster.domain.matching.features import BASE_FEATURES, PairFeaturizer
from arbx_dagster.domain.matching.normalize import enrich_listings, matching_records
from arbx_dagster.domain.matching.vectorize import TextVectors, text_vectors
from arbx_dagster.domain.schema import LISTING_SCHEMA, conform

SPLITS = ("train", "valid", "test")
PAIR_RECORD_COLUMNS = ("name", "description", "brand", "model", "category", "price_offer")
# A pair record is the catalogue row it was derived from when their texts are this close.
TWIN_SIMILARITY = 0.8


@dataclass(frozen=True)
class Benchmark:
    """One dataset folder, read and mapped onto listing fields.

    ``listings``: both catalogues as raw listing rows (``retailer`` = catalogue name,
    ``sku`` = source id, plus ``description`` when the source has one); ``truth``:
    ``left_sku, right_sku``; ``pairs``: per split, ``left_*`` / ``right_*`` listing fields
    and ``label``. ``tables`` is False for a dataset of labelled pairs only (no
    catalogues, no truth: ``listings`` and ``truth`` are empty).
    """

    name: str
    listings: pl.DataFrame
    truth: pl.DataFrame
    left_retailer: str
    right_retailer: str
    fields: dict[str, str]
    pairs: dict[str, pl.DataFrame] = field(default_factory=dict)
    tables: bool = True


def to_listing_frame(enriched: pl.DataFrame) -> pl.DataFrame:
    """Conform enriched benchmark rows to ``LISTING_SCHEMA`` (what the pipeline feeds),
    keeping ``description`` when the source has one (the matcher reads it if present)."""
    out = conform(enriched, LISTING_SCHEMA)
    if "description" in enriched.columns:
        out = out.with_columns(enriched["description"].cast(pl.String))
    return out


# --- feature frames --------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkFrames:
    """Everything the learned matcher needs from one benchmark, computed once.

    * ``records`` / ``vectors``: catalogue rows (ids ``0 .. catalogue_rows - 1``) and pair
      records (after them) in one index space;
    * ``universe``: record ids that form the catalogues (catalogue rows plus the pair
      records that have no twin there), the pool pair contexts are computed in;
    * ``candidates``: the blocker's pairs over the catalogues with their full feature rows
      (context from the candidates themselves) — what the end-to-end matcher scores;
    * ``pairwise[split]``: labelled pairs scored on their own text, context from the
      catalogues; ``catalogue_pairs[split]``: the same pairs located in the catalogues
      (twin rows, catalogue text), labels attached, for training the end-to-end model.
    """

    records: pl.DataFrame
    vectors: TextVectors
    catalogue_rows: int
    universe: np.ndarray
    candidates: pl.DataFrame
    blocking_stats: dict[str, int]
    pairwise: dict[str, pl.DataFrame]
    catalogue_pairs: dict[str, pl.DataFrame]
    seconds: dict[str, float]


def _pair_record_listings(bench: Benchmark) -> pl.DataFrame:
    """Every distinct pair record of every split as a raw listing (sku ``p<n>``)."""
    columns = list(PAIR_RECORD_COLUMNS)
    sides = []
    for split, frame in bench.pairs.items():
        for side, retailer in (("left", bench.left_retailer), ("right", bench.right_retailer)):
            sides.append(
                frame.select(
                    pl.lit(retailer).alias("retailer"),
                    *[pl.col(f"{side}_{c}").alias(c) for c in columns],
                ).with_columns(pl.lit(split).alias("split"))
            )
    if not sides:
        return pl.DataFrame(schema={"retailer": pl.String, "sku": pl.String})
    records = pl.concat(sides).unique(["retailer", *columns], maintain_order=True)
    return (
        records.drop("split")
        .with_row_index("n")
        .select("retailer", ("p" + pl.col("n").cast(pl.String)).alias("sku"), *columns)
    )


def _nearest(
    vectors: TextVectors, rows: np.ndarray, pool: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``rows``, its most similar record in ``pool`` and that cosine."""
    best = np.full(len(rows), -1, dtype=np.int64)
    score = np.zeros(len(rows), dtype=np.float64)
    if len(rows) == 0 or len(pool) == 0:
        return best, score
    nearest = sp_matmul_topn(vectors.matrix[rows], vectors.matrix[pool].T.tocsr(), top_n=1)
    nearest = nearest.tocoo()
    best[nearest.row] = pool[nearest.col]
    score[nearest.row] = nearest.data
    return best, score


def _orient(frame: pl.DataFrame, records: pl.DataFrame, a: str, b: str) -> pl.DataFrame:
    """Put the alphabetically smaller retailer's record in column ``a`` (as the blocker)."""
    retailer = records.select("idx", "retailer")
    swap = pl.col("_ra") > pl.col("_rb")
    return (
        frame.join(retailer.rename({"idx": a, "retailer": "_ra"}), on=a, how="left")
        .join(retailer.rename({"idx": b, "retailer": "_rb"}), on=b, how="left")
        .with_columns(
            pl.when(swap).then(pl.col(b)).otherwise(pl.col(a)).alias(a),
            pl.when(swap).then(pl.col(a)).otherwise(pl.col(b)).alias(b),
        )
        .drop("_ra", "_rb")
    )


def benchmark_frames(bench: Benchmark, *, k: int = 5) -> BenchmarkFrames:
    """Vectorise, block and featurise a benchmark once for training and evaluation.

    Every frame carries the two titles (``left_title``, ``right_title``) a model with
    word weights reads. A dataset of pairs only has no catalogue: no candidates, and its
    pairs have no context (NaN), as a pair scored without a catalogue around it.
    """
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    pair_records = _pair_record_listings(bench)
    raw = pl.concat([bench.listings, pair_records], how="diagonal_relaxed")
    records = matching_records(to_listing_frame(enrich_listings(raw)))
    vectors = text_vectors(records["text"])
    twin, universe = _catalogue_twins(bench, records, vectors)
    seconds["vectorise"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    pairs, pool_pairs, stats = _catalogue_candidates(bench, records, vectors, universe, k)
    seconds["blocking"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    featurizer = PairFeaturizer(records, vectors)
    titles = records.select("idx", "name_norm")
    candidates, pool = _featurised_candidates(featurizer, records, pairs, pool_pairs, titles)
    pairwise: dict[str, pl.DataFrame] = {}
    catalogue_pairs: dict[str, pl.DataFrame] = {}
    for split, frame in bench.pairs.items():
        twins = _locate(bench, frame, pair_records, records).with_columns(
            ci=pl.col("i").map_batches(lambda ids: pl.Series(twin[ids.to_numpy()])),
            cj=pl.col("j").map_batches(lambda ids: pl.Series(twin[ids.to_numpy()])),
        )
        if bench.tables:
            pairwise[split], catalogue_pairs[split] = _pairs_in_context(
                featurizer, twins, pool, records, titles
            )
        else:
            pairwise[split] = _pairs_without_context(featurizer, twins, titles)
    seconds["features"] = time.perf_counter() - t2
    return BenchmarkFrames(
        records,
        vectors,
        bench.listings.height,
        universe,
        candidates,
        stats,
        pairwise,
        catalogue_pairs,
        seconds,
    )


def _catalogue_twins(
    bench: Benchmark, records: pl.DataFrame, vectors: TextVectors
) -> tuple[np.ndarray, np.ndarray]:
    """``(twin, universe)``: per record, the catalogue row a pair record was derived from
    (its own id when it has none, and for catalogue rows), and the ids of the catalogue
    rows plus the pair records without a twin."""
    is_pair = np.arange(records.height) >= bench.listings.height
    retailer = records["retailer"].to_numpy()
    twin = np.arange(records.height)
    for side in (bench.left_retailer, bench.right_retailer):
        rows = np.flatnonzero(is_pair & (retailer == side))
        pool = np.flatnonzero(~is_pair & (retailer == side))
        best, score = _nearest(vectors, rows, pool)
        ok = (best >= 0) & (score >= TWIN_SIMILARITY)
        twin[rows[ok]] = best[ok]
    universe = np.flatnonzero(~is_pair | (twin == np.arange(records.height)))
    return twin, universe


def _catalogue_candidates(
    bench: Benchmark,
    records: pl.DataFrame,
    vectors: TextVectors,
    universe: np.ndarray,
    k: int,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """``(pairs, pool_pairs, stats)``: the blocker's candidates over the catalogues (what
    the end-to-end matcher sees) and the pool pair contexts are computed in, which also
    holds the neighbours of the pair records that have no twin in their catalogue."""
    pairs = pl.DataFrame(schema={"i": pl.Int64, "j": pl.Int64})
    if not bench.tables:
        return pairs, pairs, {}
    catalogue = records.filter(pl.col("idx") < bench.listings.height)
    pairs, stats = candidate_pairs(catalogue, vectors.matrix, k=k)
    pool_pairs = pairs.select("i", "j")
    if len(universe) > catalogue.height:
        in_universe = records.filter(pl.col("idx").is_in(universe.tolist()))
        pool_pairs = candidate_pairs(in_universe, vectors.matrix, k=k)[0].select("i", "j")
    return pairs, pool_pairs, stats


def _featurised_candidates(
    featurizer: PairFeaturizer,
    records: pl.DataFrame,
    pairs: pl.DataFrame,
    pool_pairs: pl.DataFrame,
    titles: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(candidates, pool)``: the catalogue candidates with their full feature rows
    (context from the candidates themselves) and titles, and the pool's ``i, j, cosine``."""
    every = pl.concat([pairs.select("i", "j"), pool_pairs]).unique(maintain_order=True)
    base = featurizer.base(every)
    cat_base = pairs.select("i", "j").join(base, on=["i", "j"], how="left", maintain_order="left")
    context = context_features(cat_base.select("i", "j", "cosine"), records)
    candidates = _with_titles(
        cat_base.join(context, on=["i", "j"], how="left", maintain_order="left").join(
            pairs, on=["i", "j"], how="left", maintain_order="left"
        ),
        titles,
    )
    pool = pool_pairs.join(base.select("i", "j", "cosine"), on=["i", "j"], how="left")
    return candidates, pool


def _pairs_without_context(
    featurizer: PairFeaturizer, twins: pl.DataFrame, titles: pl.DataFrame
) -> pl.DataFrame:
    """A split's labelled pairs scored on their own text, context NaN (no catalogue)."""
    own_base = featurizer.base(twins.select("i", "j"))
    no_context = pl.DataFrame({name: np.full(twins.height, np.nan) for name in CONTEXT_FEATURES})
    return _with_titles(
        pl.concat(
            [
                own_base.select(*BASE_FEATURES),
                no_context,
                twins.select("i", "j", "ci", "cj", "label"),
            ],
            how="horizontal",
        ),
        titles,
    )


def _pairs_in_context(
    featurizer: PairFeaturizer,
    twins: pl.DataFrame,
    pool: pl.DataFrame,
    records: pl.DataFrame,
    titles: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(pairwise, catalogue_pairs)`` of one split: its labelled pairs scored on their own
    text, and located in the catalogues (twin rows, catalogue text); both with the context
    of each pair inserted alone among the catalogue candidates of its twins."""
    own_base = featurizer.base(twins.select("i", "j"))
    query = twins.select(pl.col("ci").alias("i"), pl.col("cj").alias("j"))
    catalogue_base = featurizer.base(query)
    query_context = context_for_queries(catalogue_base.select("i", "j", "cosine"), pool, records)
    pairwise = _with_titles(
        pl.concat(
            [
                own_base.select(*BASE_FEATURES),
                query_context.select(*CONTEXT_FEATURES),
                twins.select("i", "j", "ci", "cj", "label"),
            ],
            how="horizontal",
        ),
        titles,
    )
    catalogue_pairs = _with_titles(
        pl.concat(
            [
                catalogue_base.select("i", "j", *BASE_FEATURES),
                query_context.select(*CONTEXT_FEATURES),
                twins.select("label"),
            ],
            how="horizontal",
        ),
        titles,
    )
    return pairwise, catalogue_pairs


def _locate(
    bench: Benchmark, frame: pl.DataFrame, pair_records: pl.DataFrame, records: pl.DataFrame
) -> pl.DataFrame:
    """A split's pairs as ``i, j, label`` over the record ids of their own pair records
    (the smaller retailer's record as ``i``, as the blocker orients pairs)."""
    key_cols = list(PAIR_RECORD_COLUMNS)
    ids = records.select("retailer", "sku", "idx")
    located = []
    for side, name in (("left", bench.left_retailer), ("right", bench.right_retailer)):
        cols = frame.select(
            pl.lit(name).alias("retailer"), *[pl.col(f"{side}_{c}").alias(c) for c in key_cols]
        ).with_row_index("row")
        located.append(
            cols.join(pair_records, on=["retailer", *key_cols], how="left", nulls_equal=True)
            .join(ids, on=["retailer", "sku"], how="left")
            .sort("row")["idx"]
            .to_numpy()
        )
    return _orient(
        pl.DataFrame({"i": located[0], "j": located[1], "label": frame["label"].to_numpy()}),
        records,
        "i",
        "j",
    )


def _with_titles(frame: pl.DataFrame, titles: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (pairs ``i, j``) with the two listings' normalised titles."""
    return frame.join(
        titles.rename({"idx": "i", "name_norm": "left_title"}),
        on="i",
        how="left",
        maintain_order="left",
    ).join(
        titles.rename({"idx": "j", "name_norm": "right_title"}),
        on="j",
        how="left",
        maintain_order="left",
    )


# --- metrics ------------------------------------------------------------------------------


def binary_metrics(labels: Iterable[int], predicted: Iterable[bool]) -> dict[str, float]:
    """Precision, recall and F1 of boolean predictions against 0/1 labels."""
    y = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels, dtype=bool)
    p = np.asarray(
        list(predicted) if not isinstance(predicted, np.ndarray) else predicted, dtype=bool
    )
    tp = float(np.sum(y & p))
    precision = tp / float(p.sum()) if p.sum() else 0.0
    recall = tp / float(y.sum()) if y.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def pair_metrics(
    predicted: pl.DataFrame, truth: pl.DataFrame, left_retailer: str
) -> dict[str, float]:
    """Precision / recall / F1 of predicted cross-catalog pairs against the true pairs.

    ``predicted`` has MATCH_PAIR_SCHEMA columns; pairs are re-oriented so the left
    catalog's sku comes first whatever order the matcher emitted them in.
    """
    oriented = _left_first(predicted, left_retailer)
    tp = oriented.join(truth.unique(), on=["left_sku", "right_sku"], how="inner").height
    precision = tp / oriented.height if oriented.height else 0.0
    recall = tp / truth.height if truth.height else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": float(tp),
        "predicted": float(oriented.height),
        "true": float(truth.height),
    }


def _left_first(pairs: pl.DataFrame, left_retailer: str) -> pl.DataFrame:
    is_left = pl.col("left_retailer") == left_retailer
    return pairs.select(
        pl.when(is_left).then(pl.col("left_sku")).otherwise(pl.col("right_sku")).alias("left_sku"),
        pl.when(is_left).then(pl.col("right_sku")).otherwise(pl.col("left_sku")).alias("right_sku"),
    ).unique()


def calibration_report(labels: Iterable[int], proba: Iterable[float], *, bins: int = 10) -> dict:
    """How far probabilities are from the share of true matches among pairs given them.

    ``ece``: expected calibration error (the pairs-weighted mean gap between a bin's mean
    probability and its share of true matches, over ``bins`` equal-width bins);
    ``bins``: the reliability curve, one entry per non-empty bin; ``above_0_9``: the
    share of true matches among pairs given 0.9 or more (what a user reads as "sure").
    """
    y = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels, dtype=float)
    p = np.asarray(list(proba) if not isinstance(proba, np.ndarray) else proba, dtype=float)
    if len(p) == 0:
        return {"pairs": 0, "ece": None, "above_0_9": None, "bins": []}
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    curve, gap = [], 0.0
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        mean_p, rate = float(p[mask].mean()), float(y[mask].mean())
        gap += mask.sum() * abs(mean_p - rate)
        curve.append(
            {
                "from": round(float(edges[b]), 2),
                "to": round(float(edges[b + 1]), 2),
                "pairs": int(mask.sum()),
                "mean_probability": round(mean_p, 4),
                "match_rate": round(rate, 4),
            }
        )
    sure = p >= 0.9
    return {
        "pairs": len(p),
        "ece": round(gap / len(p), 4),
        "above_0_9": round(float(y[sure].mean()), 4) if sure.any() else None,
        "bins": curve,
    }
