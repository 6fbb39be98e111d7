"""The match model ArbX ships: built once from public data, loaded by the pipeline.

``arbx model build`` (``bench.shipped_model``) runs the transfer recipe (``transfer``) on
the corpus (``corpus``: the simulated Chilean market plus the public benchmarks named in
``SHIPPED_DATASETS``) and writes two files into the package (``arbx_dagster/models``):

* ``match_corpus.parquet``: the labelled pairs, as feature rows (no prices, no test
  split of any benchmark);
* ``match_model.json``: what the recipe decided (calibration, threshold, the held-out
  metrics behind them, precision and recall on a simulated market of another seed, the
  version, the sources and their sizes).

Loading refits the final classifier on the corpus with the recorded settings and seed (a
few seconds, identical trees for the same library versions) rather than unpickling
scikit-learn objects across versions. User labels adapt it: their pairs join the corpus
with ``label_weight`` each (``load_model(labels=...)``), and the calibration and cut stay
those the recipe measured on held-out markets.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from arbx_dagster.domain.matching.corpus import CORPUS_SCHEMA
from arbx_dagster.domain.matching.training import (
    FORMAT,
    LABEL,
    ModelSettings,
    TrainedPairModel,
    _digest,
)
from arbx_dagster.domain.matching.training_pairs import labelled_pairs
from arbx_dagster.domain.matching.transfer import (
    TRANSFER_SETTINGS,
    fit_weighted,
)

# The public benchmarks the shipped model learns from (``../shared/datasets``).
SHIPPED_DATASETS = ("abt_buy", "wdc_cameras", "wdc_computers")
MODEL_DIR = Path(__file__).resolve().parents[2] / "models"
CORPUS_FILE = "match_corpus.parquet"
RECIPE_FILE = "match_model.json"
USER = "user"


class ShippedModelError(RuntimeError):
    """The shipped model files are missing or do not fit this code."""


@dataclass(frozen=True)
class Recipe:
    """What ``match_model.json`` records."""

    version: str
    sources: dict[str, int]
    calibration: tuple[float, float]
    threshold: float
    metrics: dict[str, float]
    settings: ModelSettings
    seed: int
    columns: tuple[str, ...]

    def to_json(self) -> str:
        payload = asdict(self) | {"format": FORMAT, "settings": asdict(self.settings)}
        return json.dumps(payload, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        data = json.loads(text)
        return cls(
            version=str(data["version"]),
            sources={str(k): int(v) for k, v in data["sources"].items()},
            calibration=(float(data["calibration"][0]), float(data["calibration"][1])),
            threshold=float(data["threshold"]),
            metrics={str(k): float(v) for k, v in data["metrics"].items()},
            settings=ModelSettings(**data["settings"]),
            seed=int(data["seed"]),
            columns=tuple(data["columns"]),
        )


def read_recipe(directory: Path = MODEL_DIR) -> Recipe:
    path = directory / RECIPE_FILE
    if not path.is_file():
        raise ShippedModelError(f"{path} is missing: build it with `arbx model build`")
    return Recipe.from_json(path.read_text(encoding="utf-8"))


def read_corpus(directory: Path = MODEL_DIR) -> pl.DataFrame:
    path = directory / CORPUS_FILE
    if not path.is_file():
        raise ShippedModelError(f"{path} is missing: build it with `arbx model build`")
    corpus = pl.read_parquet(path)
    if list(corpus.columns) != list(CORPUS_SCHEMA):
        raise ShippedModelError(
            f"{path} was built for other pair features than this code computes: "
            "rebuild it with `arbx model build`"
        )
    return corpus


def load_model(
    labels: pl.DataFrame | None = None, *, directory: Path = MODEL_DIR
) -> TrainedPairModel:
    """The shipped model; with ``labels`` (labelled pair rows: ``CORPUS_SCHEMA`` features
    and ``label``, e.g. ``training_pairs.labelled_pairs(listings, labels=...)``), adapted to
    them. The same inputs always give the same model and version."""
    recipe = read_recipe(directory)
    if labels is None or labels.height == 0:
        return _cached(str(directory), recipe.version)
    user = labels.select(
        *[pl.col(c) for c in CORPUS_SCHEMA if c != "source" and c in labels.columns]
    ).with_columns(pl.lit(USER).alias("source"))
    corpus = read_corpus(directory)
    user = user.select(
        [
            (pl.col(c) if c in user.columns else pl.lit(None)).cast(t).alias(c)
            for c, t in CORPUS_SCHEMA.items()
        ]
    )
    version = "tm-" + _digest(recipe.version, user.select(*recipe.columns, LABEL))[:16]
    return _assemble(recipe, corpus, user, version)


@functools.lru_cache(maxsize=2)
def _cached(directory: str, version: str) -> TrainedPairModel:
    recipe = read_recipe(Path(directory))
    return _assemble(recipe, read_corpus(Path(directory)), None, version)


def _assemble(
    recipe: Recipe, corpus: pl.DataFrame, user: pl.DataFrame | None, version: str
) -> TrainedPairModel:
    settings = recipe.settings or TRANSFER_SETTINGS
    model, columns = fit_weighted(corpus, settings, recipe.seed, extra=user)
    metrics = dict(recipe.metrics) | {
        "user_labels": float(0 if user is None else user.height),
    }
    return TrainedPairModel(
        model,
        columns,
        recipe.threshold,
        metrics,
        version,
        settings,
        calibration=recipe.calibration,
    )


def pipeline_model(
    labels: pl.DataFrame | None = None,
    listings: pl.DataFrame | None = None,
    *,
    directory: Path = MODEL_DIR,
) -> TrainedPairModel:
    """The model the pipeline's ``product_matches`` uses: the shipped model, adapted to
    the pairs users labelled (``training_pairs.LABEL_SCHEMA``), featurised against the current
    enriched ``listings`` (labels on listings that are gone are skipped)."""
    if labels is None or labels.height == 0 or listings is None or listings.height == 0:
        return load_model(directory=directory)
    rows = labelled_pairs(listings, labels=labels).filter(pl.col("source") == "user")
    return load_model(rows, directory=directory)


def shipped_sources(directory: Path = MODEL_DIR) -> tuple[str, ...]:
    """The sources the shipped model was trained on (``simulator`` and dataset names)."""
    return tuple(read_recipe(directory).sources)
