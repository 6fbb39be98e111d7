"""Load a two-catalog entity-matching benchmark as listings, and score a match against it.

The datasets live outside the repository (``$ARBX_DATASETS_DIR``, default
``<repo>/../shared/datasets``), one folder each with ``left.csv``, ``right.csv``,
``matches.csv`` and ``dataset.json`` whose ``fields`` map the source's attribute names
onto listing fields. The two catalogs play two retailers. Nothing here knows any
particular dataset: other datasets of the same shape must work unchanged.

Run ``python -m arbx_dagster.domain.matching.benchmark abt_buy`` to print the numbers.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from arbx_dagster.domain.schema import LISTING_SCHEMA, conform

REPO_ROOT = Path(__file__).resolve().parents[3]


def datasets_dir() -> Path:
    """Where the benchmark datasets are: ``$ARBX_DATASETS_DIR`` or ``<repo>/../shared/datasets``."""
    env = os.environ.get("ARBX_DATASETS_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "datasets"


@dataclass(frozen=True)
class Benchmark:
    name: str
    listings: pl.DataFrame  # raw listing columns, not yet enriched
    truth: pl.DataFrame  # left_sku, right_sku
    left_retailer: str
    right_retailer: str


def load_benchmark(name: str, root: Path | None = None) -> Benchmark:
    """Read one dataset folder into listing rows (retailer = catalog name, sku = id)."""
    folder = (root or datasets_dir()) / name
    meta = json.loads((folder / "dataset.json").read_text())
    fields: dict[str, str] = meta.get("fields", {})
    left_name = str(meta.get("left_name", "left"))
    right_name = str(meta.get("right_name", "right"))
    if left_name == right_name:
        right_name = right_name + "_2"

    def side(file: str, retailer: str) -> pl.DataFrame:
        raw = pl.read_csv(folder / file, infer_schema=False)
        cols: dict[str, pl.Expr] = {
            "retailer": pl.lit(retailer),
            "sku": pl.col("id"),
        }
        for target in ("name", "brand", "model", "category"):
            src = fields.get(target)
            cols[target] = pl.col(src) if src in raw.columns else pl.lit(None, pl.String)
        price_src = fields.get("price")
        price = (
            pl.col(price_src).str.replace_all(r"[^0-9.]", "").cast(pl.Float64, strict=False)
            if price_src in raw.columns
            else pl.lit(None, pl.Float64)
        )
        # Prices are integers in the listing contract: keep cents so ratios stay exact.
        cols["price_offer"] = (price * 100).round(0).cast(pl.Int64)
        return raw.select(**cols)

    listings = pl.concat([side("left.csv", left_name), side("right.csv", right_name)])
    truth = pl.read_csv(folder / "matches.csv", infer_schema=False).select(
        pl.col("left_id").alias("left_sku"), pl.col("right_id").alias("right_sku")
    )
    return Benchmark(name, listings, truth, left_name, right_name)


def to_listing_frame(enriched: pl.DataFrame) -> pl.DataFrame:
    """Conform enriched benchmark rows to ``LISTING_SCHEMA`` (what the pipeline feeds)."""
    return conform(enriched, LISTING_SCHEMA)


def pair_metrics(
    predicted: pl.DataFrame, truth: pl.DataFrame, left_retailer: str
) -> dict[str, float]:
    """Precision / recall / F1 of predicted cross-catalog pairs against the true pairs.

    ``predicted`` has MATCH_PAIR_SCHEMA columns; pairs are re-oriented so the left
    catalog's sku comes first whatever order the matcher emitted them in.
    """
    oriented = predicted.select(
        pl.when(pl.col("left_retailer") == left_retailer)
        .then(pl.col("left_sku"))
        .otherwise(pl.col("right_sku"))
        .alias("left_sku"),
        pl.when(pl.col("left_retailer") == left_retailer)
        .then(pl.col("right_sku"))
        .otherwise(pl.col("left_sku"))
        .alias("right_sku"),
    ).unique()
    tp = oriented.join(truth.unique(), on=["left_sku", "right_sku"], how="inner").height
    precision = tp / oriented.height if oriented.height else 0.0
    recall = tp / truth.height if truth.height else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "tp": float(tp),
        "predicted": float(oriented.height),
        "true": float(truth.height),
    }


def run(name: str) -> dict[str, float]:
    """Enrich, block, match and score one dataset; returns the measured numbers."""
    from arbx_dagster.domain.matching import match_listings
    from arbx_dagster.domain.matching.blocking import blocking_recall
    from arbx_dagster.domain.matching.normalize import enrich_listings

    bench = load_benchmark(name)
    t0 = time.perf_counter()
    listings = to_listing_frame(enrich_listings(bench.listings))
    result = match_listings(listings)
    seconds = time.perf_counter() - t0
    out = dict(result.stats)
    out.update(blocking_recall(result.candidates, bench.truth, bench.left_retailer))
    n_left = listings.filter(pl.col("retailer") == bench.left_retailer).height
    out["candidates_per_left_record"] = result.candidates.height / max(n_left, 1)
    out.update(pair_metrics(result.pairs, bench.truth, bench.left_retailer))
    out["seconds"] = seconds
    return out


if __name__ == "__main__":
    for dataset in sys.argv[1:] or ["abt_buy"]:
        print(dataset)
        for key, value in run(dataset).items():
            print(
                f"  {key:32s} {value:.4f}" if isinstance(value, float) else f"  {key:32s} {value}"
            )
