"""TF-IDF vectors of listing texts, built with NumPy instead of a Python tokenizer.

scikit-learn's ``TfidfVectorizer`` tokenises every document in a Python loop and grows a
Python dict vocabulary: about 20 s for 100k titles, the first wall a million listings hit.
Here the texts become one byte buffer and every character n-gram is an integer computed
from its bytes (six bits per symbol, so a 3-5-gram is an exact 30-bit code: no hashing
collisions), whole words are hashed, terms get column ids from a hash table
(``pandas.factorize``: no sort, no Python loop) and the counts go straight into a sparse
matrix (100k titles: ~2 s). Weighting as scikit-learn's: sublinear TF, smoothed IDF,
L2-normalised character part stacked with the L2-normalised word part, re-normalised.

Character 4-grams only (not 3-5): on abt_buy and on 100k simulated listings they find
as many true pairs as 3-5-grams with a third of the entries, and the blocker's sparse
product costs grow with the square of the entries per feature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp

# Symbols: 0 = document boundary, 1 = space, then digits, letters, '.', '+', anything else.
_SYMBOLS = np.full(256, 40, dtype=np.int64)
_SYMBOLS[ord("\n")] = 0
_SYMBOLS[ord(" ")] = 1
_SYMBOLS[np.frombuffer(b"0123456789", np.uint8)] = np.arange(2, 12)
_SYMBOLS[np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", np.uint8)] = np.arange(12, 38)
_SYMBOLS[ord(".")] = 38
_SYMBOLS[ord("+")] = 39
_BITS = 6


def normalize(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as scikit-learn's
    ``normalize`` but without importing scikit-learn where only vectors are needed."""
    csr = sp.csr_matrix(matrix, copy=True)
    csr.sum_duplicates()  # canonical: sorted indices, no duplicates (what products expect)
    norms = np.sqrt(np.asarray(csr.multiply(csr).sum(axis=1), dtype=np.float64).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    csr.data = csr.data * np.repeat(scale, np.diff(csr.indptr)).astype(csr.data.dtype)
    return csr


def _clean(texts: pl.Series) -> pl.Series:
    return texts.fill_null("").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def _char_ngrams(texts: pl.Series, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """``(doc, code)`` of every character ``lo..hi``-gram inside space-padded words.

    As scikit-learn's ``char_wb`` analyser: each word is padded with one space on each
    side and n-grams never span two words (no space strictly inside the window).
    """
    docs = texts.to_list()
    buffer = ("\n" + "\n".join(" " + d + " " for d in docs) + "\n").encode("utf-8")
    sym = _SYMBOLS[np.frombuffer(buffer, dtype=np.uint8)]
    boundary = sym == 0
    doc_of = np.cumsum(boundary) - 1  # position -> document (boundary k opens doc k)
    space = np.r_[0, np.cumsum(sym == 1)]  # space[p] = spaces before position p
    stop = np.r_[0, np.cumsum(boundary)]
    out_doc, out_code = [], []

    def windows(n: int, whole_words_only: bool) -> None:
        """Every n-gram window inside one padded word (slices, not fancy indexing: window
        p covers positions p .. p + n - 1); ``whole_words_only`` keeps only windows that
        are a whole padded word (space at both ends)."""
        m = len(sym) - n + 1
        if m <= 0:
            return
        ok = (stop[n : n + m] - stop[:m]) == 0
        ok &= (space[n - 1 : n - 1 + m] - space[1 : 1 + m]) == 0
        if whole_words_only:
            ok &= (sym[:m] == 1) & (sym[n - 1 : n - 1 + m] == 1)
        code = sym[:m].copy()
        for offset in range(1, n):
            code |= sym[offset : offset + m] << (_BITS * offset)
        out_doc.append(doc_of[:m][ok])
        out_code.append(code[ok])

    for n in range(lo, hi + 1):
        windows(n, whole_words_only=False)
    # As scikit-learn, a padded word shorter than the shortest n-gram (' a ') is one gram.
    for n in range(3, lo):
        windows(n, whole_words_only=True)
    if not out_doc:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(out_doc), np.concatenate(out_code)


def _words(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(doc, word hash)`` of every space-separated word (the hash only has to be
    consistent within one matrix)."""
    frame = (
        pl.DataFrame({"w": texts})
        .with_row_index("doc")
        .select(pl.col("doc").cast(pl.Int64), pl.col("w").str.split(" "))
        .explode("w")
        .filter(pl.col("w").str.len_chars() > 0)
        .with_columns(pl.col("w").hash(seed=0).alias("id"))
    )
    return frame["doc"].to_numpy(), frame["id"].to_numpy()


def _dense_ids(term: np.ndarray) -> tuple[np.ndarray, int]:
    """Column ids ``0..n_terms-1`` for integer term keys: exact (a hash table, no sort)."""
    if len(term) == 0:
        return np.empty(0, dtype=np.int64), 0
    import pandas as pd  # its hash table; imported on first use (a second to load)

    keys = term.view(np.int64) if term.dtype == np.uint64 else term.astype(np.int64, copy=False)
    ids, uniques = pd.factorize(keys)
    return ids.astype(np.int64, copy=False), len(uniques)


def _counts(n_docs: int, doc: np.ndarray, term: np.ndarray) -> sp.csr_matrix:
    """Term counts per document (float32), duplicate ``(doc, term)`` occurrences summed."""
    if len(doc) == 0:
        return sp.csr_matrix((n_docs, 0), dtype=np.float32)
    column, n_terms = _dense_ids(term)
    counts = sp.csr_matrix(
        (np.ones(len(doc), dtype=np.float32), (doc, column)), shape=(n_docs, n_terms)
    )
    counts.sum_duplicates()
    return counts


def _idf(counts: sp.csr_matrix) -> np.ndarray:
    """Smoothed IDF, as scikit-learn: ``ln((1 + n) / (1 + df)) + 1``."""
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    return (np.log((1.0 + counts.shape[0]) / (1.0 + df)) + 1.0).astype(np.float32)


def _tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear-TF x IDF, L2-normalised."""
    out = counts.copy()
    out.data = (1.0 + np.log(out.data)) * idf[out.indices]
    return normalize(out).astype(np.float32)


@dataclass(frozen=True)
class TextVectors:
    """The vector views of a set of texts that blocking and pair features read.

    * ``chars`` / ``words``: L2-normalised TF-IDF of character n-grams / whole words;
    * ``matrix``: both stacked and re-normalised (the blocker's similarity), so its
      cosine is the mean of the character and the word cosine;
    * ``word_idf``: word presence weighted by sqrt(IDF), so the row-wise product of two
      rows sums the IDF of the words they share; ``word_idf_total`` is each row's sum of
      IDF (for IDF-weighted Jaccard and containment).
    """

    matrix: sp.csr_matrix
    chars: sp.csr_matrix
    words: sp.csr_matrix
    word_idf: sp.csr_matrix
    word_idf_total: np.ndarray


def text_vectors(texts: pl.Series, *, ngram_range: tuple[int, int] = (4, 4)) -> TextVectors:
    """Vectorise ``texts`` (character n-grams within words and whole words).

    Column ids are only meaningful within one call: vectors from two calls are not
    comparable.
    """
    clean = _clean(texts)
    n = clean.len()
    char_counts = _counts(n, *_char_ngrams(clean, *ngram_range))
    word_counts = _counts(n, *_words(clean))
    chars = _tfidf(char_counts, _idf(char_counts))
    word_idf_values = _idf(word_counts)
    words = _tfidf(word_counts, word_idf_values)
    presence = word_counts.copy()
    presence.data = np.sqrt(word_idf_values[presence.indices]).astype(np.float32)
    total = np.asarray(presence.multiply(presence).sum(axis=1), dtype=np.float64).ravel()
    stacked = sp.hstack([chars, words]).tocsr().astype(np.float32)
    matrix = normalize(stacked).astype(np.float32) if stacked.shape[1] else stacked
    return TextVectors(matrix, chars, words, presence.tocsr(), total)


def tfidf_matrix(texts: pl.Series, *, ngram_range: tuple[int, int] = (4, 4)) -> sp.csr_matrix:
    """L2-normalised TF-IDF: character n-grams within words (robust to typos and to codes
    written with or without separators) stacked with whole words (exact tokens)."""
    return text_vectors(texts, ngram_range=ngram_range).matrix
