"""Per-listing sets as sparse rows: how many codes, units, numbers, tier words and
colours two listings share or disagree on, for every pair in one row-wise product.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp

from arbx_dagster.domain.matching.vectorize import _dense_ids


class ItemSets:
    """Per-listing sets of several kinds as sparse 0/1 rows over one item space.

    ``kinds`` maps a name to ``(list column, segment)``. Kinds of one segment share their
    item space (unit values and their rounded variants), so "how many of i's A are among
    j's B" is the number of stored entries of the row-wise product of ``A[i]`` and
    ``B[j]``. Units are counted per unit name (gb, in, kg...), so that '8gb 512gb' vs
    '8gb 256gb' still shows a conflict on gb.
    """

    def __init__(self, rec: pl.DataFrame, kinds: dict[str, tuple[str, str]]) -> None:
        parts = [
            rec.select(
                pl.col("idx"),
                pl.col(column).alias("item"),
                pl.lit(name).alias("kind"),
                pl.lit(segment).alias("segment"),
            )
            .explode("item")
            .drop_nulls("item")
            for name, (column, segment) in kinds.items()
        ]
        long = pl.concat(parts).unique(["idx", "kind", "item"])
        unit_name = pl.col("item").str.replace(r"^[\d.]+", "")
        long = long.with_columns(
            key=(pl.col("segment") + "\x00" + pl.col("item")).hash(seed=1),
            unit=pl.when(pl.col("segment") == "unit").then(unit_name),
        )
        self.units = sorted(long["unit"].drop_nulls().unique().to_list())
        unit_id = {u: n for n, u in enumerate(self.units)}
        long = long.with_columns(
            unit_id=pl.col("unit").replace_strict(unit_id, default=-1, return_dtype=pl.Int64)
        )
        n = int(rec["idx"].max()) + 1 if rec.height else 0
        column, n_items = (
            _dense_ids(long["key"].to_numpy()) if long.height else (np.empty(0, np.int64), 0)
        )
        self.unit_of = np.full(max(n_items, 1), -1, dtype=np.int64)
        self.unit_of[column] = long["unit_id"].to_numpy()
        kind_values = long["kind"].to_numpy()
        idx = long["idx"].to_numpy()
        self.matrices: dict[str, sp.csr_matrix] = {}
        for name in kinds:
            mask = kind_values == name
            self.matrices[name] = sp.csr_matrix(
                (np.ones(int(mask.sum()), dtype=np.float32), (idx[mask], column[mask])),
                shape=(n, max(n_items, 1)),
            )
        self.sizes = {name: np.diff(m.indptr) for name, m in self.matrices.items()}

    def shared(self, kind_a: str, kind_b: str, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """How many items of ``A[i]`` are in ``B[j]``, per pair."""
        product = self.matrices[kind_a][i].multiply(self.matrices[kind_b][j]).tocsr()
        return np.diff(product.indptr).astype(np.float64)

    def per_unit(self, m: sp.csr_matrix) -> np.ndarray:
        """Entries per row and unit name: (rows, units)."""
        n_units = max(len(self.units), 1)
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        unit = self.unit_of[m.indices]
        ok = unit >= 0
        counts = np.bincount(rows[ok] * n_units + unit[ok], minlength=m.shape[0] * n_units)
        return counts.reshape(m.shape[0], n_units)

    def shared_units(self, kind_a: str, kind_b: str, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        product = self.matrices[kind_a][i].multiply(self.matrices[kind_b][j]).tocsr()
        return self.per_unit(product)


SET_KINDS: dict[str, tuple[str, str]] = {
    "codes": ("codes", "codes"),
    "code_keys": ("code_keys", "code_keys"),
    "unit": ("units", "unit"),
    "unit_key": ("unit_keys", "unit"),
    "numbers": ("numbers", "numbers"),
    "anchored": ("anchored", "anchored"),
    "anchor_words": ("anchor_words", "anchor_words"),
    "tiers": ("tiers", "tiers"),
    "colors": ("colors", "colors"),
}


def set_counts(items: ItemSets, i: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """Count features from set intersections (see ``ItemSets``)."""
    size = items.sizes
    units_all = items.per_unit(items.matrices["unit"])
    units_i, units_j = units_all[i], units_all[j]
    found_i = items.shared_units("unit", "unit_key", i, j)  # i's values that j has
    found_j = items.shared_units("unit_key", "unit", i, j)
    agree = items.shared_units("unit_key", "unit_key", i, j)
    lost_i = (units_i - found_i) > 0
    lost_j = (units_j - found_j) > 0
    has_i, has_j = units_i > 0, units_j > 0

    n_i, n_j = size["numbers"][i], size["numbers"][j]
    n_shared = items.shared("numbers", "numbers", i, j)
    t_i, t_j = size["tiers"][i], size["tiers"][j]
    t_shared = items.shared("tiers", "tiers", i, j)
    c_i, c_j = size["colors"][i], size["colors"][j]
    anchor_words = items.shared("anchor_words", "anchor_words", i, j)
    return {
        "both_codes": ((size["codes"][i] > 0) & (size["codes"][j] > 0)).astype(np.float64),
        "codes_shared": items.shared("codes", "codes", i, j),
        "keys_shared": items.shared("code_keys", "code_keys", i, j),
        "unit_shared": (agree > 0).sum(axis=1).astype(np.float64),
        "unit_conflict": (lost_i & lost_j).sum(axis=1).astype(np.float64),
        "unit_one_side": (has_i ^ has_j).sum(axis=1).astype(np.float64),
        "unit_disjoint": (has_i & has_j & (agree == 0)).sum(axis=1).astype(np.float64),
        "number_shared": n_shared,
        "number_conflict": ((n_i > 0) & (n_j > 0) & (n_shared == 0)).astype(np.float64),
        "number_one_side": (n_i + n_j - 2 * n_shared).astype(np.float64),
        # a word numbered on both sides, never with the same number
        "model_number_conflict": np.maximum(
            anchor_words - items.shared("anchored", "anchored", i, j), 0.0
        ),
        "tier_one_side": (t_i + t_j - 2 * t_shared).astype(np.float64),
        "tier_conflict": ((t_i > 0) & (t_j > 0) & (t_shared == 0)).astype(np.float64),
        "color_conflict": (
            (c_i > 0) & (c_j > 0) & (items.shared("colors", "colors", i, j) == 0)
        ).astype(np.float64),
    }
