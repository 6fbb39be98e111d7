"""Frame helpers shared by the domain modules.

Polars runs an eager ``with_columns`` of string expressions (regex replaces, extracts,
splits) on one thread per column; the streaming engine splits the rows into morsels and
runs them on every core, keeping row order. On listing titles that is 1.7x faster on two
cores, so the heavy, row-wise steps of normalisation and featurisation go through it.
"""

from __future__ import annotations

from typing import Any

import polars as pl


def with_columns_streamed(frame: pl.DataFrame, *exprs: Any, **named: Any) -> pl.DataFrame:
    """``frame.with_columns(...)`` computed by the streaming engine (row order kept)."""
    return frame.lazy().with_columns(*exprs, **named).collect(engine="streaming")


def select_streamed(frame: pl.DataFrame, *exprs: Any, **named: Any) -> pl.DataFrame:
    """``frame.select(...)`` computed by the streaming engine (row order kept)."""
    return frame.lazy().select(*exprs, **named).collect(engine="streaming")
