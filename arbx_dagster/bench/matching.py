"""``arbx bench matching``: the matcher measured on a two-catalogue benchmark.

Protocol (as in the entity-matching literature, and the same for every dataset folder):

1. **Pairwise.** The learned scorer is trained on ``pairs/train.jsonl`` only; its
   decision threshold is the best-F1 cut on ``pairs/valid.jsonl``; precision, recall and
   F1 on ``pairs/test.jsonl`` are reported once per seed and averaged over the seeds.
   Pair records are scored on their own (pre-tokenised) text; their context features
   (rank among the record's other candidates, margin, mutual best) come from the full
   catalogues ``left.csv`` / ``right.csv``, which carry no labels.
2. **Blocking.** Candidate pairs over the full catalogues; pair completeness is the share
   of ``matches.csv`` pairs among them.
3. **End to end.** Blocking -> learned scoring -> one-to-one assignment and clustering on
   the full catalogues, scored against ``matches.csv``. The model is trained on the same
   training pairs located in the catalogues (catalogue text) and its threshold is the cut
   whose *assignment* gives the best F1 on the validation pairs. ``matches.csv`` is read
   only to score. Many true matches are also training positives, so the details also
   report the end-to-end figures restricted to records no training pair mentions.

``run_matching_benchmark`` returns the report as a plain dict (the JSON the CLI writes)
plus details; it has no Dagster in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbx_dagster.domain.matching import assign
from arbx_dagster.domain.matching.benchmark import (
    Benchmark,
    BenchmarkError,
    BenchmarkFrames,
    benchmark_frames,
    binary_metrics,
    load_benchmark,
    pair_metrics,
)
from arbx_dagster.domain.matching.blocking import blocking_recall
from arbx_dagster.domain.matching.training import (
    LABEL,
    ModelSettings,
    TrainedPairModel,
    train_pair_model,
)

DEFAULT_SEEDS = (0, 1, 2)
# Candidate cuts for the end-to-end threshold (chosen on validation pairs).
E2E_CUTS = tuple(float(c) for c in np.round(np.arange(0.05, 0.96, 0.05), 2))

Progress = Callable[[str], None]


@dataclass(frozen=True)
class MatchingBenchmarkResult:
    """``report``: the JSON of ``arbx bench matching --json``; ``details``: per-seed
    numbers, thresholds, timings and counts behind it."""

    report: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


def _keys(frames: BenchmarkFrames) -> pl.DataFrame:
    return frames.records.select("idx", "retailer", "sku")


def _with_keys(pairs: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    return pairs.join(
        keys.rename({"idx": "i", "retailer": "left_retailer", "sku": "left_sku"}), on="i"
    ).join(keys.rename({"idx": "j", "retailer": "right_retailer", "sku": "right_sku"}), on="j")


def _catalogue_records(frames: BenchmarkFrames) -> pl.DataFrame:
    """Catalogue rows only (pair records live after them in the index space)."""
    n = frames.catalogue_rows
    return frames.records.filter(pl.col("idx") < n)


def _as_index_pairs(pairs: pl.DataFrame, keys: pl.DataFrame) -> pl.DataFrame:
    """MATCH_PAIR_SCHEMA pairs back to ``i, j`` record ids (orientation as the blocker's)."""
    return (
        pairs.join(
            keys.rename({"idx": "i", "retailer": "left_retailer", "sku": "left_sku"}),
            on=["left_retailer", "left_sku"],
        )
        .join(
            keys.rename({"idx": "j", "retailer": "right_retailer", "sku": "right_sku"}),
            on=["right_retailer", "right_sku"],
        )
        .select("i", "j")
    )


def _e2e_threshold(
    frames: BenchmarkFrames, scored: pl.DataFrame, valid: pl.DataFrame
) -> tuple[float, dict[str, float]]:
    """The cut whose assignment gives the best F1 on the validation pairs.

    A validation pair counts as predicted when its catalogue twins end up in one
    product; only validation labels are read.
    """
    keys = _keys(frames)
    records = _catalogue_records(frames)
    labels = valid["label"].to_numpy()
    best: tuple[float, float, dict[str, float]] = (-1.0, 0.5, {})
    for cut in E2E_CUTS:
        pairs, _, _, _ = assign(records, scored, cut)
        found = _as_index_pairs(pairs, keys).with_columns(pl.lit(True).alias("hit"))
        hit = (
            valid.select(pl.col("i"), pl.col("j"))
            .join(found, on=["i", "j"], how="left", maintain_order="left")["hit"]
            .fill_null(False)
            .to_numpy()
        )
        metrics = binary_metrics(labels, hit)
        # ties: prefer the cut closest to the middle of the range (0.5)
        if metrics["f1"] > best[0] + 1e-12 or (
            abs(metrics["f1"] - best[0]) <= 1e-12 and abs(cut - 0.5) < abs(best[1] - 0.5)
        ):
            best = (metrics["f1"], cut, metrics)
    return best[1], best[2]


def _unseen_metrics(
    predicted: pl.DataFrame, bench: Benchmark, frames: BenchmarkFrames
) -> dict[str, float]:
    """End-to-end metrics over records that appear in no training pair (as twins)."""
    train = frames.pairwise.get("train")
    if train is None:
        return {}
    keys = _keys(frames)
    seen_ids = pl.concat(
        [train.select(pl.col("ci").alias("idx")), train.select(pl.col("cj").alias("idx"))]
    )
    seen = keys.join(seen_ids.unique(), on="idx", how="semi")
    seen_left = set(seen.filter(pl.col("retailer") == bench.left_retailer)["sku"].to_list())
    seen_right = set(seen.filter(pl.col("retailer") == bench.right_retailer)["sku"].to_list())

    def unseen(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(
            ~pl.col("left_sku").is_in(list(seen_left))
            & ~pl.col("right_sku").is_in(list(seen_right))
        )

    oriented = predicted.select(
        pl.when(pl.col("left_retailer") == bench.left_retailer)
        .then(pl.col("left_sku"))
        .otherwise(pl.col("right_sku"))
        .alias("left_sku"),
        pl.when(pl.col("left_retailer") == bench.left_retailer)
        .then(pl.col("right_sku"))
        .otherwise(pl.col("left_sku"))
        .alias("right_sku"),
    )
    truth = unseen(bench.truth)
    pred = unseen(oriented)
    tp = pred.join(truth, on=["left_sku", "right_sku"], how="semi").height
    precision = tp / pred.height if pred.height else 0.0
    recall = tp / truth.height if truth.height else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": float(truth.height)}


def run_matching_benchmark(
    dataset: str | Path,
    *,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    limit: int | None = None,
    k: int = 5,
    settings: ModelSettings | None = None,
    progress: Progress | None = None,
) -> MatchingBenchmarkResult:
    """Run the whole protocol on one dataset folder (see the module docstring).

    ``limit`` keeps a small subset (the first ``limit`` pairs of each split and of the true
    matches, see ``load_benchmark``) for quick checks. Raises ``BenchmarkError`` when the
    folder is malformed.
    """
    say = progress or (lambda _: None)
    settings = settings or ModelSettings()
    t_start = time.perf_counter()
    say("loading dataset")
    bench = load_benchmark(dataset, limit=limit)
    for split in ("train", "valid", "test"):
        if split not in bench.pairs or bench.pairs[split].height == 0:
            raise BenchmarkError(f"{dataset}: pairs/{split}.jsonl is missing or empty")
    say("vectorising, blocking and featurising")
    frames = benchmark_frames(bench, k=k)
    seconds_train = 0.0
    seconds_scoring = frames.seconds["features"]

    # 1. pairwise
    pairwise_runs = []
    for seed in seeds:
        say(f"pairwise model, seed {seed}")
        t = time.perf_counter()
        model = train_pair_model(
            frames.pairwise["train"], frames.pairwise["valid"], seed=seed, settings=settings
        )
        seconds_train += time.perf_counter() - t
        t = time.perf_counter()
        test = frames.pairwise["test"]
        proba = model.predict_proba(test)
        seconds_scoring += time.perf_counter() - t
        metrics = binary_metrics(test[LABEL].to_numpy(), proba >= model.threshold)
        pairwise_runs.append(
            {
                "seed": seed,
                "threshold": model.threshold,
                **metrics,
                "valid_f1": model.metrics["f1"],
                "version": model.version,
            }
        )

    # 2. blocking
    keys = _keys(frames)
    candidates = _with_keys(frames.candidates.select("i", "j"), keys)
    completeness = blocking_recall(candidates, bench.truth, bench.left_retailer)
    n_left = bench.listings.filter(pl.col("retailer") == bench.left_retailer).height

    # 3. end to end
    e2e_runs = []
    for seed in seeds:
        say(f"end-to-end model, seed {seed}")
        t = time.perf_counter()
        model: TrainedPairModel = train_pair_model(
            frames.catalogue_pairs["train"],
            frames.catalogue_pairs["valid"],
            seed=seed,
            settings=settings,
        )
        t_fit = time.perf_counter() - t
        t = time.perf_counter()
        scored = frames.candidates.select("i", "j").with_columns(
            pl.Series("probability", model.predict_proba(frames.candidates))
        )
        t_score = time.perf_counter() - t
        t = time.perf_counter()
        cut, valid_metrics = _e2e_threshold(frames, scored, frames.catalogue_pairs["valid"])
        seconds_train += t_fit + time.perf_counter() - t
        t = time.perf_counter()
        pairs, _, _, _ = assign(_catalogue_records(frames), scored, cut)
        seconds_scoring += t_score + time.perf_counter() - t
        metrics = pair_metrics(pairs, bench.truth, bench.left_retailer)
        e2e_runs.append(
            {
                "seed": seed,
                "threshold": cut,
                "precision": metrics["precision"],
                "recall": metrics["recall"],
                "f1": metrics["f1"],
                "valid_f1": valid_metrics.get("f1", 0.0),
                "unseen": _unseen_metrics(pairs, bench, frames),
            }
        )

    def mean(runs: list[dict], key: str) -> float:
        return float(np.mean([r[key] for r in runs])) if runs else 0.0

    total = time.perf_counter() - t_start
    report = {
        "dataset": bench.name,
        "pairwise": {
            "precision": mean(pairwise_runs, "precision"),
            "recall": mean(pairwise_runs, "recall"),
            "f1": mean(pairwise_runs, "f1"),
            "threshold": mean(pairwise_runs, "threshold"),
        },
        "blocking": {
            "pair_completeness": float(completeness["pair_completeness"]),
            "candidates": int(frames.candidates.height),
            "candidates_per_record": frames.candidates.height / max(n_left, 1),
        },
        "end_to_end": {
            "precision": mean(e2e_runs, "precision"),
            "recall": mean(e2e_runs, "recall"),
            "f1": mean(e2e_runs, "f1"),
        },
        "seconds": {
            "train": round(seconds_train, 3),
            "blocking": round(frames.seconds["vectorise"] + frames.seconds["blocking"], 3),
            "scoring": round(seconds_scoring, 3),
            "total": round(total, 3),
        },
    }
    details = {
        "seeds": list(seeds),
        "pairwise_runs": pairwise_runs,
        "end_to_end_runs": e2e_runs,
        "end_to_end_unseen": {
            key: float(np.mean([r["unseen"].get(key, 0.0) for r in e2e_runs]))
            for key in ("precision", "recall", "f1", "true_pairs")
        },
        "blocking": {
            **{key: int(v) for key, v in frames.blocking_stats.items()},
            "left_records": n_left,
            "right_records": bench.listings.height - n_left,
        },
        "pairs": {split: int(f.height) for split, f in frames.pairwise.items()},
        "pair_records_without_catalogue_twin": int(len(frames.universe) - frames.catalogue_rows),
        "seconds_detail": {key: round(v, 3) for key, v in frames.seconds.items()},
        "limit": limit,
    }
    return MatchingBenchmarkResult(report, details)
