"""Pipeline KPIs count what the pipeline did; the cache hit rate is ArbX's own; the top
opportunities' price chart reaches the materialization metadata."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from arbx_dagster.assets.intelligence import intelligence_metrics
from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, conform
from arbx_dagster.pipeline.intelligence import pipeline_kpis
from arbx_dagster.resources import CacheResource, ClockResource, WarehouseResource
from arbx_dagster.storage.cache import MemoryCache, RedisCache
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import DuckDBWarehouse, Warehouse

NOW = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


def landed(listings: int, at: datetime, copies: int = 1) -> pl.DataFrame:
    """``listings`` distinct listings landed at ``at``, each observed ``copies`` times."""
    frame = pl.DataFrame(
        {
            "retailer": "paris",
            "sku": [f"p{i}" for i in range(listings) for _ in range(copies)],
            "observed_at": [
                at - timedelta(minutes=c) for _ in range(listings) for c in range(copies)
            ],
            "name": "TV",
            "price_offer": 100_000,
            "currency": "CLP",
            "fetch_status": "ok",
            "source": "test",
        }
    )
    return conform(frame, RAW_PRICE_SCHEMA).with_columns(
        ingested_at=pl.lit(at).cast(RAW_PRICE_SCHEMA["observed_at"])
    )


def opportunity(oid: str, first_seen: datetime, **extra: object) -> dict:
    return {
        "opportunity_id": oid,
        "kind": "spread",
        "canonical_id": "tv",
        "product_name": "Smart TV 55",
        "buy_retailer": "paris",
        "buy_sku": "p0",
        "buy_price": 200_000,
        "buy_price_type": "offer",
        "ref_retailer": "ripley",
        "ref_price": 260_000,
        "margin_clp": 60_000,
        "roi_pct": 30.0,
        "confidence": 0.9,
        "status": "active",
        "first_seen": first_seen,
        "last_seen": NOW,
        "times_seen": 2,
        **extra,
    }


def alert_events(rows: list[tuple[str, str, int, datetime]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["alert_kind", "outcome", "n", "sent_at"], orient="row")


def test_kpis_count_the_last_24_hours(warehouse: Warehouse) -> None:
    # 120 listings landed in the last 24 h (each three times: counted once), 50 earlier.
    warehouse.insert("raw_prices", landed(120, NOW - timedelta(hours=2), copies=3))
    warehouse.insert(
        "raw_prices", landed(170, NOW - timedelta(days=3)).with_columns(sku=pl.col("sku") + "-old")
    )
    opportunities = [opportunity(f"new-{i}", NOW - timedelta(hours=i)) for i in range(6)]
    opportunities += [opportunity(f"old-{i}", NOW - timedelta(days=2)) for i in range(2)]
    warehouse.insert("opportunities", pl.DataFrame(opportunities))
    warehouse.insert(
        "alert_events",
        alert_events(
            [
                ("new_opportunity", "sent", 3, NOW - timedelta(hours=1)),
                ("high_margin", "sent", 2, NOW - timedelta(hours=5)),
                ("not_material", "suppressed", 4, NOW - timedelta(hours=5)),
                ("system_error", "failed", 1, NOW - timedelta(hours=23)),
                ("new_opportunity", "sent", 9, NOW - timedelta(hours=30)),  # too old
            ]
        ),
    )
    kpis = pipeline_kpis(warehouse, NOW)
    assert kpis["listings_refreshed"] == 120
    assert kpis["listings_per_minute"] == pytest.approx(120 / 1440)
    assert kpis["opportunities_per_hour"] == pytest.approx(6 / 24)
    assert (kpis["alerts_sent"], kpis["alerts_suppressed"], kpis["alert_failures"]) == (5, 4, 1)


def test_the_memory_hit_rate_counts_every_cache_of_the_process() -> None:
    before = MemoryCache().cache_stats()
    hits, misses = before.hits, before.misses
    step_one, step_two = MemoryCache(), MemoryCache()  # each step opens its own
    step_one.set("a", "1")
    step_one.get("a")
    step_two.get("a")  # another instance: a miss
    assert step_one.stats.lookups == 1, "the instance still knows its own"
    shared = MemoryCache().cache_stats()
    assert (shared.hits - hits, shared.misses - misses) == (1, 1)


def test_the_redis_hit_rate_is_arbxs_own_lookups_across_processes(redis_url: str) -> None:
    prefix = f"arbx-test:{uuid.uuid4().hex[:8]}:"
    worker, api, other = (
        RedisCache(redis_url, prefix=prefix),
        RedisCache(redis_url, prefix=prefix),
        RedisCache(redis_url, prefix=prefix + "other:"),
    )
    try:
        worker.set("k", "v")
        for _ in range(3):
            worker.get("k")
        api.get("missing")
        other.get("missing")  # another deployment (prefix): not ours
        worker.close()  # pending counts are flushed on close
        stats = api.cache_stats()
        assert (stats.hits, stats.misses) == (3, 1)
        assert api.hit_rate() == 0.75
    finally:
        for cache in (api, other):
            cache.delete_matching("*")
            cache.close()


def test_the_top_opportunities_price_chart_is_in_the_metadata(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with DuckDBWarehouse(path) as warehouse:
        migrate(warehouse)
        days = [date(2026, 11, 23) - timedelta(days=d) for d in range(10)]
        history = pl.DataFrame(
            {
                "retailer": ["paris"] * 10 + ["ripley"] * 10,
                "sku": ["p0"] * 10 + ["r0"] * 10,
                "day": days * 2,
                "price_offer": [200_000] * 10 + [260_000] * 10,
                "in_stock": True,
                "observations": 1,
            }
        )
        warehouse.insert("price_history", history)
        warehouse.insert(
            "product_matches",
            pl.DataFrame(
                {
                    "retailer": ["paris", "ripley"],
                    "sku": ["p0", "r0"],
                    "canonical_id": "tv",
                    "match_probability": 0.95,
                    "matched_at": NOW,
                }
            ),
        )
        warehouse.insert("opportunities", pl.DataFrame([opportunity("o1", NOW)]))
    result = intelligence_metrics(
        context=dg.build_asset_context(),
        warehouse=WarehouseResource(duckdb_path=str(path)),
        cache=CacheResource(),
        clock=ClockResource(as_of=NOW.isoformat()),
    )
    metadata = result.metadata
    chart = metadata["top_opportunities_prices"].value
    assert chart.startswith("![prices of the top opportunities](data:image/png;base64,")
    assert len(chart) > 5_000, "a real image, not the empty placeholder"
    kpis = metadata["kpis"].value
    assert {"listings_per_minute", "opportunities_per_hour", "alerts_sent", "cache_hit_rate"} <= (
        set(kpis)
    )
