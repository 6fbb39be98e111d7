"""``arbx bench scale``: the pipeline's stages on a simulated catalogue of N listings.

Runs the same stage functions the assets run (load → normalise → match (blocking, scoring
with the trained model, assignment) → history → opportunities) in-process on the warehouse of
choice, and reports seconds per stage, listings per second, candidate pairs and peak memory.
``total`` excludes generating the catalogue and training the model (both independent of the
pipeline's cost per listing).
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arbx_dagster.domain.simulator import simulate_catalogue
from arbx_dagster.pipeline.history import refresh_price_history
from arbx_dagster.pipeline.ingest import ingest_observations
from arbx_dagster.pipeline.listings import refresh_listings
from arbx_dagster.pipeline.matching import refresh_matches, train_match_model
from arbx_dagster.pipeline.opportunities import refresh_opportunities
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import DuckDBWarehouse, PostgresWarehouse, Warehouse

Progress = Callable[[str], None]


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def run_scale(
    listings: int,
    *,
    retailers: int = 3,
    postgres_url: str | None = None,
    seed: int = 7,
    progress: Progress = lambda stage: None,
) -> dict[str, Any]:
    """Measure each stage once on ``listings`` simulated listings."""
    from arbx_dagster.domain.schema import RETAILERS

    if not 1 <= retailers <= len(RETAILERS):
        raise ValueError(f"retailers must be between 1 and {len(RETAILERS)}")
    seconds: dict[str, float] = {}

    def timed(stage: str, work: Callable[[], Any]) -> Any:
        progress(stage)
        started = time.perf_counter()
        result = work()
        seconds[stage] = round(time.perf_counter() - started, 3)
        return result

    catalogue = timed(
        "generate", lambda: simulate_catalogue(listings, seed=seed, retailers=RETAILERS[:retailers])
    )
    now = max(catalogue["observed_at"].max(), datetime.now(UTC))  # type: ignore[type-var]
    with scratch_warehouse(postgres_url) as warehouse:
        timed("load", lambda: ingest_observations(warehouse, catalogue, now=now))
        timed("normalize", lambda: refresh_listings(warehouse, now=now))
        model = timed("train", lambda: train_match_model(warehouse))
        matches = timed("match", lambda: refresh_matches(warehouse, now=now, scorer=model))
        timed("history", lambda: refresh_price_history(warehouse))
        found = timed("opportunities", lambda: refresh_opportunities(warehouse, now=now))
        engine = warehouse.engine
    # Generating the catalogue is not pipeline work; training costs the same at any N.
    pipeline = sum(v for k, v in seconds.items() if k not in ("generate", "train"))
    return {
        "listings": catalogue.height,
        "retailers": retailers,
        "warehouse": engine,
        "seconds": {**seconds, "total": round(pipeline, 3)},
        "listings_per_second": round(catalogue.height / pipeline, 1) if pipeline else None,
        "candidate_pairs": int(matches.counts.get("candidate_pairs", 0)),
        "matched_pairs": int(matches.counts["matched_pairs"]),
        "canonical_products": int(matches.counts["canonical_products"]),
        "opportunities": int(found.counts["detected"]),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
