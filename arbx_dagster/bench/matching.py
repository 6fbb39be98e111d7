"""``arbx bench matching``: the matcher measured on a benchmark dataset folder.

Two ways to measure, the same report (``dataset``, ``mode``, ``pairwise``, ``blocking``,
``end_to_end``, ``calibration``, ``seconds``):

**Trained** (default; the entity-matching literature's protocol, the same for every
folder):

1. *Pairwise.* The scorer is trained on ``pairs/train.jsonl`` only (features plus word
   weights learned from those pairs, see ``tokens``; with the pairs those labels imply,
   see ``label_closure``); its threshold is the best-F1 cut
   on ``pairs/valid.jsonl``, and so is its capacity (100 or 300 trees, whichever scores
   the better validation F1: ``training.CAPACITY_CHOICES``); precision, recall and F1 on
   ``pairs/test.jsonl`` are reported once per seed and averaged. Pair records are scored
   on their own text; their context (rank among the record's other candidates) comes from
   the full catalogues, which carry no labels.
2. *Blocking.* Candidate pairs over the full catalogues; pair completeness is the share
   of ``matches.csv`` pairs among them.
3. *End to end.* Blocking -> scoring -> one-to-one assignment and clustering on the full
   catalogues, against ``matches.csv``. The model is trained on the training pairs
   located in the catalogues; its cut is the one whose *assignment* gives the best F1 on
   the validation pairs. Many true matches are also training positives, so the details
   also report records no training pair mentions.

**Zero-shot** (``--zero-shot``): the pipeline's own model exactly as the pipeline uses it
(``shipped``), never trained on this dataset: when the shipped model learned from it, the
same recipe is run again without it. Pairwise on the test split at the model's own cut;
end to end through the pipeline's engine (``match_by_block``: its blocking, scoring and
assignment) on the full catalogues. Nothing of the dataset is read but to score.

A dataset of labelled pairs only (``"tables": false``) has no catalogues: ``blocking``
and ``end_to_end`` are null. ``calibration`` compares the test pairs' probabilities with
their labels (expected calibration error and the reliability curve).

``run_matching_benchmark`` returns the report as a plain dict plus details; no Dagster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from arbx_dagster.bench.datasets import BenchmarkError, load_benchmark
from arbx_dagster.domain.matching import assign, enrich_listings, match_by_block
from arbx_dagster.domain.matching.blocking import (
    DEFAULT_NEIGHBOURS,
    blocking_recall,
    keyed_pairs,
)
from arbx_dagster.domain.matching.evaluation import (
    Benchmark,
    BenchmarkFrames,
    benchmark_frames,
    binary_metrics,
    calibration_report,
    pair_metrics,
    to_listing_frame,
)
from arbx_dagster.domain.matching.label_closure import implied_pairs
from arbx_dagster.domain.matching.training import (
    CAPACITY_CHOICES,
    LABEL,
    ModelSettings,
    TrainedPairModel,
    train_selected_model,
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


def _e2e_threshold(
    frames: BenchmarkFrames, scored: pl.DataFrame, valid: pl.DataFrame
) -> tuple[float, dict[str, float]]:
    """The cut whose assignment gives the best F1 on the validation pairs.

    A validation pair counts as predicted when its catalogue twins end up in one
    product; only validation labels are read.
    """
    records = _catalogue_records(frames)
    labels = valid["label"].to_numpy()
    best: tuple[float, float, dict[str, float]] = (-1.0, 0.5, {})
    for cut in E2E_CUTS:
        pairs, _, _, _ = assign(records, scored, cut)
        found = keyed_pairs(records, pairs.drop("probability")).with_columns(hit=pl.lit(True))
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


def _oriented(predicted: pl.DataFrame, left_retailer: str) -> pl.DataFrame:
    is_left = pl.col("left_retailer") == left_retailer
    return predicted.select(
        pl.when(is_left).then(pl.col("left_sku")).otherwise(pl.col("right_sku")).alias("left_sku"),
        pl.when(is_left).then(pl.col("right_sku")).otherwise(pl.col("left_sku")).alias("right_sku"),
        *([pl.col("probability")] if "probability" in predicted.columns else []),
    )


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

    truth = unseen(bench.truth)
    pred = unseen(_oriented(predicted, bench.left_retailer))
    tp = pred.join(truth, on=["left_sku", "right_sku"], how="semi").height
    precision = tp / pred.height if pred.height else 0.0
    recall = tp / truth.height if truth.height else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": float(truth.height)}


def _matches_calibration(predicted: pl.DataFrame, bench: Benchmark) -> dict:
    """Calibration of the accepted pairs' probabilities against ``matches.csv``."""
    pairs = _oriented(predicted, bench.left_retailer).join(
        bench.truth.unique().with_columns(pl.lit(1).alias("true")),
        on=["left_sku", "right_sku"],
        how="left",
    )
    return calibration_report(
        pairs["true"].fill_null(0).to_numpy(), pairs["probability"].to_numpy()
    )


