"""The learned pair scorer: training, threshold choice, versioning, serialisation.

A ``TrainedPairModel`` is a gradient-boosted classifier over the ``pair_features`` frame
with calibrated probabilities, the decision threshold chosen on validation pairs only,
the validation metrics at that threshold, and a version string derived from the training
data and the settings (same data + same settings = same version). It satisfies the
``PairScorer`` protocol, so ``match_listings(listings, scorer=model)`` uses it directly;
``to_bytes`` / ``from_bytes`` let an asset store keep it.

The rows it is trained on come from ``training_pairs`` (simulated markets and user
decisions) and public benchmarks; the model the pipeline uses is built from them by
``transfer`` / ``shipped``.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from arbx_dagster.domain.matching.conflicts import cap_conflicts, open_pairs
from arbx_dagster.domain.matching.features import FEATURE_COLUMNS
from arbx_dagster.domain.matching.tokens import (
    GRAM_SIZES,
    TokenEvidence,
    fit_token_evidence,
    out_of_fold_scores,
)

if TYPE_CHECKING:  # scikit-learn is imported where models are fit (it loads for seconds)
    from sklearn.ensemble import HistGradientBoostingClassifier

FORMAT = 2
LABEL = "label"
# Gradient boosting runs single-threaded: its OpenMP loops synchronise per tree node, and
# on a small machine shared with Polars and other jobs two threads were 10-20x slower
# than one (measured: 35 s vs 2 s for 6k pairs).

# The pipeline's model never looks at prices: a price gap is exactly what ArbX is looking
# for, so it must not argue against two listings being the same product.
PRICE_FEATURES = ("price_ratio",)
PIPELINE_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c not in PRICE_FEATURES)


@dataclass(frozen=True)
class ModelSettings:
    """Hyper-parameters of the learned scorer (part of the model version).

    ``calibration_folds`` > 1 calibrates the probabilities (sigmoid) on out-of-fold
    predictions; with ``calibration_ensemble`` the fold models are kept and averaged (a
    little steadier, but scoring costs one model per fold: on 766k candidate pairs,
    ~25 s instead of ~6 s, for no gain on abt_buy's validation pairs). The defaults
    (100 trees of 31 leaves, one calibrated model) were chosen on validation F1 and
    scoring time among a few settings; the test split played no part.
    ``label_weight`` is the sample weight of user-labelled pairs relative to generated ones.
    """

    max_iter: int = 100
    learning_rate: float = 0.1
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 20
    l2_regularization: float = 1.0
    max_features: float = 0.7
    calibration_folds: int = 3
    calibration_ensemble: bool = False
    label_weight: float = 5.0


@dataclass(frozen=True)
class TrainedPairModel:
    """A fitted pair classifier with its threshold, validation metrics and version.

    ``tokens``: the word weights behind the ``token_evidence`` feature, when the model
    was trained with them (the featurizer computes it from them; a frame that carries
    ``left_title`` / ``right_title`` gets it here). ``calibration``: ``(a, b)`` of a
    logistic map ``p = 1 / (1 + exp(-(a * raw + b)))`` of the classifier's raw log-odds,
    fitted where the model met data it was not trained on (see ``transfer``); without it
    the classifier's own calibrated probabilities are used.
    """

    model: Any
    columns: tuple[str, ...]
    threshold: float
    metrics: dict[str, float]
    version: str
    settings: ModelSettings = field(default_factory=ModelSettings)
    tokens: TokenEvidence | None = None
    calibration: tuple[float, float] | None = None

    def raw_scores(self, features: pl.DataFrame) -> np.ndarray:
        """The classifier's log-odds per row (before any calibration)."""
        if features.height == 0:
            return np.empty(0, dtype=np.float64)
        x = self._matrix(features)
        with threadpool_limits(1, user_api="openmp"):
            if hasattr(self.model, "decision_function"):
                return np.asarray(self.model.decision_function(x), dtype=np.float64)
            proba = self.model.predict_proba(x)[:, list(self.model.classes_).index(1)]
        proba = np.clip(proba, 1e-9, 1 - 1e-9)
        return np.log(proba / (1.0 - proba))

    def predict_proba(self, features: pl.DataFrame) -> np.ndarray:
        """Calibrated match probability per row of a ``pair_features`` frame, capped
        where the pair's identity evidence conflicts (``conflicts``)."""
        if features.height == 0:
            return np.empty(0, dtype=np.float64)
        if self.calibration is not None:
            a, b = self.calibration
            proba = 1.0 / (1.0 + np.exp(-(a * self.raw_scores(features) + b)))
        else:
            x = self._matrix(features)
            with threadpool_limits(1, user_api="openmp"):
                fitted = self.model.predict_proba(x)
            proba = fitted[:, list(self.model.classes_).index(1)]
        return cap_conflicts(features, np.asarray(proba, dtype=np.float64))

    def _matrix(self, features: pl.DataFrame) -> np.ndarray:
        return (
            with_token_evidence(features, self.tokens)
            .select(self.columns)
            .cast(pl.Float64)
            .to_numpy()
        )

    def to_bytes(self) -> bytes:
        """Serialised model (pickle of scikit-learn objects: load only trusted bytes)."""
        payload = {
            "format": FORMAT,
            "sklearn": _sklearn_version(),
            "model": self.model,
            "columns": list(self.columns),
            "threshold": self.threshold,
            "metrics": dict(self.metrics),
            "version": self.version,
            "settings": asdict(self.settings),
            "tokens": self.tokens,
            "calibration": self.calibration,
        }
        buffer = io.BytesIO()
        pickle.dump(payload, buffer, protocol=pickle.HIGHEST_PROTOCOL)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainedPairModel:
        payload = pickle.loads(data)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise ValueError("not a serialised TrainedPairModel (or an incompatible format)")
        return cls(
            model=payload["model"],
            columns=tuple(payload["columns"]),
            threshold=float(payload["threshold"]),
            metrics=dict(payload["metrics"]),
            version=str(payload["version"]),
            settings=ModelSettings(**payload["settings"]),
            tokens=payload["tokens"],
            calibration=payload["calibration"],
        )


# Frames built outside the featurizer (labelled pairs) carry the two titles instead.
TITLE_COLUMNS = ("left_title", "right_title")


def with_token_evidence(frame: pl.DataFrame, tokens: TokenEvidence | None) -> pl.DataFrame:
    """``frame`` with ``token_evidence`` from its title columns, when it has them and there
    are word weights (otherwise as it is: the featurizer has filled the column)."""
    if tokens is None or not set(TITLE_COLUMNS) <= set(frame.columns):
        return frame
    scores = tokens.pair_scores(frame["left_title"], frame["right_title"])
    return frame.with_columns(token_evidence=pl.Series(scores, dtype=pl.Float64))


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _classifier(settings: ModelSettings, seed: int) -> HistGradientBoostingClassifier:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=settings.max_iter,
        learning_rate=settings.learning_rate,
        max_leaf_nodes=settings.max_leaf_nodes,
        min_samples_leaf=settings.min_samples_leaf,
        l2_regularization=settings.l2_regularization,
        max_features=settings.max_features,
        early_stopping=False,
        random_state=seed,
    )


