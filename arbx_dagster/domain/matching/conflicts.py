"""Identity conflicts: evidence that two listings cannot be one product, whatever else
they share.

A learned model weighs evidence; some evidence is not to be weighed. Two listings that
name different members of one exclusive set (a microSD and an SD card, a SO-DIMM and a
DIMM, DDR3 and DDR4), different versions of a model (Mark II and Mark III), the body
alone and a kit, an accessory and the product it serves (a case *for* the camera, the
other title naming no accessory, sharing little beyond the words after 'for'), or
different measures of one kind (64 GB and 16 GB, 55" and 65": each title states a value
of that unit the other lacks) are different products however similar the rest of their
titles. On the labelled pairs the shipped model learns from (public benchmarks, where
labels carry some noise), each rule catches almost only non-matches (measured on the
training splits when the rules were written: 3-5 % of the pairs each rule catches are
labelled matches, about the benchmarks' label noise; for measures 0.1 % on abt_buy,
1.8 % on wdc_cameras, 4.3 % on wdc_computers, whose "matches" there are mostly 2-packs
beside 5-packs and 500 GB beside 120 GB drives of one series).

A conflicting pair's probability is capped at ``CONFLICT_CAP``, below the clustering's
cannot-link level, so it is neither accepted nor joined through a third listing. Models
are trained and calibrated only on the pairs the rules leave open (``open_pairs``): the
rules decide the others, and noisy labels among them would only teach a model that a
conflict can be outweighed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

CONFLICT_CAP = 0.02


def _count(name: str) -> pl.Expr:
    return pl.col(name).fill_nan(0.0).fill_null(0.0)


# name -> expression over a ``pair_features`` frame; true where the pair conflicts.
RULES: dict[str, pl.Expr] = {
    "exclusive forms": _count("variant_conflict") >= 1,
    "versions": _count("version_conflict") >= 1,
    "measures": _count("unit_conflict") >= 1,
    "kit and body only": (_count("body_one_side") >= 1) & (_count("bundle_one_side") >= 1),
    "an accessory and its product": (_count("serves_the_other") >= 1)
    & (pl.col("head_containment").fill_nan(1.0).fill_null(1.0) < 0.25),
}
COLUMNS = (
    "variant_conflict",
    "version_conflict",
    "body_one_side",
    "bundle_one_side",
    "serves_the_other",
    "head_containment",
    "unit_conflict",
)


def conflicting(features: pl.DataFrame) -> np.ndarray:
    """Per row of a ``pair_features`` frame: whether any rule says "two products"
    (rows lacking the columns never conflict)."""
    if features.height == 0 or not set(COLUMNS) <= set(features.columns):
        return np.zeros(features.height, dtype=bool)
    return features.select(pl.any_horizontal(list(RULES.values()))).to_series().to_numpy()


def cap_conflicts(features: pl.DataFrame, proba: np.ndarray) -> np.ndarray:
    """``proba`` with conflicting pairs capped at ``CONFLICT_CAP``."""
    return np.where(conflicting(features), np.minimum(proba, CONFLICT_CAP), proba)


def open_pairs(features: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``features`` no rule decides: what a model learns from and is cut on."""
    return features.filter(pl.Series(~conflicting(features)))