def _mean(runs: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in runs])) if runs else 0.0


def _pairwise_summary(runs: list[dict]) -> dict[str, float]:
    return {key: _mean(runs, key) for key in ("precision", "recall", "f1", "threshold")}


def _load(dataset: str | Path, limit: int | None) -> Benchmark:
    bench = load_benchmark(dataset, limit=limit)
    for split in ("train", "valid", "test"):
        if split not in bench.pairs or bench.pairs[split].height == 0:
            raise BenchmarkError(f"{dataset}: pairs/{split}.jsonl is missing or empty")
    return bench


def run_matching_benchmark(
    dataset: str | Path,
    *,
    seeds: tuple[int, ...] = DEFAULT_SEEDS,
    limit: int | None = None,
    k: int = 5,
    settings: ModelSettings | None = None,
    zero_shot: bool = False,
    implied: bool = True,
    model: TrainedPairModel | None = None,
    progress: Progress | None = None,
) -> MatchingBenchmarkResult:
    """Run the protocol on one dataset folder (see the module docstring).

    ``implied`` (trained mode): the training pairs grow by the pairs their labels imply
    (``label_closure``). ``limit`` keeps a small subset (the first ``limit`` pairs of each
    split and the catalogue rows behind them, see ``load_benchmark``) for quick checks.
    ``settings`` fixes the trained scorer's settings (default: chosen on the validation
    pairs among ``CAPACITY_CHOICES``). ``zero_shot`` scores the pipeline's model (``model``
    if given, else the shipped one, without this dataset); ``seeds``, ``settings`` and
    ``implied`` then play no part.
    Raises ``BenchmarkError`` when the folder is malformed.
    """
    say = progress or (lambda _: None)
    started = time.perf_counter()
    say("loading dataset")
    bench = _load(dataset, limit)
    if not zero_shot and implied:
        bench = replace(bench, pairs={**bench.pairs, "train": implied_pairs(bench.pairs["train"])})
    say("vectorising, blocking and featurising")
    frames = benchmark_frames(bench, k=k)
    if zero_shot:
        report, details = _zero_shot(bench, frames, model, say)
    else:
        choices = CAPACITY_CHOICES if settings is None else (settings,)
        report, details = _trained(bench, frames, seeds, choices, say)
    report["seconds"]["total"] = round(time.perf_counter() - started, 3)
    details |= {
        "pairs": {split: int(f.height) for split, f in frames.pairwise.items()},
        "seconds_detail": {key: round(v, 3) for key, v in frames.seconds.items()},
        "limit": limit,
    }
    return MatchingBenchmarkResult(report, details)


def _report(
    bench: Benchmark,
    mode: str,
    pairwise: dict,
    blocking: dict | None,
    end_to_end: dict | None,
    calibration: dict,
    seconds: dict[str, float],
) -> dict[str, Any]:
    return {
        "dataset": bench.name,
        "mode": mode,
        "pairwise": pairwise,
        "blocking": blocking,
        "end_to_end": end_to_end,
        "calibration": calibration,
        "seconds": {key: round(value, 3) for key, value in seconds.items()},
    }


