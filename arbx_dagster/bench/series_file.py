"""User series for ``arbx bench glitches --series FILE.csv``: reading and validating the file.

Columns ``product_id, retailer, sku, observed_at`` (ISO date or datetime; a bare date is
taken as noon in Santiago), ``price_offer`` (CLP, read as the ingestion reads prices —
``12990``, ``12.990`` — and as a program writes a float column: ``12990.0``), optional
``price_list``, ``price_card`` (empty or 0 when not shown), ``in_stock`` (true/false),
``category``, ``name`` (the title; pack sizes are read from it; default: the product id)
and ``is_glitch`` (1/0).
``product_id`` names the product across stores (it is used as the canonical id, so stores
selling the same product must share it). A file that cannot be scored raises
:class:`SeriesError` saying what to fix.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from arbx_dagster.domain.history import MARKET_TZ
from arbx_dagster.ingestion.prices import clp_error_expr, clp_expr


class SeriesError(ValueError):
    """A user-supplied series file that cannot be scored (message says what to fix)."""


REQUIRED_COLUMNS = ("product_id", "retailer", "sku", "observed_at", "price_offer")
OPTIONAL_COLUMNS = ("price_list", "price_card", "in_stock", "is_glitch", "category", "name")
# A whole amount as a program writes a float column with gaps (pandas: 12990.0). File drops
# refuse it (in a CLP column it suggests another currency's export); a series is CLP.
FLOAT_EXPORT = r"^\s*(\d+)\.0{1,2}\s*$"
# 1.0 / 0.0: a flag column with gaps, as pandas writes it; stock as schema.org and stores
# spell it ('InStock', 'out_of_stock', 'agotado').
_TRUE = {"true", "1", "1.0", "yes", "t", "y", "instock", "in_stock", "in stock", "available"}
_FALSE = {"false", "0", "0.0", "no", "f", "n", ""}
_FALSE |= {"outofstock", "out_of_stock", "out of stock", "soldout", "sold_out", "agotado"}


def _bad_rows(frame: pl.DataFrame, bad: pl.Expr, column: str, expected: str) -> None:
    rows = frame.with_row_index("row", offset=2).filter(bad)  # header is line 1
    if rows.height:
        sample = ", ".join(
            f"line {r['row']}: {r[column]!r}" for r in rows.head(3).iter_rows(named=True)
        )
        more = f" (and {rows.height - 3} more)" if rows.height > 3 else ""
        raise SeriesError(f"column {column!r} expects {expected}; got {sample}{more}")


def _parse_time(text: pl.Expr) -> pl.Expr:
    """ISO datetime (with an offset — ``+00:00``, ``+0000``, ``+00`` —, ``Z`` or ``UTC``, or
    naive = Santiago time) or bare date (noon)."""
    value = text.str.strip_chars()
    is_date = value.str.len_chars() == 10
    local_noon = (
        value.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")) + pl.duration(hours=12)
    ).dt.replace_time_zone(MARKET_TZ, ambiguous="earliest", non_existent="null")
    normalized = (
        value.str.replace(r"(?i)\s*(Z|UTC)$", "+00:00")  # 08:53:00Z, 08:53:00 UTC
        .str.replace(r"([+-]\d{2})$", "$1:00")  # 08:53:00+00, as PostgreSQL and DuckDB write
        .str.replace(" ", "T")
    )
    has_offset = normalized.str.contains(r"[+-]\d{2}:?\d{2}$")
    aware = normalized.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us"
    ).dt.convert_time_zone("UTC")
    naive = (
        normalized.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        .fill_null(normalized.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us"))
        .dt.replace_time_zone(MARKET_TZ, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return (
        pl.when(is_date)
        .then(local_noon.dt.convert_time_zone("UTC"))
        .when(has_offset)
        .then(aware)
        .otherwise(naive)
    )


def load_series(path: str | Path) -> pl.DataFrame:
    """Read and validate a series CSV; raise :class:`SeriesError` saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise SeriesError(f"series file not found: {path}")
    try:
        raw = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        raise SeriesError(f"cannot read {path} as CSV with a header: {exc}") from None
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise SeriesError(
            f"{path.name} lacks required column(s) {', '.join(missing)}; expected "
            f"{', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
        )
    if raw.is_empty():
        raise SeriesError(f"{path.name} has a header but no rows")
    for column in ("product_id", "retailer", "sku"):
        _bad_rows(raw, pl.col(column).str.strip_chars().fill_null("") == "", column, "a value")

    frame = raw.with_columns(
        pl.col("retailer").str.strip_chars().str.to_lowercase(),
        pl.col("sku").str.strip_chars(),
        pl.col("product_id").str.strip_chars(),
        _observed_at=_parse_time(pl.col("observed_at")),
    )
    _bad_rows(frame, pl.col("_observed_at").is_null(), "observed_at", "an ISO date or datetime")
    for column in ("price_offer", "price_list", "price_card"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias(column))
            continue
        text = pl.col(column).str.replace(FLOAT_EXPORT, "$1")
        value = clp_expr(text)
        required = column == "price_offer"
        if required:
            bad = clp_error_expr(text) | value.is_null() | (value <= 0).fill_null(False)
        else:  # 0: no list or card price shown, as some writers fill a gap
            bad = clp_error_expr(text) | (value < 0).fill_null(False)
            value = pl.when(value > 0).then(value)
        _bad_rows(frame, bad, column, "a positive CLP amount" + ("" if required else " or empty"))
        frame = frame.with_columns(value.alias(column))
    for column, default in (("in_stock", "true"), ("is_glitch", "0")):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(default).alias(column))
        text = pl.col(column).fill_null(default).str.strip_chars().str.to_lowercase()
        _bad_rows(frame, ~text.is_in([*_TRUE, *_FALSE]), column, "true/false or 1/0")
        frame = frame.with_columns(text.is_in(list(_TRUE)).alias(column))
    if "category" not in frame.columns:
        frame = frame.with_columns(category=pl.lit(None, dtype=pl.String))
    frame = frame.with_columns(observed_at=pl.col("_observed_at")).drop("_observed_at")
    duplicated = frame.select("retailer", "sku", "observed_at").is_duplicated()
    if duplicated.any():
        _bad_rows(
            frame.with_columns(dup=duplicated),
            pl.col("dup"),
            "observed_at",
            "one observation per retailer, sku and time",
        )
    name = pl.col("name").fill_null(pl.col("product_id")) if "name" in frame.columns else None
    return frame.with_columns(
        name=pl.col("product_id") if name is None else name,
        url=pl.lit(None, dtype=pl.String),
        currency=pl.lit("CLP"),
    )
