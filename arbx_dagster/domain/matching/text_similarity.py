"""Title similarity of aligned pairs: TF-IDF cosines and IDF-weighted word overlap from
one sparse row-wise product (``StackedVectors``), and rapidfuzz's bulk string scorers
over titles and model codes (``ListingStrings``, C++ ``process.cpdist``).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
from rapidfuzz import distance, fuzz, process

from arbx_dagster.domain.matching.vectorize import TextVectors


class ListingStrings:
    """Per-listing strings as Python lists, gathered per pair by index (cheaper than
    converting the joined pair frame's string columns)."""

    def __init__(self, rec: pl.DataFrame, threads: int | None = None) -> None:
        self.workers = threads or -1  # rapidfuzz: -1 = every core
        n = int(rec["idx"].max()) + 1 if rec.height else 0
        order = rec["idx"].to_numpy()

        def column(name: str) -> np.ndarray:
            values = np.full(n, "", dtype=object)
            values[order] = np.asarray(rec[name].fill_null("").to_list(), dtype=object)
            return values

        self.title = column("name_norm")
        self.sorted_title = column("sorted_title")
        self.code0 = column("code0")
        self.code1 = column("code1")
        self.has_code = self.code0.astype(bool)

    def features(self, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
        """rapidfuzz bulk scorers over the aligned pairs, scaled to 0..1."""

        def cpdist(values: np.ndarray, scorer: object) -> np.ndarray:
            return process.cpdist(
                values[i].tolist(),
                values[j].tolist(),
                scorer=scorer,
                workers=self.workers,
                dtype=np.float32,
            ).astype(np.float64)

        both = self.has_code[i] & self.has_code[j]
        return {
            "token_set": cpdist(self.title, fuzz.token_set_ratio) / 100.0,
            "ratio": cpdist(self.title, fuzz.ratio) / 100.0,
            # token_sort_ratio on titles whose words were sorted once per listing
            "token_sort": cpdist(self.sorted_title, fuzz.ratio) / 100.0,
            "code_similarity": np.where(both, self.code_similarity(i, j, "code0", "code0"), 0.0),
        }

    def code_similarity(self, i: np.ndarray, j: np.ndarray, mine: str, theirs: str) -> np.ndarray:
        """Normalised Levenshtein similarity of ``i``'s code ``mine`` and ``j``'s ``theirs``
        (``code0`` / ``code1``)."""
        a, b = getattr(self, mine), getattr(self, theirs)
        return process.cpdist(
            a[i].tolist(),
            b[j].tolist(),
            scorer=distance.Levenshtein.normalized_similarity,
            workers=self.workers,
            dtype=np.float32,
        ).astype(np.float64)


class StackedVectors:
    """Character TF-IDF, word TF-IDF and IDF-weighted word presence side by side, so one
    row-wise product per chunk yields the three dot products."""

    def __init__(self, vectors: TextVectors) -> None:
        parts = (vectors.chars, vectors.words, vectors.word_idf)
        self.matrix = sp.hstack(parts).tocsr().astype(np.float32)
        edges = np.cumsum([0, *(m.shape[1] for m in parts)])
        self.segment_of = np.searchsorted(edges, np.arange(self.matrix.shape[1]), side="right") - 1
        self.vectors = vectors


def vector_features(stacked: StackedVectors, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Character / word cosines and IDF-weighted word overlap of aligned pairs."""
    vectors, segment_of = stacked.vectors, stacked.segment_of
    product = stacked.matrix[i].multiply(stacked.matrix[j]).tocsr()
    rows = np.repeat(np.arange(len(i)), np.diff(product.indptr))
    sums = np.bincount(
        rows * 3 + segment_of[product.indices], weights=product.data, minlength=len(i) * 3
    ).reshape(len(i), 3)
    char_cos, word_cos, shared_idf = sums[:, 0], sums[:, 1], sums[:, 2]
    total_i, total_j = vectors.word_idf_total[i], vectors.word_idf_total[j]
    union = total_i + total_j - shared_idf
    smaller = np.minimum(total_i, total_j)
    with np.errstate(divide="ignore", invalid="ignore"):
        jaccard = np.where(union > 0, shared_idf / union, 0.0)
        containment = np.where(smaller > 0, shared_idf / smaller, 0.0)
    has_chars = vectors.chars.shape[1] > 0
    has_words = vectors.words.shape[1] > 0
    parts = int(has_chars) + int(has_words)
    return {
        "cosine": (char_cos + word_cos) / max(parts, 1),
        "char_cosine": char_cos,
        "word_cosine": word_cos,
        "idf_jaccard": np.clip(jaccard, 0.0, 1.0),
        "idf_containment": np.clip(containment, 0.0, 1.0),
    }
