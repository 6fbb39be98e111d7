"""Token evidence: what each title word says when both listings have it, or only one.

A linear model over the words of a pair's two titles, with two weights per word: one for
a word both titles contain and one for a word only one of them has. Optionally each
word's character n-grams (``GRAM_SIZES``) are terms too, so spellings of one thing share
weight ('4gb' and '4go'), and a code one character off shares most of its n-grams with the
other. Trained on a catalogue's own labelled pairs it learns that catalogue's vocabulary
(that 'dcs2332l' on one side only means another camera, that a shop's name on one side
means nothing); its log-odds become the ``token_evidence`` feature of the pair
classifier. Out-of-fold scores feed the classifier's training rows, so it never trusts an
evidence fitted on the very pair it is learning from.

Because it learns words, it helps on the catalogue it was trained on and little
elsewhere: the model ArbX ships for catalogues without labels does not use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

MIN_PAIRS = 2  # a term must occur in this many training pairs to get weights
FOLDS = 5
# Character n-grams of each word, the word padded with a space on both sides (scikit-learn's
# "char_wb"). 2-4 did better than 3-5 on the WDC sets' validation pairs; whether a catalogue
# is better served with them or with whole words only is chosen on its validation pairs
# (``training.TOKEN_CHOICES``).
GRAM_SIZES = (2, 3, 4)
GRAM_MARK = "#"  # an n-gram term is written '#' + n-gram, apart from the words


def _words(titles: pl.Series, gram_sizes: tuple[int, ...] = ()) -> pl.DataFrame:
    """``row, word``: each title's distinct terms, its words and the character n-grams of
    ``gram_sizes`` of each word."""
    words = (
        pl.DataFrame({"t": titles.fill_null("")})
        .with_row_index("row")
        .select(pl.col("row").cast(pl.Int64), pl.col("t").str.split(" ").alias("w"))
        .explode("w")
        .filter(pl.col("w").str.len_chars() > 0)
    )
    padded = words.select("row", (" " + pl.col("w") + " ").alias("p"))
    grams = [
        padded.with_columns(k=pl.int_ranges(0, pl.col("p").str.len_chars() - (n - 1)))
        .explode("k")
        .drop_nulls("k")  # a word shorter than n - 2 has no n-gram of that size
        .select("row", (GRAM_MARK + pl.col("p").str.slice(pl.col("k"), n)).alias("w"))
        for n in gram_sizes
    ]
    return pl.concat([words, *grams]).unique(maintain_order=True)


def _presence(
    titles: pl.Series, vocabulary: dict[str, int], gram_sizes: tuple[int, ...]
) -> sp.csr_matrix:
    """0/1 rows (titles x vocabulary); terms outside the vocabulary are dropped."""
    return _presence_of(_words(titles, gram_sizes), titles.len(), vocabulary)


def _presence_of(words: pl.DataFrame, rows: int, vocabulary: dict[str, int]) -> sp.csr_matrix:
    """``_presence`` from the terms ``_words`` found in ``rows`` titles."""
    ids = words["w"].replace_strict(vocabulary, default=-1, return_dtype=pl.Int64).to_numpy()
    keep = ids >= 0
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (words["row"].to_numpy()[keep], ids[keep])),
        shape=(rows, max(len(vocabulary), 1)),
    )


def _design(left: sp.csr_matrix, right: sp.csr_matrix) -> sp.csr_matrix:
    """Per pair: [words both have | words one has] side by side."""
    both = left.multiply(right).tocsr()
    one = (left + right - 2 * both).tocsr()
    return sp.hstack([both, one]).tocsr()


@dataclass(frozen=True)
class TokenEvidence:
    """Per-term weights: ``shared`` when both titles have the term, ``one_side`` when
    only one does; ``score`` is ``bias + sum`` of the weights that apply (log-odds).
    ``gram_sizes``: the character n-grams that are terms besides the words (see ``_words``)."""

    vocabulary: tuple[str, ...]
    shared: np.ndarray
    one_side: np.ndarray
    bias: float
    gram_sizes: tuple[int, ...] = ()

    def _index(self) -> dict[str, int]:
        return {word: k for k, word in enumerate(self.vocabulary)}

    def listing_matrix(self, titles: pl.Series) -> sp.csr_matrix:
        """Word presence of each title (rows in the order of ``titles``)."""
        return _presence(titles, self._index(), self.gram_sizes)

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
            sp.vstack(
                [_presence(left, index, self.gram_sizes), _presence(right, index, self.gram_sizes)]
            ).tocsr(),
            np.arange(left.len()),
            np.arange(left.len()) + left.len(),
        )


def fit_token_evidence(
    left: pl.Series,
    right: pl.Series,
    labels: np.ndarray,
    *,
    c: float = 1.0,
    gram_sizes: tuple[int, ...] = (),
) -> TokenEvidence:
    """L2-regularised logistic regression over the pairs' shared and one-sided terms
    (words, and the character n-grams of ``gram_sizes``)."""
    from sklearn.linear_model import LogisticRegression

    left_words, right_words = _words(left, gram_sizes), _words(right, gram_sizes)
    counts = pl.concat([left_words, right_words]).group_by("w").len()
    vocabulary = tuple(sorted(counts.filter(pl.col("len") >= MIN_PAIRS)["w"].to_list()))
    index = {word: k for k, word in enumerate(vocabulary)}
    design = _design(
        _presence_of(left_words, left.len(), index), _presence_of(right_words, right.len(), index)
    )
    model = LogisticRegression(C=c, max_iter=2000).fit(design, np.asarray(labels, dtype=int))
    weights = model.coef_.ravel()
    n = max(len(vocabulary), 1)
    return TokenEvidence(
        vocabulary,
        weights[:n].astype(np.float32),
        weights[n:].astype(np.float32),
        float(model.intercept_[0]),
        gram_sizes,
    )


def out_of_fold_scores(
    left: pl.Series,
    right: pl.Series,
    labels: np.ndarray,
    *,
    seed: int = 0,
    folds: int = FOLDS,
    gram_sizes: tuple[int, ...] = (),
) -> np.ndarray:
    """Each pair's token evidence from a model fitted without it (``folds``-fold)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(labels, dtype=int)
    out = np.zeros(len(y), dtype=np.float64)
    if min(int(y.sum()), int((1 - y).sum())) < folds:
        return out
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y):
        fitted = fit_token_evidence(
            left.gather(train), right.gather(train), y[train], gram_sizes=gram_sizes
        )
        out[held] = fitted.pair_scores(left.gather(held), right.gather(held))
    return out