def usable_columns(
    frame: pl.DataFrame, columns: tuple[str, ...] = FEATURE_COLUMNS
) -> tuple[str, ...]:
    """Feature columns present and not entirely missing (NaN / null) in ``frame``."""
    out = []
    for c in columns:
        if c not in frame.columns:
            continue
        values = frame[c].cast(pl.Float64)
        if (values.is_not_null() & values.is_not_nan()).any():
            out.append(c)
    return tuple(out)


def choose_threshold(labels: np.ndarray, proba: np.ndarray) -> tuple[float, dict[str, float]]:
    """The probability cut with the best F1 on validation pairs, and the metrics there.

    Candidates are 0.01 .. 0.99; when several reach the best F1 the middle of that run is
    taken, which is less sensitive to a single validation pair than its edge.
    """
    y = np.asarray(labels, dtype=bool)
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    predicted = proba[None, :] >= grid[:, None]
    tp = (predicted & y).sum(axis=1).astype(float)
    n_pred = predicted.sum(axis=1).astype(float)
    n_true = float(y.sum())
    precision = np.divide(tp, n_pred, out=np.zeros_like(tp), where=n_pred > 0)
    recall = tp / n_true if n_true else np.zeros_like(tp)
    f1 = np.divide(
        2 * precision * recall,
        precision + recall,
        out=np.zeros_like(tp),
        where=(precision + recall) > 0,
    )
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    # the middle of the longest run of consecutive best thresholds
    runs = np.split(best, np.flatnonzero(np.diff(best) > 1) + 1)
    run = max(runs, key=len)
    pick = int(run[len(run) // 2])
    return float(grid[pick]), {
        "precision": float(precision[pick]),
        "recall": float(recall[pick]),
        "f1": float(f1[pick]),
    }


def _digest(*parts: Any) -> str:
    """SHA-256 over frames' values (stable across library versions) and reprs of the rest."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, pl.DataFrame):
            for name in part.columns:
                column = part[name]
                h.update(f"{name}:{column.dtype}:{column.len()}".encode())
                if column.dtype.is_numeric() or column.dtype == pl.Boolean:
                    values = column.cast(pl.Float64).fill_null(np.nan).to_numpy()
                    h.update(np.nan_to_num(values, nan=-1.2345e300).tobytes())
                else:
                    h.update("\x00".join(map(str, column.to_list())).encode())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()


def train_pair_model(
    train: pl.DataFrame,
    valid: pl.DataFrame | None = None,
    *,
    seed: int = 0,
    settings: ModelSettings | None = None,
    weight: str | None = None,
    columns: tuple[str, ...] = FEATURE_COLUMNS,
    tokens: bool = False,
) -> TrainedPairModel:
    """Fit the pair classifier on ``train`` and choose its threshold on ``valid``.

    Both frames hold feature columns and ``label`` (0/1); ``weight`` names an optional
    column of ``train`` with integer sample weights (rows are repeated that many times).
    Without ``valid``, a fifth of the training pairs (whole listings at a time, so one
    listing's candidates stay together) is held out for the threshold. Validation labels
    never reach the classifier, nor do pairs an identity rule decides (``open_pairs``).
    ``tokens``: also learn word weights (``tokens``) from the pairs' titles
    (``TITLE_COLUMNS``, in both frames) and use them as ``token_evidence``, out of fold on
    the training pairs (whole words, or words and n-grams: ``TOKEN_CHOICES``, whichever
    scores the better F1 on ``valid``).
    """
    return train_selected_model(
        train,
        valid,
        choices=(settings or ModelSettings(),),
        seed=seed,
        weight=weight,
        columns=columns,
        tokens=tokens,
    )


# What ``train_selected_model`` chooses among by default: the default boosting and one
# with three times the trees (a training set of tens of thousands of pairs supports more).
CAPACITY_CHOICES = (ModelSettings(), ModelSettings(max_iter=300))


# The word weights' vocabularies tried with ``tokens``: whole words, then words and their
# character n-grams (``tokens.GRAM_SIZES``). On the WDC sets' validation pairs the n-grams
# were better (+0.8 to +1.4 F1 points), on Abt-Buy's whole words (-0.1 with n-grams).
TOKEN_CHOICES: tuple[tuple[int, ...], ...] = ((), GRAM_SIZES)


@dataclass(frozen=True)
class _Prepared:
    """Training and validation pairs made ready once for every settings tried: the word
    weights, the usable columns and the classifier's input matrix."""

    train: pl.DataFrame
    valid: pl.DataFrame
    words: TokenEvidence | None
    use: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    seed: int
    weight: str | None


def _prepare(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    words: TokenEvidence | None,
    columns: tuple[str, ...],
    seed: int,
    weight: str | None,
) -> _Prepared:
    use = usable_columns(train, columns)
    fit_rows = _weighted_rows(train, use, weight)
    x = fit_rows.select(use).cast(pl.Float64).to_numpy()
    y = fit_rows[LABEL].cast(pl.Int64).to_numpy()
    return _Prepared(train, valid, words, use, x, y, seed, weight)


def train_selected_model(
    train: pl.DataFrame,
    valid: pl.DataFrame | None,
    *,
    choices: Sequence[ModelSettings] = CAPACITY_CHOICES,
    seed: int = 0,
    weight: str | None = None,
    columns: tuple[str, ...] = FEATURE_COLUMNS,
    tokens: bool = False,
) -> TrainedPairModel:
    """``train_pair_model`` once per settings of ``choices`` (and, with ``tokens``, once
    per vocabulary of ``TOKEN_CHOICES``); the model with the best F1 on ``valid`` (the
    first of equals) — settings chosen where the threshold is, never on the pairs the
    result is reported on. The pairs are prepared (held out, word weights learned) once
    for all settings."""
    if not choices:
        raise ValueError("choices must name at least one ModelSettings")
    if valid is None:
        train, valid = _holdout(train, seed)
    train = open_pairs(train)
    if train.height == 0 or train[LABEL].n_unique() < 2:
        raise ValueError("training pairs need both matches and non-matches")
    if tokens:
        columns = tuple(dict.fromkeys((*columns, "token_evidence")))
        prepared = [
            _prepare(*_with_learned_tokens(train, valid, seed, grams), columns, seed, weight)
            for grams in TOKEN_CHOICES
        ]
    else:
        prepared = [_prepare(train, valid, None, columns, seed, weight)]
    models = [_fit(ready, settings) for ready in prepared for settings in choices]
    return max(models, key=lambda model: model.metrics["f1"])  # the first of equals


def _fit(ready: _Prepared, settings: ModelSettings) -> TrainedPairModel:
    model = _calibrated_classifier(settings, ready.seed, ready.y)
    with threadpool_limits(1, user_api="openmp"):
        model.fit(ready.x, ready.y)
    scorer = TrainedPairModel(model, ready.use, 0.5, {}, "", settings, tokens=ready.words)
    proba = scorer.predict_proba(ready.valid)
    labels = ready.valid[LABEL].cast(pl.Int64).to_numpy()
    threshold, metrics = choose_threshold(labels, proba)
    metrics |= {
        "train_pairs": float(ready.train.height),
        "train_matches": float(ready.y.sum()),
        "valid_pairs": float(ready.valid.height),
        "valid_matches": float(labels.sum()),
    }
    version = _model_version(
        ready.train, ready.valid, ready.use, ready.weight, settings, ready.seed
    )
    return TrainedPairModel(
        model, ready.use, threshold, metrics, version, settings, tokens=ready.words
    )


def _with_learned_tokens(
    train: pl.DataFrame, valid: pl.DataFrame, seed: int, gram_sizes: tuple[int, ...]
) -> tuple[pl.DataFrame, pl.DataFrame, TokenEvidence]:
    """Word weights learned from the training pairs' titles; ``token_evidence`` out of
    fold on ``train`` and from those weights on ``valid``."""
    y_all = train[LABEL].cast(pl.Int64).to_numpy()
    left, right = train["left_title"], train["right_title"]
    words = fit_token_evidence(left, right, y_all, gram_sizes=gram_sizes)
    oof = out_of_fold_scores(left, right, y_all, seed=seed, gram_sizes=gram_sizes)
    train = train.with_columns(token_evidence=pl.Series(oof, dtype=pl.Float64))
    return train, with_token_evidence(valid, words), words


def _weighted_rows(train: pl.DataFrame, use: tuple[str, ...], weight: str | None) -> pl.DataFrame:
    """The rows the classifier is fit on: ``train``, each row repeated ``weight`` times."""
    if not weight:
        return train
    # Integer weights as repeated rows: scikit-learn's weighted binning is >10x slower.
    repeats = train[weight].cast(pl.Float64).round(0).clip(lower_bound=1).cast(pl.Int64)
    return (
        train.select(*use, LABEL)
        .with_columns(repeats.alias("_n"))
        .select(pl.all().exclude("_n").repeat_by(pl.col("_n")).explode())
    )


def _calibrated_classifier(settings: ModelSettings, seed: int, y: np.ndarray) -> Any:
    """The classifier, wrapped in sigmoid calibration on ``calibration_folds`` folds when
    both classes of ``y`` have at least that many pairs."""
    base = _classifier(settings, seed)
    folds = settings.calibration_folds
    if folds > 1 and int(y.sum()) >= folds and int((1 - y).sum()) >= folds:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold

        return CalibratedClassifierCV(
            base,
            method="sigmoid",
            cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
            ensemble=settings.calibration_ensemble,
        )
    return base


def _model_version(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    use: tuple[str, ...],
    weight: str | None,
    settings: ModelSettings,
    seed: int,
) -> str:
    """``pm-`` and a digest of the training data, the settings and the library version."""
    return (
        "pm-"
        + _digest(
            train.select(*use, LABEL, *([weight] if weight else [])),
            valid.select(*[c for c in use if c in valid.columns], LABEL),
            asdict(settings),
            seed,
            use,
            _sklearn_version(),
            FORMAT,
        )[:16]
    )


def _holdout(frame: pl.DataFrame, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split pairs ~80/20 by their left listing (``i``), keeping each listing's pairs together."""
    key = "i" if "i" in frame.columns else None
    if key is None:
        mask = np.random.default_rng(seed).random(frame.height) < 0.2
    else:
        ids = frame[key].unique().sort().to_numpy()
        held = set(ids[np.random.default_rng(seed).random(len(ids)) < 0.2].tolist())
        mask = frame[key].is_in(list(held)).to_numpy()
    return frame.filter(~pl.Series(mask)), frame.filter(pl.Series(mask))