def _trained(
    bench: Benchmark,
    frames: BenchmarkFrames,
    seeds: tuple[int, ...],
    choices: tuple[ModelSettings, ...],
    say: Progress,
) -> tuple[dict, dict]:
    seconds = {"train": 0.0, "blocking": 0.0, "scoring": frames.seconds["features"]}
    pairwise_runs, labels, probabilities = [], [], []
    test = frames.pairwise["test"]
    for seed in seeds:
        say(f"pairwise model, seed {seed}")
        run, proba = _pairwise_run(frames, seed, choices, seconds)
        labels.append(test[LABEL].to_numpy())
        probabilities.append(proba)
        pairwise_runs.append(run)
    calibration = calibration_report(np.concatenate(labels), np.concatenate(probabilities))
    details: dict[str, Any] = {"seeds": list(seeds), "pairwise_runs": pairwise_runs}
    if not bench.tables:
        report = _report(
            bench, "trained", _pairwise_summary(pairwise_runs), None, None, calibration, seconds
        )
        return report, details

    seconds["blocking"] = frames.seconds["vectorise"] + frames.seconds["blocking"]
    candidates = _with_keys(frames.candidates.select("i", "j"), _keys(frames))
    completeness = blocking_recall(candidates, bench.truth, bench.left_retailer)
    n_left = bench.listings.filter(pl.col("retailer") == bench.left_retailer).height
    e2e_runs = []
    for seed in seeds:
        say(f"end-to-end model, seed {seed}")
        e2e_runs.append(_end_to_end_run(bench, frames, seed, choices, seconds))
    report = _report(
        bench,
        "trained",
        _pairwise_summary(pairwise_runs),
        _blocking_summary(completeness, frames.candidates.height, n_left),
        {key: _mean(e2e_runs, key) for key in ("precision", "recall", "f1")},
        calibration,
        seconds,
    )
    details |= {
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
    }
    return report, details


def _pairwise_run(
    frames: BenchmarkFrames,
    seed: int,
    choices: tuple[ModelSettings, ...],
    seconds: dict[str, float],
) -> tuple[dict[str, Any], np.ndarray]:
    """One seed of the pairwise protocol: trained on the training pairs, cut on the
    validation pairs, scored on the test pairs. Adds its timings to ``seconds``."""
    test = frames.pairwise["test"]
    t = time.perf_counter()
    model = train_selected_model(
        frames.pairwise["train"],
        frames.pairwise["valid"],
        seed=seed,
        choices=choices,
        tokens=True,
    )
    seconds["train"] += time.perf_counter() - t
    t = time.perf_counter()
    proba = model.predict_proba(test)
    seconds["scoring"] += time.perf_counter() - t
    metrics = binary_metrics(test[LABEL].to_numpy(), proba >= model.threshold)
    run = {
        "seed": seed,
        "threshold": model.threshold,
        **metrics,
        "valid_f1": model.metrics["f1"],
        "trees": model.settings.max_iter,
        "token_grams": list(model.tokens.gram_sizes) if model.tokens else [],
        "version": model.version,
    }
    return run, proba


def _end_to_end_run(
    bench: Benchmark,
    frames: BenchmarkFrames,
    seed: int,
    choices: tuple[ModelSettings, ...],
    seconds: dict[str, float],
) -> dict[str, Any]:
    """One seed of the end-to-end protocol: trained on the training pairs located in the
    catalogues, its cut chosen by assignment F1 on the validation pairs, the catalogues
    matched against ``matches.csv``. Adds its timings to ``seconds``."""
    t = time.perf_counter()
    model = train_selected_model(
        frames.catalogue_pairs["train"],
        frames.catalogue_pairs["valid"],
        seed=seed,
        choices=choices,
        tokens=True,
    )
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    scored = frames.candidates.select("i", "j").with_columns(
        pl.Series("probability", model.predict_proba(frames.candidates))
    )
    t_score = time.perf_counter() - t
    t = time.perf_counter()
    cut, valid_metrics = _e2e_threshold(frames, scored, frames.catalogue_pairs["valid"])
    seconds["train"] += t_fit + time.perf_counter() - t
    t = time.perf_counter()
    pairs, _, _, _ = assign(_catalogue_records(frames), scored, cut)
    seconds["scoring"] += t_score + time.perf_counter() - t
    metrics = pair_metrics(pairs, bench.truth, bench.left_retailer)
    return {
        "seed": seed,
        "threshold": cut,
        "precision": metrics["precision"],
        "recall": metrics["recall"],
        "f1": metrics["f1"],
        "valid_f1": valid_metrics.get("f1", 0.0),
        "unseen": _unseen_metrics(pairs, bench, frames),
    }


