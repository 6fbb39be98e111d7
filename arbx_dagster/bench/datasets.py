"""Two-catalogue entity-matching benchmarks read from disk (``arbx bench matching``,
``arbx bench opportunities``, ``arbx model build``).

A dataset folder holds ``left.csv`` and ``right.csv`` (the two catalogues, column ``id``
plus the source's attributes), ``matches.csv`` (``left_id,right_id``), the labelled pair
splits ``pairs/{train,valid,test}.jsonl`` and ``dataset.json``, whose ``fields`` map the
source's attribute names onto listing fields (``name``, ``description``, ``brand``,
``model``, ``category``, ``price``). The two catalogues play two retailers. Nothing here
knows any particular dataset: only ``fields`` says which attribute is what. What is done
with a loaded benchmark (feature frames, metrics) is the domain's
(``domain.matching.evaluation``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

from arbx_dagster.domain.matching.evaluation import SPLITS, Benchmark

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTING_FIELDS = ("name", "description", "brand", "model", "category", "price")


class BenchmarkError(ValueError):
    """The dataset folder is missing a file or a file does not have the expected shape."""


def datasets_dir() -> Path:
    """Where the benchmark datasets are: ``$ARBX_DATASETS_DIR`` or ``<repo>/../shared/datasets``."""
    env = os.environ.get("ARBX_DATASETS_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


def _resolve(dataset: str | Path, root: Path | None) -> Path:
    if root is not None:
        return Path(root) / str(dataset)
    path = Path(dataset)
    return path if path.is_dir() or path.is_absolute() else datasets_dir() / str(dataset)


TABLE_FILES = ("left.csv", "right.csv", "matches.csv")


def _read_meta(folder: Path) -> dict:
    if not folder.is_dir():
        raise BenchmarkError(f"{folder} is not a directory")
    if not (folder / "dataset.json").is_file():
        raise BenchmarkError(f"{folder} is missing dataset.json")
    try:
        meta = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkError(f"{folder / 'dataset.json'} is not valid JSON: {exc}") from None
    if has_tables(meta):
        missing = [name for name in TABLE_FILES if not (folder / name).is_file()]
        if missing:
            raise BenchmarkError(
                f"{folder} is missing {', '.join(missing)} "
                '(a dataset of labelled pairs only says "tables": false in dataset.json)'
            )
    fields = meta.get("fields") if isinstance(meta, dict) else None
    if not isinstance(fields, dict) or "name" not in fields:
        raise BenchmarkError(
            f"{folder / 'dataset.json'} needs a 'fields' object mapping at least 'name'"
        )
    unknown = set(fields) - set(LISTING_FIELDS)
    if unknown:
        raise BenchmarkError(
            f"{folder / 'dataset.json'}: unknown listing fields {sorted(unknown)} "
            f"(known: {', '.join(LISTING_FIELDS)})"
        )
    return meta


def has_tables(meta: dict) -> bool:
    """Whether a dataset has its two full catalogues (``"tables": false``: pairs only)."""
    return bool(meta.get("tables", True)) if isinstance(meta, dict) else True


def _price_cents(expr: pl.Expr) -> pl.Expr:
    """'$1,299.00' -> 129900; anything unparsable -> null (integer cents, as listings)."""
    value = expr.cast(pl.String).str.replace_all(r"[^0-9.]", "").cast(pl.Float64, strict=False)
    return (value * 100).round(0).cast(pl.Int64)


def _as_listing_fields(raw: pl.DataFrame, fields: dict[str, str], prefix: str = "") -> list:
    """Expressions for the listing fields from a frame with the source's column names."""
    cols = []
    for target in ("name", "description", "brand", "model", "category"):
        src = fields.get(target)
        expr = (
            pl.col(prefix + src).cast(pl.String)
            if src is not None and prefix + src in raw.columns
            else pl.lit(None, pl.String)
        )
        cols.append(expr.alias(target))
    src = fields.get("price")
    cols.append(
        _price_cents(pl.col(prefix + src))
        if src is not None and prefix + src in raw.columns
        else pl.lit(None, pl.Int64)
    )
    cols[-1] = cols[-1].alias("price_offer")
    return cols


def _catalogue(folder: Path, file: str, retailer: str, fields: dict[str, str]) -> pl.DataFrame:
    try:
        raw = pl.read_csv(folder / file, infer_schema=False)
    except Exception as exc:  # polars raises several error types for broken CSV
        raise BenchmarkError(f"cannot read {folder / file}: {exc}") from None
    if "id" not in raw.columns:
        raise BenchmarkError(f"{folder / file} has no 'id' column")
    if fields["name"] not in raw.columns:
        raise BenchmarkError(
            f"{folder / file} has no column {fields['name']!r} (the 'name' field in dataset.json)"
        )
    return raw.select(
        pl.lit(retailer).alias("retailer"),
        pl.col("id").alias("sku"),
        *_as_listing_fields(raw, fields),
    )


