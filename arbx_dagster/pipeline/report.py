"""What a stage tells its caller: counts for metadata and logs, and a small preview."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass(frozen=True)
class StageReport:
    rows: int  # rows the stage wrote (its main table)
    counts: dict[str, Any] = field(default_factory=dict)
    preview: pl.DataFrame | None = None
    frames: dict[str, pl.DataFrame] = field(default_factory=dict)  # inputs for charts
