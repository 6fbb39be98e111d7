"""``arbx bench scale``: the pipeline's stages on a simulated catalogue of N listings.

Runs the same stage functions the assets run (load → normalize → match (blocking, scoring
with the trained model, assignment) → history → opportunities) in-process on the warehouse of
choice, and reports seconds per stage, listings per second, candidate pairs and peak memory.
``total`` excludes generating the catalogue and training the model (both independent of the
pipeline's cost per listing). Peak memory is the whole process tree's (worker processes
included), sampled from ``/proc``.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from arbx_dagster.bench.memory import StageTimer
from arbx_dagster.domain.simulator import simulate_snapshot
from arbx_dagster.pipeline.history import refresh_price_history
from arbx_dagster.pipeline.ingest import ingest_observations
from arbx_dagster.pipeline.listings import refresh_listings
from arbx_dagster.pipeline.matching import refresh_matches, train_match_model
from arbx_dagster.pipeline.opportunities import refresh_opportunities
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse

Progress = Callable[[str], None]


@contextmanager
def scratch_warehouse(postgres_url: str | None) -> Iterator[Warehouse]:
    """A fresh warehouse: a temporary DuckDB file, or a throwaway PostgreSQL schema."""
    if postgres_url is None:
        with tempfile.TemporaryDirectory(prefix="arbx-bench-") as folder:
            warehouse = DuckDBWarehouse(Path(folder) / "bench.duckdb")
            try:
                migrate(warehouse)
                yield warehouse
            finally:
                warehouse.close()
        return
    schema = f"arbx_bench_{int(time.time())}"
    warehouse = PostgresWarehouse(postgres_url)
    try:
        warehouse.execute(f"CREATE SCHEMA {schema}")
        warehouse.execute(f"SET search_path TO {schema}")
        migrate(warehouse)
        yield warehouse
    finally:
        warehouse.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        warehouse.close()


# A tenth of the products carried by several stores get a planted cross-store gap, so the
# opportunities stage has real spreads to find (as many as a live market would hold).
GAP_RATE = 0.1
MATCH_STAGES = ("blocking", "scoring", "assignment")


def run_scale(
    listings: int,
    *,
    retailers: int = 3,
    postgres_url: str | None = None,
    seed: int = 7,
    workers: int | None = None,
    progress: Progress = lambda stage: None,
) -> dict[str, Any]:
    """Measure each stage once on ``listings`` simulated listings.

    Matching runs its blocks on ``workers`` processes (default: every core); its three
    stages interleave across blocks, so their seconds split the matching wall time in
    proportion to the worker time each took. ``match_precision`` / ``match_recall`` score
    the matched pairs against the simulator's ground truth: speed is not bought with
    quality unnoticed.
    """
    from arbx_dagster.domain.schema import RETAILERS

    if not 1 <= retailers <= len(RETAILERS):
        raise ValueError(f"retailers must be between 1 and {len(RETAILERS)}")
    timed = StageTimer(progress)
    seconds, memory = timed.seconds, timed.memory
    with memory:
        market = timed(
            "generate",
            lambda: simulate_snapshot(
                listings, seed=seed, retailers=RETAILERS[:retailers], gap_rate=GAP_RATE
            ),
        )
        truth, scraped = market.truth_listings, market.observations.height
        # the pipeline runs right after the scrape it measures (older prices are stale)
        now = market.observations["observed_at"].max() or datetime.now(UTC)
        with scratch_warehouse(postgres_url) as warehouse:
            timed("load", partial(ingest_observations, warehouse, market.observations, now=now))
            # Past the scrape, the pipeline's stages never hold the raw catalogue again.
            del market
            timed("normalize", lambda: refresh_listings(warehouse, now=now))
            model = timed("train", lambda: train_match_model(warehouse))
            matches = timed(
                "match",
                lambda: refresh_matches(warehouse, now=now, scorer=model, workers=workers),
            )
            timed("history", lambda: refresh_price_history(warehouse))
            found = timed("opportunities", lambda: refresh_opportunities(warehouse, now=now))
            pairs = warehouse.query(
                "SELECT left_retailer, left_sku, right_retailer, right_sku FROM match_pairs"
            )
            engine = warehouse.engine
    seconds.update(_split_match(seconds.pop("match"), matches.counts))
    # Generating the catalogue is not pipeline work; training costs the same at any N.
    pipeline = sum(v for k, v in seconds.items() if k not in ("generate", "train"))
    quality = pair_quality(pairs, truth)
    return {
        "listings": scraped,
        "retailers": retailers,
        "warehouse": engine,
        "seconds": {**seconds, "total": round(pipeline, 3)},
        "listings_per_second": round(scraped / pipeline, 1) if pipeline else None,
        "candidate_pairs": int(matches.counts.get("candidate_pairs", 0)),
        "matched_pairs": int(matches.counts["matched_pairs"]),
        "canonical_products": int(matches.counts["canonical_products"]),
        "match_blocks": int(matches.counts.get("match_blocks", 0)),
        "match_workers": int(matches.counts.get("match_workers", 1)),
        "match_precision": quality["precision"],
        "match_recall": quality["recall"],
        "opportunities": int(found.counts["detected"]),
        "peak_rss_mb": round(memory.mb, 1),
        "peak_rss_mb_by_stage": memory.mb_by_stage,
    }


def _split_match(wall: float, counts: dict[str, Any]) -> dict[str, float]:
    """The matching wall time shared among its stages by the worker seconds of each."""
    worker = [float(counts.get(f"seconds_{stage}", 0.0)) for stage in MATCH_STAGES]
    total = sum(worker)
    if total <= 0:
        return dict.fromkeys(MATCH_STAGES, round(wall / len(MATCH_STAGES), 3))
    return {
        stage: round(wall * part / total, 3)
        for stage, part in zip(MATCH_STAGES, worker, strict=True)
    }


def pair_quality(pairs: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """Precision and recall of matched cross-retailer pairs against the true products."""
    truth_pairs = (
        truth.join(truth, on="true_product_id", suffix="_r")
        .filter(pl.col("retailer") < pl.col("retailer_r"))
        .select(
            pl.col("retailer").alias("left_retailer"),
            pl.col("sku").alias("left_sku"),
            pl.col("retailer_r").alias("right_retailer"),
            pl.col("sku_r").alias("right_sku"),
        )
    )
    keys = list(truth_pairs.columns)
    hits = pairs.select(keys).join(truth_pairs, on=keys, how="semi").height
    return {
        "precision": round(hits / pairs.height, 4) if pairs.height else 1.0,
        "recall": round(hits / truth_pairs.height, 4) if truth_pairs.height else 1.0,
    }
