"""Turn a stage's report into the metadata a user reads in the Dagster UI."""

import base64
import io
import warnings
from typing import Any

import dagster as dg
import polars as pl

from arbx_dagster.pipeline.report import StageReport

MAX_PREVIEW_ROWS = 15


def markdown_table(frame: pl.DataFrame, max_rows: int = MAX_PREVIEW_ROWS) -> str:
    """A small Markdown table (Dagster renders Markdown metadata as a table)."""
    if frame.is_empty():
        return "_no rows_"
    shown = frame.head(max_rows).with_columns(pl.col(pl.Float32, pl.Float64).round(3))
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
    rows = [
        "| " + " | ".join("" if v is None else str(v).replace("|", "/") for v in row) + " |"
        for row in shown.iter_rows()
    ]
    suffix = [f"\n_{frame.height - max_rows} more rows_"] if frame.height > max_rows else []
    return "\n".join([header, rule, *rows, *suffix])


def png_markdown(figure: Any, alt: str) -> dg.MetadataValue:
    """Embed a matplotlib figure in Markdown metadata as an inline PNG."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a one-day series leaves the date locator no choice
        warnings.simplefilter("ignore", UserWarning)
        figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{alt}](data:image/png;base64,{encoded})")


def _value(value: Any) -> Any:
    if isinstance(value, dict):
        return dg.MetadataValue.json(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(round(value, 4))
    return value


def stage_metadata(report: StageReport, **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"dagster/row_count": report.rows}
    metadata.update({key: _value(value) for key, value in report.counts.items()})
    if report.preview is not None:
        metadata["preview"] = dg.MetadataValue.md(markdown_table(report.preview))
    metadata.update(extra)
    return metadata
