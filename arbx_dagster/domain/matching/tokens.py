"""Token evidence: what each title word says when both listings have it, or only one.

A linear model over the words of a pair's two titles, with two weights per word: one for
a word both titles contain and one for a word only one of them has. Trained on a
catalogue's own labelled pairs it learns that catalogue's vocabulary (that 'dcs2332l' on
one side only means another camera, that a shop's name on one side means nothing); its
log-odds become the ``token_evidence`` feature of the pair classifier. Out-of-fold scores
feed the classifier's training rows, so it never trusts an evidence fitted on the very
pair it is learning from.

Because it learns words, it helps on the catalogue it was trained on and little
elsewhere: the model ArbX ships for catalogues without labels does not use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

MIN_PAIRS = 2  # a word must occur in this many training pairs to get weights
FOLDS = 5


def _words(titles: pl.Series) -> pl.DataFrame:
    """``row, word``: each title's distinct words."""
    return (
        pl.DataFrame({"t": titles.fill_null("")})
        .with_row_index("row")
        .select(pl.col("row").cast(pl.Int64), pl.col("t").str.split(" ").list.unique().alias("w"))
        .explode("w")
        .filter(pl.col("w").str.len_chars() > 0)
    )


def _presence(titles: pl.Series, vocabulary: dict[str, int]) -> sp.csr_matrix:
    """0/1 rows (titles x vocabulary); words outside the vocabulary are dropped."""
    words = _words(titles)
    ids = words["w"].replace_strict(vocabulary, default=-1, return_dtype=pl.Int64).to_numpy()
    keep = ids >= 0
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (words["row"].to_numpy()[keep], ids[keep])),
        shape=(titles.len(), max(len(vocabulary), 1)),
    )


def _design(left: sp.csr_matrix, right: sp.csr_matrix) -> sp.csr_matrix:
    """Per pair: [words both have | words one has] side by side."""
    both = left.multiply(right).tocsr()
    one = (left + right - 2 * both).tocsr()
    return sp.hstack([both, one]).tocsr()


@dataclass(frozen=True)
class TokenEvidence:
    """Per-word weights: ``shared`` when both titles have the word, ``one_side`` when
    only one does; ``score`` is ``bias + sum`` of the weights that apply (log-odds)."""

    vocabulary: tuple[str, ...]
    shared: np.ndarray
    one_side: np.ndarray
    bias: float

    def _index(self) -> dict[str, int]:
        return {word: k for k, word in enumerate(self.vocabulary)}

    def listing_matrix(self, titles: pl.Series) -> sp.csr_matrix:
        """Word presence of each title (rows in the order of ``titles``)."""
        return _presence(titles, self._index())

    def scores(self, matrix: sp.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Log-odds of the pairs ``(i[k], j[k])`` of ``listing_matrix`` rows."""
        if len(i) == 0:
            return np.empty(0, dtype=np.float64)
        design = _design(matrix[i], matrix[j])
        weights = np.concatenate([self.shared, self.one_side]).astype(np.float64)
        return self.bias + design @ weights

    def pair_scores(self, left: pl.Series, right: pl.Series) -> np.ndarray:
        """Log-odds of pairs given as two aligned series of titles."""
        index = self._index()
        return self.scores(
            sp.vstack([_presence(left, index), _presence(right, index)]).tocsr(),
            np.arange(left.len()),
            np.arange(left.len()) + left.len(),
        )


def fit_token_evidence(
    left: pl.Series, right: pl.Series, labels: np.ndarray, *, c: float = 1.0
) -> TokenEvidence:
    """L2-regularised logistic regression over the pairs' shared and one-sided words."""
    from sklearn.linear_model import LogisticRegression

    words = pl.concat([_words(left), _words(right)])
    counts = words.group_by("w").len()
    vocabulary = tuple(sorted(counts.filter(pl.col("len") >= MIN_PAIRS)["w"].to_list()))
    index = {word: k for k, word in enumerate(vocabulary)}
    design = _design(_presence(left, index), _presence(right, index))
    model = LogisticRegression(C=c, max_iter=2000).fit(design, np.asarray(labels, dtype=int))
    weights = model.coef_.ravel()
    n = max(len(vocabulary), 1)
    return TokenEvidence(
        vocabulary,
        weights[:n].astype(np.float32),
        weights[n:].astype(np.float32),
        float(model.intercept_[0]),
    )


def out_of_fold_scores(
    left: pl.Series, right: pl.Series, labels: np.ndarray, *, seed: int = 0, folds: int = FOLDS
) -> np.ndarray:
    """Each pair's token evidence from a model fitted without it (``folds``-fold)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels, dtype=int)
    out = np.zeros(len(y), dtype=np.float64)
    if min(int(y.sum()), int((1 - y).sum())) < folds:
        return out
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y):
        fitted = fit_token_evidence(left.gather(train), right.gather(train), y[train])
        out[held] = fitted.pair_scores(left.gather(held), right.gather(held))
    return out