def _blocking_summary(
    completeness: dict[str, float], n_candidates: int, n_left: int
) -> dict[str, float]:
    """The report's ``blocking`` section."""
    return {
        "pair_completeness": float(completeness["pair_completeness"]),
        "candidates": int(n_candidates),
        "candidates_per_record": n_candidates / max(n_left, 1),
    }


def zero_shot_model(dataset_name: str, *, progress: Progress | None = None) -> TrainedPairModel:
    """The pipeline's model for a dataset it must never have learned from: the shipped
    model, or the shipped recipe run again without ``dataset_name`` when it was a source."""
    from arbx_dagster.domain.matching.shipped import load_model, read_corpus, read_recipe
    from arbx_dagster.domain.matching.transfer import train_transfer_model

    recipe = read_recipe()
    if dataset_name not in recipe.sources:
        return load_model()
    return train_transfer_model(
        read_corpus(),
        exclude=[dataset_name],
        seed=recipe.seed,
        settings=recipe.settings,
        progress=progress,
    )


def _zero_shot(
    bench: Benchmark, frames: BenchmarkFrames, model: TrainedPairModel | None, say: Progress
) -> tuple[dict, dict]:
    t = time.perf_counter()
    if model is None:
        say(f"the shipped model, without {bench.name}")
        model = zero_shot_model(bench.name, progress=say)
    seconds = {"train": time.perf_counter() - t, "blocking": 0.0, "scoring": 0.0}
    say("scoring the test pairs")
    t = time.perf_counter()
    test = frames.pairwise["test"]
    proba = model.predict_proba(test)
    seconds["scoring"] += time.perf_counter() - t
    labels = test[LABEL].to_numpy()
    pairwise = binary_metrics(labels, proba >= model.threshold) | {"threshold": model.threshold}
    calibration = calibration_report(labels, proba)
    details: dict[str, Any] = {
        "model": {
            "version": model.version,
            "excluded": bench.name,
            "sources": sorted(
                key.removeprefix("pairs_") for key in model.metrics if key.startswith("pairs_")
            ),
        }
    }
    if not bench.tables:
        report = _report(bench, "zero-shot", pairwise, None, None, calibration, seconds)
        return report, details

    say("matching the catalogues as the pipeline does")
    t = time.perf_counter()
    listings = to_listing_frame(enrich_listings(bench.listings))
    result = match_by_block(
        listings, scorer=model, workers=1, k=DEFAULT_NEIGHBOURS, keep_candidates=True
    )
    seconds["blocking"] = float(result.stats.get("seconds_blocking", 0.0))
    seconds["scoring"] += time.perf_counter() - t - seconds["blocking"]
    completeness = blocking_recall(result.candidates, bench.truth, bench.left_retailer)
    n_left = bench.listings.filter(pl.col("retailer") == bench.left_retailer).height
    metrics = pair_metrics(result.pairs, bench.truth, bench.left_retailer)
    report = _report(
        bench,
        "zero-shot",
        pairwise,
        _blocking_summary(completeness, result.candidates.height, n_left),
        {key: metrics[key] for key in ("precision", "recall", "f1")},
        calibration,
        seconds,
    )
    details |= {
        "end_to_end_matches_calibration": _matches_calibration(result.pairs, bench),
        "end_to_end_counts": {key: metrics[key] for key in ("tp", "predicted", "true")},
    }
    return report, details
