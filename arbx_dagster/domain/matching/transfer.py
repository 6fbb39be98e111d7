"""A match model for catalogues nobody labelled: trained on several markets, calibrated
and cut where it met a market it had not seen.

Every real deployment starts without labelled pairs of its own, so the model ArbX ships
is judged by how it does on a market it was not trained on. The recipe makes that the
measure it is built on:

1. **Leave one source out.** For each source of the corpus (``corpus``), a classifier
   fitted on the other sources scores it: raw log-odds for pairs from a market the model
   never saw, the situation the shipped model is in on a user's catalogues.
2. **Calibration** maps those raw log-odds to probabilities (one logistic fit, each
   source weighing the same): a 0.9 means nine in ten such pairs were the same product
   in markets the model had not seen, not in the ones it memorised.
3. **Threshold**: the cut with the best F1 averaged over the held-out sources (each
   market counts once, whatever its size or share of matches); the middle of the cuts
   within half a point of it, since that curve is flat near its top.
4. The final classifier is fitted on every source (each weighing the same) and keeps
   the calibration and the cut of steps 2 and 3.

Prices are never a feature (a price gap is what ArbX looks for), and neither are the
learned word weights of ``tokens`` (they learn one market's vocabulary, which is what
does not transfer). Pairs an identity rule decides (``conflicts``) are neither learned
from nor calibrated on. No pair of any benchmark's ``test`` split is in the corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict
from typing import Any

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from arbx_dagster.domain.matching.candidate_context import CONTEXT_FEATURES
from arbx_dagster.domain.matching.conflicts import open_pairs
from arbx_dagster.domain.matching.training import (
    LABEL,
    PIPELINE_COLUMNS,
    ModelSettings,
    TrainedPairModel,
    _classifier,
    _digest,
    _sklearn_version,
    usable_columns,
)

# Learned word weights do not transfer (see the module docstring).
TRANSFER_COLUMNS = tuple(c for c in PIPELINE_COLUMNS if c != "token_evidence")
# Coarser trees than a model fitted on one catalogue's own labels: rules that hold across
# markets rather than the quirks of one (held-out F1 averaged over markets: 0.801-0.814
# against 0.783-0.821 with 31-leaf trees). The pipeline scores millions of pairs: 50 trees
# at twice the learning rate score twice as fast as 100 for the same held-out F1. No
# internal calibration (step 2 replaces it).
TRANSFER_SETTINGS = ModelSettings(
    max_iter=50, learning_rate=0.2, max_leaf_nodes=15, min_samples_leaf=50, calibration_folds=1
)
CUTS = np.round(np.arange(0.05, 0.96, 0.01), 2)
PLATEAU = 0.005  # half a point of mean held-out F1

Progress = Callable[[str], None]


def _source_weights(sources: pl.Series) -> np.ndarray:
    """Per-row weights giving every source the same total weight (mean weight 1)."""
    counts = sources.value_counts()
    per = dict(zip(counts["source"].to_list(), counts["count"].to_list(), strict=True))
    n, k = sources.len(), len(per)
    return np.array([n / (k * per[s]) for s in sources.to_list()], dtype=np.float64)


def _without_context(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows that have context, again without it: the model learns to judge a pair on its
    own too, as it must for a source of labelled pairs only (context dropout)."""
    has = frame.filter(pl.col(CONTEXT_FEATURES[0]).is_not_nan().fill_null(False))
    return has.with_columns(
        pl.lit(float("nan"), dtype=pl.Float32).alias(c) for c in CONTEXT_FEATURES
    )


def fit_weighted(
    frame: pl.DataFrame,
    settings: ModelSettings,
    seed: int,
    *,
    extra: pl.DataFrame | None = None,
) -> tuple[Any, tuple[str, ...]]:
    """A classifier on ``frame`` (every source weighing the same) plus ``extra`` rows
    (user labels, ``settings.label_weight`` each), and the columns it reads: those some
    row has (context is missing from pair-only sources)."""
    weights = _source_weights(frame["source"])
    extra = open_pairs(extra) if extra is not None else None
    if extra is not None and extra.height:
        frame = pl.concat([frame, extra.select(frame.columns)])
        weights = np.concatenate([weights, np.full(extra.height, settings.label_weight)])
    dropped = _without_context(frame)
    has_context = frame[CONTEXT_FEATURES[0]].is_not_nan().fill_null(False).to_numpy()
    frame = pl.concat([frame, dropped])
    weights = np.concatenate([weights, weights[has_context]])
    columns = usable_columns(frame, TRANSFER_COLUMNS)
    model = _classifier(settings, seed)
    x = frame.select(columns).cast(pl.Float64).to_numpy()
    y = frame[LABEL].cast(pl.Int64).to_numpy()
    with threadpool_limits(1, user_api="openmp"):
        model.fit(x, y, sample_weight=weights)
    return model, columns


