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
    return pl.col("name_norm").str.contains("|".join(f"(?:{p})" for p in patterns))


def _versions() -> pl.Expr:
    """Every version the title names, as a digit string ('mark ii' -> '2')."""
    words = (
        pl.col("name_norm")
        .str.split(" ")
        .list.eval(pl.element().replace_strict(VERSION_WORDS, default=None))
        .list.drop_nulls()
    )
    union = "|".join(f"(?:{p})" for p in VERSION_PATTERNS)  # one pass over the titles
    written = (
        pl.col("name_norm").str.extract_all(union).list.eval(pl.element().str.extract(r"(\d)", 1))
    )
    return pl.concat_list([words, written]).list.unique()


def _segment_sums(
    left: sp.csr_matrix, right: sp.csr_matrix, segment_of: np.ndarray, n_segments: int
) -> np.ndarray:
    """Per row: the sum of ``left * right`` (element-wise) within each column segment."""
    product = left.multiply(right).tocsr()
    rows = np.repeat(np.arange(left.shape[0]), np.diff(product.indptr))
    keys = rows * n_segments + segment_of[product.indices]
    sums = np.bincount(keys, weights=product.data, minlength=left.shape[0] * n_segments)
    return sums.reshape(left.shape[0], n_segments)


def _variant_items() -> pl.Expr:
    """Every exclusive form the title names, as 'group:value' (one regex pass over the
    titles; only the few matched fragments are told apart pattern by pattern)."""
    union = "|".join(f"(?:{pattern})" for _, _, pattern in VARIANT_PATTERNS)
    label = pl.coalesce(
        [
            pl.when(pl.element().str.contains(pattern)).then(pl.lit(f"{group}:{value}"))
            for group, value, pattern in VARIANT_PATTERNS
        ]
    )
    return (
        pl.col("name_norm").str.extract_all(union).list.eval(label).list.drop_nulls().list.unique()
    )


