"""Turn a stage's report into the metadata a user reads in the Dagster UI."""

import base64
import io
import json
import warnings
from datetime import date, datetime
from typing import Any

import dagster as dg
import polars as pl

from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.warehouse import Warehouse

MAX_PREVIEW_ROWS = 15


def _type_name(dtype: pl.DataType) -> str:
    """A column type as a reader says it (``int``, ``float``, ``datetime``…)."""
    if dtype.is_integer():
        return "int"
    if dtype.is_float() or dtype.is_decimal():
        return "float"
    simple = {pl.String: "string", pl.Boolean: "bool", pl.Date: "date", pl.Datetime: "datetime"}
    return next((name for kind, name in simple.items() if dtype == kind), str(dtype).lower())


def _cell(value: Any) -> str | int | float | bool | None:
    """A value a table record may hold: numbers, text and booleans as they are; dates and
    anything else as text."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, date | datetime):
        return value.isoformat()
    return json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)


def table_preview(frame: pl.DataFrame, max_rows: int = MAX_PREVIEW_ROWS) -> dg.TableMetadataValue:
    """The first rows of ``frame`` as a typed table (the UI sorts and reads its columns)."""
    shown = frame.head(max_rows).with_columns(pl.col(pl.Float32, pl.Float64).round(3))
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, _type_name(dtype)) for name, dtype in shown.schema.items()]
    )
    records = [
        dg.TableRecord({name: _cell(value) for name, value in row.items()})
        for row in shown.iter_rows(named=True)
    ]
    return dg.MetadataValue.table(records, schema=schema)


def table_metadata(warehouse: Warehouse, table: str, *, count_rows: bool = True) -> dict[str, Any]:
    """Dagster's table metadata of an asset's main warehouse table: where it lives (engine
    and qualified name), its columns as the engine has them, and its rows now (unless
    ``count_rows`` is False: a partitioned table counts each partition instead)."""
    metadata: dict[str, Any] = {
        "dagster/table_name": warehouse.qualified_name(table),
        "dagster/storage_kind": warehouse.engine,
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn(
                    column.name,
                    column.type,
                    constraints=dg.TableColumnConstraints(nullable=column.nullable),
                )
                for column in warehouse.columns(table)
            ]
        ),
    }
    if count_rows:
        metadata["dagster/row_count"] = int(warehouse.scalar(f"SELECT count(*) FROM {table}"))
    return metadata


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


def stage_metadata(
    report: StageReport, table: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A stage's counts and preview; with ``table`` (:func:`table_metadata`), the table's
    own row count replaces the rows the stage wrote, which stay under ``rows_written``."""
    metadata: dict[str, Any] = {"dagster/row_count": report.rows, "rows_written": report.rows}
    metadata.update(table or {})
    metadata.update({key: _value(value) for key, value in report.counts.items()})
    if report.preview is not None:
        metadata["preview"] = table_preview(report.preview)
    metadata.update(extra)
    return metadata