# A catalogue as ``_catalogue`` reads it (the empty frame of a pair-only dataset).
_CATALOGUE_SCHEMA: dict[str, pl.DataType] = {
    "retailer": pl.String(),
    "sku": pl.String(),
    **{name: pl.String() for name in ("name", "description", "brand", "model", "category")},
    "price_offer": pl.Int64(),
}


def _pairs(path: Path, fields: dict[str, str], limit: int | None) -> pl.DataFrame:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                left, right, label = obj["left"], obj["right"], int(obj["label"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                raise BenchmarkError(
                    f"{path}:{number}: expected {{'left': {{...}}, 'right': {{...}}, 'label': 0|1}}"
                ) from None
            row = {"label": label}
            for side, record in (("left", left), ("right", right)):
                for src in fields.values():
                    value = record.get(src)
                    row[f"{side}_{src}"] = None if value is None else str(value)
            rows.append(row)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    if limit is not None:
        frame = frame.head(limit)
    return frame.select(
        pl.col("label").cast(pl.Int8),
        *[e.name.prefix("left_") for e in _as_listing_fields(frame, fields, "left_")],
        *[e.name.prefix("right_") for e in _as_listing_fields(frame, fields, "right_")],
    )


def load_benchmark(
    dataset: str | Path, root: Path | None = None, *, limit: int | None = None
) -> Benchmark:
    """Read a dataset folder (a path, or a name under ``root`` / ``datasets_dir()``).

    ``limit`` keeps the first ``limit`` pairs of each split, the catalogue rows behind
    them (found by folded title) with their true partners, and the true matches among
    those rows: a small self-consistent benchmark for quick checks. Raises
    ``BenchmarkError`` with a readable message when the folder is malformed.
    """
    folder = _resolve(dataset, root)
    meta = _read_meta(folder)
    fields: dict[str, str] = {k: str(v) for k, v in meta["fields"].items()}
    left_name = str(meta.get("left_name", "left"))
    right_name = str(meta.get("right_name", "right"))
    if left_name == right_name:
        right_name = right_name + "_2"
    if has_tables(meta):
        listings = pl.concat(
            [
                _catalogue(folder, "left.csv", left_name, fields),
                _catalogue(folder, "right.csv", right_name, fields),
            ]
        )
        try:
            truth = pl.read_csv(folder / "matches.csv", infer_schema=False).select(
                pl.col("left_id").alias("left_sku"), pl.col("right_id").alias("right_sku")
            )
        except Exception as exc:
            raise BenchmarkError(
                f"{folder / 'matches.csv'} needs columns left_id,right_id ({exc})"
            ) from None
    else:
        listings = pl.DataFrame(schema=_CATALOGUE_SCHEMA)
        truth = pl.DataFrame(schema={"left_sku": pl.String, "right_sku": pl.String})
    pairs = {}
    for split in SPLITS:
        path = folder / "pairs" / f"{split}.jsonl"
        if path.is_file():
            pairs[split] = _pairs(path, fields, limit)
    if limit is not None and listings.height:
        listings, truth = _subset(listings, truth, pairs, left_name, right_name)
    return Benchmark(
        str(meta.get("name", folder.name)),
        listings,
        truth,
        left_name,
        right_name,
        fields,
        pairs,
        tables=has_tables(meta),
    )


def _subset(
    listings: pl.DataFrame,
    truth: pl.DataFrame,
    pairs: dict[str, pl.DataFrame],
    left: str,
    right: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The catalogue rows behind the (already truncated) pairs, with their true partners,
    and the true matches among those rows: a small, self-consistent benchmark."""

    def key(expr: pl.Expr) -> pl.Expr:
        return expr.str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "")

    names = pl.concat(
        [
            frame.select(
                pl.lit(retailer).alias("retailer"), key(pl.col(f"{side}_name")).alias("key")
            )
            for frame in pairs.values()
            for side, retailer in (("left", left), ("right", right))
        ]
        or [pl.DataFrame(schema={"retailer": pl.String, "key": pl.String})]
    ).unique()
    twins = (
        listings.with_columns(key=key(pl.col("name")))
        .join(names, on=["retailer", "key"], how="semi")
        .select("retailer", "sku")
    )
    left_ids = twins.filter(pl.col("retailer") == left)["sku"]
    right_ids = twins.filter(pl.col("retailer") == right)["sku"]
    partners = truth.filter(
        pl.col("left_sku").is_in(left_ids.implode())
        | pl.col("right_sku").is_in(right_ids.implode())
    )
    chosen = pl.concat(
        [
            twins,
            partners.select(pl.lit(left).alias("retailer"), pl.col("left_sku").alias("sku")),
            partners.select(pl.lit(right).alias("retailer"), pl.col("right_sku").alias("sku")),
        ]
    ).unique()
    return listings.join(chosen, on=["retailer", "sku"], how="semi"), partners