class VariantEvidence:
    """Per-listing variant evidence of ``records`` (``idx``, ``name_norm``), ready to
    answer ``features(i, j)`` for any pairs of them.

    The sets (versions, accessory words, each group of exclusive forms) are segments of
    one 0/1 matrix, and the words both titles have are found once, their IDF mass summed
    by kind and within each title's own item: a chunk of pairs costs two row-wise
    products of whole rows and two of the few shared words."""

    SETS = ("versions", "accessories", *dict.fromkeys(g for g, _, _ in VARIANT_PATTERNS))

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
            _variant_items().alias("forms"),
        )

        def flags(name: str) -> np.ndarray:
            out = np.zeros(n, dtype=bool)
            out[per["idx"].to_numpy()] = per[name].fill_null(False).to_numpy()
            return out

        self.has_for = flags("has_for")
        self.serves = flags("serves") & self.has_for
        self.bundle, self.body, self.condition = flags("bundle"), flags("body"), flags("condition")
        self.sets, self.set_of, self.set_sizes = self._sets(per, n)
        self._head_words(rec, n)

    def _sets(self, per: pl.DataFrame, n: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """Every listing's items of every set as one 0/1 matrix, each column's set, and
        each listing's number of items per set (listings x sets)."""
        parts = [
            per.select("idx", pl.col(column).alias("item"))
            .explode("item")
            .with_columns(pl.lit(column).alias("set"))
            for column in ("versions", "accessories")
        ]
        forms = per.select("idx", pl.col("forms").alias("item")).explode("item")
        parts.append(forms.with_columns(set=pl.col("item").str.extract(r"^([^:]+):", 1)))
        long = pl.concat(parts).drop_nulls("item").unique(["idx", "set", "item"])
        sizes = np.zeros((n, len(self.SETS)), dtype=np.float64)
        if long.height == 0:
            return sp.csr_matrix((n, 1), dtype=np.float32), np.zeros(1, dtype=np.int64), sizes
        keys = long.select((pl.col("set") + "\x00" + pl.col("item")).hash(seed=3))
        column, n_items = _dense_ids(keys.to_series().to_numpy())
        matrix = sp.csr_matrix(
            (np.ones(long.height, dtype=np.float32), (long["idx"].to_numpy(), column)),
            shape=(n, n_items),
        )
        set_of = np.zeros(n_items, dtype=np.int64)
        which = long["set"].replace_strict({name: k for k, name in enumerate(self.SETS)})
        set_of[column] = which.to_numpy()
        np.add.at(sizes, (long["idx"].to_numpy(), which.to_numpy()), 1.0)
        return matrix, set_of, sizes

    def _head_words(self, rec: pl.DataFrame, n: int) -> None:
        """IDF-weighted words of each title's own item (before its first 'for') and of
        each kind, beside the 0/1 presence of all its words, in one word space."""
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
        word_row = all_words["idx"].to_numpy()
        self.words = sp.csr_matrix(
            (np.ones(len(word_col), dtype=np.float32), (word_row, word_col)), shape=(n, n_words)
        )
        df = np.bincount(word_col, minlength=n_words)
        idf = (np.log((1.0 + max(n, 1)) / (1.0 + df)) + 1.0).astype(np.float32)
        self.heads = sp.csr_matrix(
            (idf[head_col], (heads["idx"].to_numpy(), head_col)), shape=(n, n_words)
        )
        item = all_words["item"]
        is_code = item.str.contains(_WORD_KINDS[0][1]).to_numpy()
        is_number = item.str.contains(_WORD_KINDS[1][1]).to_numpy()
        # A word's kind is the word's own: one kind per column (code, number, other word).
        self.kind_of = np.zeros(n_words, dtype=np.int64)
        self.kind_of[word_col] = np.where(is_code, 0, np.where(is_number, 1, 2))
        self.idf = idf.astype(np.float64)
        kind_mass = np.bincount(
            word_row * 3 + self.kind_of[word_col],
            weights=self.idf[word_col],
            minlength=n * 3,
        ).reshape(n, 3)
        head_mass = np.asarray(self.heads.sum(axis=1), dtype=np.float64).ravel()
        self.word_totals = np.column_stack([head_mass, kind_mass])  # head, code, number, word

    def features(self, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
        """``VARIANT_FEATURES`` for the pairs ``(i[k], j[k])``."""
        n_sets = len(self.SETS)
        shared_sets = _segment_sums(self.sets[i], self.sets[j], self.set_of, n_sets)
        has_i, has_j = self.set_sizes[i] > 0, self.set_sizes[j] > 0
        in_common = shared_sets > 0
        forms = slice(2, n_sets)
        conflicts = (has_i[:, forms] & has_j[:, forms] & ~in_common[:, forms]).sum(axis=1)
        accessories_i, accessories_j = self.set_sizes[i, 1], self.set_sizes[j, 1]
        # the words both titles have, once; their IDF mass by kind, and the part of it
        # that lies in each title's own item
        both = self.words[i].multiply(self.words[j]).tocsr()
        rows = np.repeat(np.arange(len(i)), np.diff(both.indptr))
        weight = self.idf[both.indices]
        shared_kinds = np.bincount(
            rows * 3 + self.kind_of[both.indices], weights=weight, minlength=len(i) * 3
        ).reshape(len(i), 3)
        both.data = weight.astype(np.float32)
        head_i = np.asarray((self.heads[i] > 0).multiply(both).sum(axis=1)).ravel()
        head_j = np.asarray((self.heads[j] > 0).multiply(both).sum(axis=1)).ravel()

        def share(shared: np.ndarray, total: np.ndarray) -> np.ndarray:
            return np.divide(shared, total, out=np.ones_like(total), where=total > 0)

        totals_i, totals_j = self.word_totals[i], self.word_totals[j]
        unmatched = totals_i[:, 1:] + totals_j[:, 1:] - 2.0 * shared_kinds
        return {
            "unmatched_code_idf": unmatched[:, 0],
            "unmatched_number_idf": unmatched[:, 1],
            "unmatched_word_idf": unmatched[:, 2],
            "version_conflict": (has_i[:, 0] & has_j[:, 0] & ~in_common[:, 0]).astype(np.float64),
            "version_one_side": (has_i[:, 0] ^ has_j[:, 0]).astype(np.float64),
            "accessory_one_side": accessories_i + accessories_j - 2 * shared_sets[:, 1],
            "for_one_side": (self.has_for[i] ^ self.has_for[j]).astype(np.float64),
            "serves_the_other": (
                (self.serves[i] & ~self.has_for[j] & (accessories_j == 0))
                | (self.serves[j] & ~self.has_for[i] & (accessories_i == 0))
            ).astype(np.float64),
            "head_containment": np.minimum(
                share(head_i, totals_i[:, 0]), share(head_j, totals_j[:, 0])
            ),
            "bundle_one_side": (self.bundle[i] ^ self.bundle[j]).astype(np.float64),
            "body_one_side": (self.body[i] ^ self.body[j]).astype(np.float64),
            "variant_conflict": conflicts.astype(np.float64),
            "condition_one_side": (self.condition[i] ^ self.condition[j]).astype(np.float64),
        }
