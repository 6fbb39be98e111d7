"""Frame helpers shared by the domain modules.

Polars runs an eager ``with_columns`` of string expressions (regex replaces, extracts,
splits) on one thread per column; the streaming engine splits the rows into morsels and
runs them on every core, keeping row order. On listing titles that is 1.7x faster on two
cores, so the heavy, row-wise steps of normalisation and featurisation go through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl


def with_columns_streamed(frame: pl.DataFrame, *exprs: Any, **named: Any) -> pl.DataFrame:
    """``frame.with_columns(...)`` computed by the streaming engine (row order kept)."""
    return frame.lazy().with_columns(*exprs, **named).collect(engine="streaming")


def select_streamed(frame: pl.DataFrame, *exprs: Any, **named: Any) -> pl.DataFrame:
    """``frame.select(...)`` computed by the streaming engine (row order kept)."""
    return frame.lazy().select(*exprs, **named).collect(engine="streaming")


def position_in_runs(keys: pl.Series) -> pl.Series:
    """0, 1, 2... within each run of equal consecutive keys (a window ``int_range().over()``
    without the window: ~20x faster on a million rows)."""
    values = keys.to_numpy()
    n = len(values)
    if n == 0:
        return pl.Series(values=np.empty(0, dtype=np.int64))
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    return pl.Series(values=np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n])))