def _raw(model, frame: pl.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    x = frame.select(columns).cast(pl.Float64).to_numpy()
    with threadpool_limits(1, user_api="openmp"):
        return np.asarray(model.decision_function(x), dtype=np.float64)


def _platt(raw: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` of ``p = 1 / (1 + exp(-(a * raw + b)))`` by weighted logistic fit."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e4, max_iter=1000).fit(raw[:, None], labels, sample_weight=weights)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def _f1(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum(labels & predicted))
    precision = tp / float(predicted.sum()) if predicted.sum() else 0.0
    recall = tp / float(labels.sum()) if labels.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _mean_f1_cut(
    proba: np.ndarray, labels: np.ndarray, sources: np.ndarray
) -> tuple[float, dict[str, float]]:
    """The cut with the best F1 averaged over sources, and each source's metrics there."""
    names = sorted(set(sources.tolist()))
    masks = {name: sources == name for name in names}
    scores = []
    for cut in CUTS:
        predicted = proba >= cut
        scores.append(np.mean([_f1(labels[m], predicted[m])[2] for m in masks.values()]))
    # The held-out F1 is an estimate: every cut within PLATEAU of the best is as good,
    # and the middle of that run moves least when the corpus changes.
    best = np.flatnonzero(np.asarray(scores) >= max(scores) - PLATEAU)
    cut = float(CUTS[best[len(best) // 2]])
    metrics: dict[str, float] = {"loso_mean_f1": float(max(scores))}
    predicted = proba >= cut
    for name, mask in masks.items():
        precision, recall, f1 = _f1(labels[mask], predicted[mask])
        metrics |= {
            f"loso_{name}_precision": precision,
            f"loso_{name}_recall": recall,
            f"loso_{name}_f1": f1,
        }
    return cut, metrics


def train_transfer_model(
    corpus: pl.DataFrame,
    *,
    exclude: Iterable[str] = (),
    seed: int = 0,
    settings: ModelSettings = TRANSFER_SETTINGS,
    progress: Progress | None = None,
) -> TrainedPairModel:
    """The shipped recipe (module docstring) on ``corpus`` minus the ``exclude`` sources."""
    say = progress or (lambda _: None)
    excluded = sorted(set(exclude))
    frame = open_pairs(corpus.filter(~pl.col("source").is_in(excluded)))
    names = sorted(frame["source"].unique().to_list())
    if len(names) < 2:
        raise ValueError(
            f"the transfer recipe needs at least two sources, got {names or 'none'}"
            + (f" after excluding {', '.join(excluded)}" if excluded else "")
        )
    raw = np.zeros(frame.height, dtype=np.float64)
    for name in names:
        say(f"held out: {name}")
        held = (frame["source"] == name).to_numpy()
        model, columns = fit_weighted(frame.filter(~pl.Series(held)), settings, seed)
        raw[held] = _raw(model, frame.filter(pl.Series(held)), columns)
    labels = frame[LABEL].cast(pl.Int64).to_numpy().astype(bool)
    sources = frame["source"].to_numpy()
    calibration = _platt(raw, labels.astype(int), _source_weights(frame["source"]))
    a, b = calibration
    proba = 1.0 / (1.0 + np.exp(-(a * raw + b)))
    threshold, metrics = _mean_f1_cut(proba, labels, sources)
    say("final model on every source")
    final, columns = fit_weighted(frame, settings, seed)
    metrics |= {
        "train_pairs": float(frame.height),
        "train_matches": float(labels.sum()),
        **{f"pairs_{name}": float((sources == name).sum()) for name in names},
    }
    version = (
        "tm-"
        + _digest(
            frame.select("source", *columns, LABEL),
            asdict(settings),
            seed,
            columns,
            excluded,
            _sklearn_version(),
        )[:16]
    )
    return TrainedPairModel(
        final, columns, threshold, metrics, version, settings, calibration=calibration
    )
