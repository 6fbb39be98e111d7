"""Building the match model ArbX ships (``arbx model build``): the corpus from the
simulated market and the public benchmarks read from disk, the transfer recipe trained on
it, and both written into the package's model folder (``domain.matching.shipped`` loads
them)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from arbx_dagster.bench.datasets import load_benchmark
from arbx_dagster.domain.matching.corpus import build_corpus
from arbx_dagster.domain.matching.evaluation import binary_metrics
from arbx_dagster.domain.matching.shipped import (
    CORPUS_FILE,
    MODEL_DIR,
    RECIPE_FILE,
    SHIPPED_DATASETS,
    Recipe,
)
from arbx_dagster.domain.matching.training import LABEL, TrainedPairModel
from arbx_dagster.domain.matching.training_pairs import (
    DEFAULT_SIMULATOR_PRODUCTS,
    labelled_pairs,
    simulated_listings,
)
from arbx_dagster.domain.matching.transfer import train_transfer_model

VALIDATION_SEED = 1013  # a simulated market neither the corpus (1009), the demo (7) nor tests use


def build(
    datasets: Iterable[str | Path] = SHIPPED_DATASETS,
    *,
    root: Path | None = None,
    out: Path = MODEL_DIR,
    seed: int = 0,
    progress=None,
) -> Recipe:
    """Build the corpus, run the recipe and write both files into ``out``."""
    corpus = build_corpus((load_benchmark(d, root) for d in datasets), progress=progress)
    model = train_transfer_model(corpus, seed=seed, progress=progress)
    recipe = Recipe(
        version=model.version,
        sources=dict(corpus.group_by("source").len().sort("source").iter_rows()),
        calibration=model.calibration or (1.0, 0.0),
        threshold=model.threshold,
        metrics=model.metrics | _validation(model),
        settings=model.settings,
        seed=seed,
        columns=model.columns,
    )
    out.mkdir(parents=True, exist_ok=True)
    corpus.write_parquet(out / CORPUS_FILE, compression="zstd", compression_level=19)
    (out / RECIPE_FILE).write_text(recipe.to_json(), encoding="utf-8")
    return recipe


def _validation(model: TrainedPairModel) -> dict[str, float]:
    """Precision, recall and F1 at the model's cut on a simulated market it never saw
    (another seed than the corpus's): the floor the ``match_model`` check guards."""
    listings, truth = simulated_listings(VALIDATION_SEED, DEFAULT_SIMULATOR_PRODUCTS // 2)
    pairs = labelled_pairs(listings, truth=truth)
    labels = pairs[LABEL].cast(pl.Int64).to_numpy()
    metrics = binary_metrics(labels, model.predict_proba(pairs) >= model.threshold)
    return metrics | {"valid_pairs": float(pairs.height), "valid_matches": float(labels.sum())}
