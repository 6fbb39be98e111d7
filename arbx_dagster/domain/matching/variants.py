"""Pair features for listings of one product line that are different products.

A title similarity cannot tell a camera from its case ('case for Canon PowerShot SX50'
shares every distinctive word with 'Canon PowerShot SX50'), a microSD card from an SD card
of the same series, a Mark II from a Mark III, a kit from the body alone, or a refurbished
unit from a new one. ``VariantEvidence`` reads the lists of ``lexicon`` once per listing
and answers, per candidate pair, how much of that evidence one side has and the other
lacks. Everything is per listing (Polars) or a row-wise sparse product per pair (NumPy).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from arbx_dagster.domain.matching.lexicon import (
    ACCESSORY_WORDS,
    BODY_WORDS,
    BUNDLE_WORDS,
    CONDITION_PATTERNS,
    FOR_MARKERS,
    VARIANT_PATTERNS,
    VERSION_PATTERNS,
    VERSION_WORDS,
)
from arbx_dagster.domain.matching.vectorize import _dense_ids

VARIANT_FEATURES: tuple[str, ...] = (
    "version_conflict",  # both name a version (ii, mk3, v2, 2nd gen), none in common
    "version_one_side",  # a version on one side only ('rx100' vs 'rx100 iii')
    "accessory_one_side",  # accessory words (case, battery, funda...) one side has
    "for_one_side",  # one title serves another product ('... for', 'para', 'compatible')
    "serves_the_other",  # one is an accessory 'for' something (case for ..., funda para
    # ...) and the other names no accessory at all: the accessory and its product
    "head_containment",  # share of each title's own item (the words before 'for') the
    # other has, IDF-weighted, the smaller of the two: low for 'battery for X' vs 'X'
    "bundle_one_side",  # kit / bundle / '+' / 'w/' on one side only
    "body_one_side",  # 'body only' on one side only
    "variant_conflict",  # exclusive forms named on both sides, none shared (microSD / SD)
    "condition_one_side",  # refurbished / used / open box on one side only
    # what one title says and the other does not, by kind of word (IDF mass of the words
    # on one side only): model tokens ('dcs2332l'), plain numbers, and words
    "unmatched_code_idf",
    "unmatched_number_idf",
    "unmatched_word_idf",
)

# Word kinds of ``unmatched_*_idf``: letters and digits, digits only, the rest.
_WORD_KINDS = (
    ("code", r"^(?:[a-z]+\d|\d+[a-z])[a-z0-9.]*$"),
    ("number", r"^\d+(?:\.\d+)?$"),
)

_FOR = "(?:" + "|".join(FOR_MARKERS) + ")"


def _pattern_hits(patterns: tuple[str, ...]) -> pl.Expr:
    return pl.any_horizontal([pl.col("name_norm").str.contains(p) for p in patterns])


def _versions() -> pl.Expr:
    """Every version the title names, as a digit string ('mark ii' -> '2')."""
    words = (
        pl.col("name_norm")
        .str.split(" ")
        .list.eval(pl.element().replace_strict(VERSION_WORDS, default=None))
        .list.drop_nulls()
    )
    written = [
        pl.col("name_norm").str.extract_all(p).list.eval(pl.element().str.extract(r"(\d)", 1))
        for p in VERSION_PATTERNS
    ]
    return pl.concat_list([words, *written]).list.unique()


def _sparse_sets(frame: pl.DataFrame, n: int) -> sp.csr_matrix:
    """``idx, item`` rows as a 0/1 matrix (listings x distinct items)."""
    if frame.height == 0:
        return sp.csr_matrix((n, 1), dtype=np.float32)
    column, n_items = _dense_ids(frame["item"].hash(seed=3).to_numpy())
    matrix = sp.csr_matrix(
        (np.ones(frame.height, dtype=np.float32), (frame["idx"].to_numpy(), column)),
        shape=(n, max(n_items, 1)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _shared(matrix: sp.csr_matrix, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    return np.diff(matrix[i].multiply(matrix[j]).tocsr().indptr).astype(np.float64)


class VariantEvidence:
    """Per-listing variant evidence of ``records`` (``idx``, ``name_norm``), ready to
    answer ``features(i, j)`` for any pairs of them."""

    def __init__(self, records: pl.DataFrame) -> None:
        n = int(records["idx"].max()) + 1 if records.height else 0
        rec = records.select("idx", pl.col("name_norm").fill_null(""))
        tokens = pl.col("name_norm").str.split(" ")
        per = rec.select(
            "idx",
            _versions().alias("versions"),
            tokens.list.eval(pl.element().filter(pl.element().is_in(list(ACCESSORY_WORDS))))
            .list.unique()
            .alias("accessories"),
            pl.col("name_norm").str.contains(_FOR).alias("has_for"),
            # an accessory word before the title turns to what it serves ('case for ...')
            pl.col("name_norm")
            .str.replace(_FOR + ".*$", "")
            .str.split(" ")
            .list.eval(pl.element().is_in(list(ACCESSORY_WORDS)))
            .list.any()
            .alias("serves"),
            tokens.list.eval(pl.element().is_in(list(BUNDLE_WORDS))).list.any().alias("bundle"),
            tokens.list.eval(pl.element().is_in(list(BODY_WORDS))).list.any().alias("body"),
            _pattern_hits(CONDITION_PATTERNS).alias("condition"),
            *[
                pl.col("name_norm").str.contains(pattern).alias(f"{group}:{value}")
                for group, value, pattern in VARIANT_PATTERNS
            ],
        )

        def flags(name: str) -> np.ndarray:
            out = np.zeros(n, dtype=bool)
            out[per["idx"].to_numpy()] = per[name].fill_null(False).to_numpy()
            return out

        def sets(column: str) -> sp.csr_matrix:
            long = per.select("idx", pl.col(column).alias("item")).explode("item")
            return _sparse_sets(long.drop_nulls("item"), n)

        self.versions = sets("versions")
        self.accessories = sets("accessories")
        self.has_for = flags("has_for")
        self.serves = flags("serves") & self.has_for
        self.bundle, self.body, self.condition = flags("bundle"), flags("body"), flags("condition")
        self.groups: list[sp.csr_matrix] = []
        for group in dict.fromkeys(g for g, _, _ in VARIANT_PATTERNS):
            values = [f"{g}:{v}" for g, v, _ in VARIANT_PATTERNS if g == group]
            long = (
                per.select("idx", *values)
                .unpivot(index="idx", variable_name="item", value_name="hit")
                .filter(pl.col("hit").fill_null(False))
            )
            self.groups.append(_sparse_sets(long.select("idx", "item"), n))
        self._head_words(rec, n)

    def _head_words(self, rec: pl.DataFrame, n: int) -> None:
        """IDF-weighted words of each title's own item (before its first 'for') and 0/1
        presence of all its words, in one word space."""
        words = rec.select(
            "idx",
            pl.col("name_norm").str.split(" ").alias("word"),
            pl.col("name_norm").str.replace(_FOR + ".*$", "").str.split(" ").alias("head"),
        ).with_columns(pl.col("head").list.unique(), pl.col("word").list.unique())
        all_words = words.select("idx", pl.col("word").alias("item")).explode("item")
        all_words = all_words.filter(pl.col("item").str.len_chars() > 0)
        heads = words.select("idx", pl.col("head").alias("item")).explode("item")
        heads = heads.filter(pl.col("item").str.len_chars() > 0)
        keys = pl.concat([all_words["item"], heads["item"]]).hash(seed=5).to_numpy()
        column, n_words = _dense_ids(keys)
        n_words = max(n_words, 1)
        word_col, head_col = column[: all_words.height], column[all_words.height :]
        self.words = sp.csr_matrix(
            (np.ones(len(word_col), dtype=np.float32), (all_words["idx"].to_numpy(), word_col)),
            shape=(n, n_words),
        )
        df = np.bincount(word_col, minlength=n_words)
        idf = (np.log((1.0 + max(n, 1)) / (1.0 + df)) + 1.0).astype(np.float32)
        self.heads = sp.csr_matrix(
            (idf[head_col], (heads["idx"].to_numpy(), head_col)), shape=(n, n_words)
        )
        self.head_total = np.asarray(self.heads.sum(axis=1), dtype=np.float64).ravel()
        words = all_words["item"]
        is_code = words.str.contains(_WORD_KINDS[0][1]).to_numpy()
        is_number = words.str.contains(_WORD_KINDS[1][1]).to_numpy()
        self.kinds: dict[str, sp.csr_matrix] = {}
        for kind, mask in (
            ("code", is_code),
            ("number", is_number),
            ("word", ~is_code & ~is_number),
        ):
            self.kinds[kind] = sp.csr_matrix(
                (idf[word_col[mask]], (all_words["idx"].to_numpy()[mask], word_col[mask])),
                shape=(n, n_words),
            )
        self.kind_total = {
            kind: np.asarray(m.sum(axis=1), dtype=np.float64).ravel()
            for kind, m in self.kinds.items()
        }

    def _head_share(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        shared = np.asarray(self.heads[i].multiply(self.words[j]).sum(axis=1)).ravel()
        total = self.head_total[i]
        return np.divide(shared, total, out=np.ones_like(total), where=total > 0)

    def features(self, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
        """``VARIANT_FEATURES`` for the pairs ``(i[k], j[k])``."""
        v_i = np.diff(self.versions.indptr)[i]
        v_j = np.diff(self.versions.indptr)[j]
        v_shared = _shared(self.versions, i, j)
        a_all = np.diff(self.accessories.indptr)
        conflicts = np.zeros(len(i), dtype=np.float64)
        for matrix in self.groups:
            has = np.diff(matrix.indptr) > 0
            conflicts += has[i] & has[j] & (_shared(matrix, i, j) == 0)
        unmatched = {}
        for kind, matrix in self.kinds.items():
            total = self.kind_total[kind]
            shared = np.asarray(matrix[i].multiply(self.words[j]).sum(axis=1)).ravel()
            unmatched[f"unmatched_{kind}_idf"] = total[i] + total[j] - 2.0 * shared
        return unmatched | {
            "version_conflict": ((v_i > 0) & (v_j > 0) & (v_shared == 0)).astype(np.float64),
            "version_one_side": ((v_i > 0) ^ (v_j > 0)).astype(np.float64),
            "accessory_one_side": a_all[i] + a_all[j] - 2 * _shared(self.accessories, i, j),
            "for_one_side": (self.has_for[i] ^ self.has_for[j]).astype(np.float64),
            "serves_the_other": (
                (self.serves[i] & ~self.has_for[j] & (a_all[j] == 0))
                | (self.serves[j] & ~self.has_for[i] & (a_all[i] == 0))
            ).astype(np.float64),
            "head_containment": np.minimum(self._head_share(i, j), self._head_share(j, i)),
            "bundle_one_side": (self.bundle[i] ^ self.bundle[j]).astype(np.float64),
            "body_one_side": (self.body[i] ^ self.body[j]).astype(np.float64),
            "variant_conflict": conflicts,
            "condition_one_side": (self.condition[i] ^ self.condition[j]).astype(np.float64),
        }
