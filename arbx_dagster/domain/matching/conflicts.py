"""Identity conflicts: evidence that two listings cannot be one product, whatever else
they share.

A learned model weighs evidence; some evidence is not to be weighed. Two listings that
name different members of one exclusive set (a microSD and an SD card, a SO-DIMM and a
DIMM, DDR3 and DDR4), different versions of a model (Mark II and Mark III), the body
alone and a kit, or an accessory and the product it serves (a case *for* the camera, the
other title naming no accessory, sharing little beyond the words after 'for'), are
different products however similar the rest of their titles. On the labelled pairs the
shipped model learns from (public benchmarks, where labels carry some noise), each rule
catches almost only non-matches (measured when the rules were written: 3-5 % of the
pairs each rule catches are labelled matches, about the benchmarks' label noise).

A conflicting pair's probability is capped at ``CONFLICT_CAP``, below the clustering's
cannot-link level, so it is neither accepted nor joined through a third listing.
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
