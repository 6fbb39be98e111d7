"""Turning a pair's features into a match probability.

Two kinds of scorer read the same feature frame (``features.pair_features``):

* ``RuleScorer``: unsupervised, hand-set log-odds for each piece of evidence squashed
  with a logistic, so every decision can be explained as "+3.5 for the same model code,
  -4 for 128gb vs 256gb". It is the fallback when no trained model exists.
* a learned classifier: ``training.TrainedPairModel`` (gradient boosting, calibrated,
  threshold chosen on validation pairs), or any fitted scikit-learn classifier through
  ``SklearnPairScorer``. Anything with ``threshold`` and ``predict_proba(features)``
  fits ``PairScorer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from arbx_dagster.domain.matching.features import FEATURE_COLUMNS


@runtime_checkable
class PairScorer(Protocol):
    """Scores a ``pair_features`` frame: one match probability in [0, 1] per row."""

    threshold: float

    def predict_proba(self, features: pl.DataFrame) -> np.ndarray: ...


def _col(features: pl.DataFrame, name: str) -> np.ndarray:
    return features[name].cast(pl.Float64).to_numpy()


@dataclass(frozen=True)
class RuleScorer:
    """Transparent weighted evidence, in log-odds, squashed to a probability.

    ``z = bias + text_weight * (text - text_pivot) + code + units + numbers + variant
    + brand + price + rank``, ``p = 1 / (1 + exp(-z))``. The weights are set by domain
    reasoning (how much each fact should move the odds), not fitted; they were sanity-checked
    on the abt_buy benchmark and on the market simulator. Where:

    * ``text`` = 0.5 cosine + 0.25 token_set + 0.25 token_sort: titles that share most
      of their words and n-grams; ``text_pivot`` is where title similarity alone is
      neutral evidence;
    * model codes: the same code (exactly or inside the other title) is near-proof; the
      same stem with a different suffix (often a colour, which stores sell as a separate
      product) only mildly for; two different codes strongly against;
    * a unit present on both sides with different values (50in vs 55in, 128gb vs 256gb)
      means a different variant: strongly against; so does the same word followed by a
      different number ('iphone 14' vs 'iphone 15', 'ideapad 3' vs 'ideapad 5'); stray
      plain numbers are weakly against;
    * variants of one line: different short model tokens (Tab A8 vs A10, OLED B2 vs G3),
      a tier word on one side only (iPhone 15 vs 15 Pro), two different colours (stores
      list each colour as its own SKU, and its own product);
    * two known, different brands (that do not appear in each other's titles): against;
    * price: deliberately weak, because the product exists to find listings whose price
      is far off (a glitch must still match its product);
    * rank: being far below a side's best candidate (cosine gap) is mild evidence against.
    """

    bias: float = -1.0
    text_weight: float = 10.0
    text_pivot: float = 0.55
    code_same: float = 3.5
    code_same_stem: float = 1.5
    code_conflict: float = -2.5
    short_code_conflict: float = -4.0
    unit_conflict: float = -8.0
    tier_one_side: float = -4.0
    tier_conflict: float = -3.0
    color_conflict: float = -2.5
    number_conflict: float = -1.0
    model_number_conflict: float = -3.0
    model_number_one_side: float = -1.5
    number_one_side: float = -0.2
    brand_match: float = 0.5
    brand_conflict: float = -3.0
    price_weight: float = 1.0
    rank_gap: float = -2.0
    threshold: float = 0.5
    feature_columns: tuple[str, ...] = field(default=FEATURE_COLUMNS, repr=False)

    def log_odds(self, features: pl.DataFrame) -> np.ndarray:
        """The summed evidence ``z`` per pair (before the logistic)."""
        f = {name: _col(features, name) for name in self.feature_columns}
        text = 0.5 * f["cosine"] + 0.25 * f["token_set"] + 0.25 * f["token_sort"]
        same_code = np.maximum(f["code_exact"], f["code_contained"])
        code = (
            np.where(
                same_code > 0,
                self.code_same,
                np.where(f["code_stem"] > 0, self.code_same_stem, 0.0),
            )
            + self.code_conflict * f["code_conflict"]
            + self.short_code_conflict * f["short_code_conflict"]
        )
        units = self.unit_conflict * np.minimum(f["unit_conflict"], 2.0)
        numbers = (
            self.number_conflict * f["number_conflict"]
            + self.number_one_side * np.minimum(f["number_one_side"], 5.0)
            + self.model_number_conflict * np.minimum(f["model_number_conflict"], 1.0)
            + self.model_number_one_side * np.minimum(f["model_number_one_side"], 1.0)
        )
        variant = (
            self.tier_one_side * np.minimum(f["tier_one_side"], 2.0)
            + self.tier_conflict * f["tier_conflict"]
            + self.color_conflict * f["color_conflict"]
        )
        brand = self.brand_match * f["brand_match"] + self.brand_conflict * f["brand_conflict"]
        price = np.nan_to_num(self.price_weight * (f["price_ratio"] - 0.5), nan=0.0)
        gap = np.minimum(f["cosine_gap_i"] + f["cosine_gap_j"], 1.0)
        return (
            self.bias
            + self.text_weight * (text - self.text_pivot)
            + code
            + units
            + numbers
            + variant
            + brand
            + price
            + self.rank_gap * gap
        )

    def predict_proba(self, features: pl.DataFrame) -> np.ndarray:
        """Match probability per row of a ``pair_features`` frame."""
        if features.height == 0:
            return np.empty(0, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-self.log_odds(features)))


@dataclass(frozen=True)
class SklearnPairScorer:
    """Adapter for a fitted scikit-learn classifier (phase 2).

    ``model.predict_proba`` is fed ``features[columns]`` as a float matrix (NaN kept:
    HistGradientBoostingClassifier handles it; wrap linear models in a Pipeline with an
    imputer). The positive class is the column whose label is 1 / True.
    """

    model: Any
    columns: tuple[str, ...] = FEATURE_COLUMNS
    threshold: float = 0.5

    def predict_proba(self, features: pl.DataFrame) -> np.ndarray:
        if features.height == 0:
            return np.empty(0, dtype=np.float64)
        x = features.select(self.columns).cast(pl.Float64).to_numpy()
        proba = self.model.predict_proba(x)
        classes = list(getattr(self.model, "classes_", [0, 1]))
        positive = classes.index(1) if 1 in classes else len(classes) - 1
        return np.asarray(proba[:, positive], dtype=np.float64)


def score_pairs(features: pl.DataFrame, scorer: PairScorer) -> pl.DataFrame:
    """``i, j, probability`` for every row of the feature frame."""
    proba = np.clip(scorer.predict_proba(features), 0.0, 1.0)
    return features.select("i", "j").with_columns(probability=pl.Series(proba, dtype=pl.Float64))
