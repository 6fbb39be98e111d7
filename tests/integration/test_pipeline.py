"""The whole asset graph, materialized in-process, finds what the simulator planted.

Runs once on the embedded defaults (DuckDB + in-process cache) and once on real
PostgreSQL + Redis, and the two must agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from instances import BY_NAME, ephemeral_instance
from warehouse_cleanup import drop_arbx_schema

from arbx_dagster.assets import ALL_ASSETS, ALL_CHECKS
from arbx_dagster.domain.history import MARKET_TZ, day_of
from arbx_dagster.domain.simulator import SimulatedMarket, SimulatorConfig, simulate_market
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)
from arbx_dagster.storage.warehouse import Warehouse, open_warehouse

pytestmark = pytest.mark.slow

AS_OF = "2026-11-23T21:00:00+00:00"
AS_OF_SECOND_RUN = "2026-11-23T22:00:00+00:00"  # an hour later: a new run, same market
NOW = datetime.fromisoformat(AS_OF)
SIMULATION = {"seed": 11, "n_products": 160, "days": 45}
TABLES = [
    "raw_prices",
    "quarantine",
    "listings",
    "product_matches",
    "match_pairs",
    "canonical_products",
    "price_history",
    "opportunities",
    "listing_tiers",
    "intelligence_metrics",
]


@dataclass
class PipelineRun:
    market: SimulatedMarket
    results: list[dg.ExecuteInProcessResult]
    warehouse: Warehouse
    counts_after_first_run: dict[str, int]

    def metadata(self, asset: str, run: int = 0) -> dict[str, Any]:
        events = self.results[run].get_asset_materialization_events()
        for event in events:
            if event.asset_key.path[-1] == asset:
                meta = event.step_materialization_data.materialization.metadata
                return {k: getattr(v, "value", v) for k, v in meta.items()}
        raise KeyError(asset)

    def table_counts(self) -> dict[str, int]:
        return {t: int(self.warehouse.scalar(f"SELECT count(*) FROM {t}")) for t in TABLES}


def _sources_file(folder: Path) -> Path:
    """A sources.yaml with only the simulator, archiving under ``folder``."""
    path = folder / "sources.yaml"
    path.write_text(
        f"""
version: 1
archive: {{root: {folder / "archive"}}}
retailers:
  - name: simulator
    connector: simulator
    seed: {SIMULATION["seed"]}
    n_products: {SIMULATION["n_products"]}
    days: {SIMULATION["days"]}
""",
        encoding="utf-8",
    )
    return path


def _materialize(resources: dict[str, Any], as_of: str) -> dg.ExecuteInProcessResult:
    today = day_of(datetime.fromisoformat(as_of))
    first = today - timedelta(days=SIMULATION["days"] - 1)
    return dg.materialize(
        [*ALL_ASSETS, *ALL_CHECKS],
        resources={**resources, "clock": ClockResource(as_of=as_of), "alerts": AlertsResource()},
        tags={
            "dagster/asset_partition_range_start": f"{first.isoformat()}|{BY_NAME[0]}",
            "dagster/asset_partition_range_end": f"{today.isoformat()}|{BY_NAME[-1]}",
        },
        instance=ephemeral_instance(),
    )


def _run_twice(postgres_url: str | None, redis_url: str | None, folder: Path) -> PipelineRun:
    duckdb_path = folder / "warehouse.duckdb"
    resources = {
        "warehouse": WarehouseResource(postgres_url=postgres_url, duckdb_path=str(duckdb_path)),
        "cache": CacheResource(redis_url=redis_url),
        "sources": SourcesResource(path=str(_sources_file(folder))),
    }
    first = _materialize(resources, AS_OF)
    with open_warehouse(postgres_url, duckdb_path) as warehouse:
        counts = {t: int(warehouse.scalar(f"SELECT count(*) FROM {t}")) for t in TABLES}
    second = _materialize(resources, AS_OF_SECOND_RUN)
    market = simulate_market(SimulatorConfig(**SIMULATION, end=day_of(NOW), now=NOW))
    return PipelineRun(market, [first, second], open_warehouse(postgres_url, duckdb_path), counts)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    run = _run_twice(None, None, tmp_path_factory.mktemp("embedded"))
    yield run
    run.warehouse.close()


def _live(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query(
        "SELECT opportunity_id, kind, buy_retailer, buy_sku, buy_price, ref_price, margin_clp, "
        "roi_pct, severity, status FROM opportunities WHERE status <> 'expired' "
        "ORDER BY opportunity_id"
    )


def test_every_run_succeeds_with_its_checks(embedded: PipelineRun) -> None:
    for result in embedded.results:
        assert result.success
        checks = result.get_asset_check_evaluations()
        # every separate check, and raw_prices' own rows_landed
        assert len(checks) == len(ALL_CHECKS) + 1, "asset checks should run with the assets"
        failed = [c.check_name for c in checks if not c.passed]
        # Simulated listings are judged by the simulator's daily cadence: nothing fails.
        assert failed == []


def test_ingestion_counts_add_up_and_malformed_rows_are_quarantined(embedded: PipelineRun) -> None:
    meta = embedded.metadata("raw_prices")["run_totals"]
    assert meta["fetched"] == embedded.market.observations.height
    assert meta["fetched"] == meta["stored"] + meta["quarantined"] + meta["repeated"]
    assert meta["repeated"] == 0
    assert meta["quarantined"] == embedded.market.truth_malformed.height
    stored = embedded.warehouse.scalar("SELECT count(*) FROM raw_prices")
    assert stored == meta["stored"]


def test_each_raw_price_partition_reports_its_own_rows(embedded: PipelineRun) -> None:
    events = [
        e for e in embedded.results[1].get_asset_materialization_events()
        if e.asset_key.path[-1] == "raw_prices"
    ]  # fmt: skip
    assert len(events) == SIMULATION["days"] * len(BY_NAME)  # one per day x retailer
    reported = {e.partition: e.materialization.metadata["dagster/row_count"].value for e in events}
    stored = embedded.warehouse.query("SELECT retailer, observed_at FROM raw_prices").with_columns(
        day=pl.col("observed_at").dt.convert_time_zone(MARKET_TZ).dt.date()
    )
    per_partition = {
        f"{day.isoformat()}|{retailer}": n
        for retailer, day, n in stored.group_by("retailer", "day").len().iter_rows()
    }
    assert {k: v for k, v in reported.items() if v} == per_partition
    assert sum(reported.values()) == stored.height > max(reported.values())


def test_warehouse_assets_describe_their_table(embedded: PipelineRun) -> None:
    tables = {
        "raw_prices": "raw_prices",
        "normalized_listings": "listings",
        "product_matches": "product_matches",
        "price_history": "price_history",
        "opportunities": "opportunities",
        "intelligence_metrics": "intelligence_metrics",
    }
    for asset, table in tables.items():
        meta = embedded.metadata(asset)
        assert meta["dagster/table_name"].endswith(f".main.{table}"), asset
        assert meta["dagster/storage_kind"] == "duckdb"
        columns = [c.name for c in meta["dagster/column_schema"].columns]
        assert (
            columns
            == embedded.warehouse.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
                "ORDER BY ordinal_position",
                [table],
            )["column_name"].to_list()
        ), asset
        if asset != "raw_prices":  # (raw prices: per partition, above)
            rows = embedded.warehouse.scalar(f"SELECT count(*) FROM {table}")
            assert meta["dagster/row_count"] == rows, asset
        if "preview" in meta:
            assert isinstance(meta["preview"], dg.TableMetadataValue), asset


def test_rematerializing_does_not_duplicate_rows(embedded: PipelineRun) -> None:
    assert embedded.table_counts() == embedded.counts_after_first_run


def test_opportunities_become_active_on_the_second_run(embedded: PipelineRun) -> None:
    statuses = embedded.warehouse.query(
        "SELECT status, count(*) AS n FROM opportunities GROUP BY status"
    )
    counts = dict(statuses.iter_rows())
    assert counts.get("active", 0) > 0
    assert counts.get("new", 0) == 0  # everything seen twice is active
    assert embedded.warehouse.scalar("SELECT max(times_seen) FROM opportunities") == 2


def _truth_products(market: SimulatedMarket) -> pl.DataFrame:
    return market.truth_listings.select("retailer", "sku", "true_product_id")


def test_listings_of_the_same_product_are_matched(embedded: PipelineRun) -> None:
    matches = embedded.warehouse.query("SELECT retailer, sku, canonical_id FROM product_matches")
    joined = matches.join(_truth_products(embedded.market), on=["retailer", "sku"])
    # Pairwise precision/recall over listings of different retailers.
    pairs = joined.join(joined, on="canonical_id", suffix="_b").filter(
        pl.col("retailer") < pl.col("retailer_b")
    )
    predicted_true = pairs.filter(pl.col("true_product_id") == pl.col("true_product_id_b")).height
    precision = predicted_true / max(pairs.height, 1)
    truth_pairs = joined.join(joined, on="true_product_id", suffix="_b").filter(
        pl.col("retailer") < pl.col("retailer_b")
    )
    recall = predicted_true / max(truth_pairs.height, 1)
    assert precision >= 0.95, precision
    assert recall >= 0.85, recall

    # A known three-retailer product ends up in one canonical product.
    three = (
        joined.group_by("true_product_id")
        .agg(pl.col("retailer").n_unique().alias("n"))
        .filter(pl.col("n") == 3)
        .sort("true_product_id")["true_product_id"]
    )
    assert three.len() > 0
    clustered = joined.filter(pl.col("true_product_id").is_in(three.to_list()))
    together = clustered.group_by("true_product_id").agg(pl.col("canonical_id").n_unique())
    assert (together["canonical_id"] == 1).mean() >= 0.9


def test_planted_glitches_live_today_are_found(embedded: PipelineRun) -> None:
    today = day_of(NOW)
    planted = (
        embedded.market.truth_glitches.filter(
            pl.col("observed_at").dt.convert_time_zone("America/Santiago").dt.date() == today
        )
        .select("retailer", "sku")
        .unique()
    )
    assert planted.height > 0, "the simulator should plant glitches live on the last day"
    found = (
        _live(embedded.warehouse)
        .filter(pl.col("kind") == "glitch")
        .select(retailer="buy_retailer", sku="buy_sku")
        .unique()
    )
    hits = found.join(planted, on=["retailer", "sku"]).height
    assert hits / planted.height >= 0.9
    assert hits / max(found.height, 1) >= 0.9


def test_planted_gaps_live_today_are_found_as_spreads(embedded: PipelineRun) -> None:
    today = day_of(NOW)
    gaps = embedded.market.truth_gaps.filter(
        (pl.col("start_day") <= today) & (pl.col("end_day") >= today)
    ).select(retailer="cheap_retailer", sku="cheap_sku")
    assert gaps.height > 0, "the simulator should plant gaps live on the last day"
    spreads = _live(embedded.warehouse).filter(pl.col("kind") == "spread")
    found = spreads.select(retailer="buy_retailer", sku="buy_sku")
    assert found.join(gaps, on=["retailer", "sku"]).height / gaps.height >= 0.8
    assert (spreads["margin_clp"] >= 10_000).all() and (spreads["roi_pct"] >= 8.0).all()


def test_intelligence_assigns_every_listing_a_tier(embedded: PipelineRun) -> None:
    tiers = embedded.warehouse.query("SELECT tier, count(*) AS n FROM listing_tiers GROUP BY tier")
    assert set(tiers["tier"]) <= {"critical", "important", "tracking"}
    listings = embedded.warehouse.scalar("SELECT count(*) FROM listings")
    assert tiers["n"].sum() >= listings
    metadata = embedded.metadata("intelligence_metrics")
    assert "data:image/png;base64," in metadata["volatility_by_category"]


@pytest.mark.services
def test_postgres_and_redis_give_the_same_opportunities(
    embedded: PipelineRun, postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    on_servers = _run_twice(postgres_url, redis_url, tmp_path)
    try:
        assert all(r.success for r in on_servers.results)
        assert on_servers.table_counts() == embedded.table_counts()
        assert _live(on_servers.warehouse).equals(_live(embedded.warehouse))
    finally:
        drop_arbx_schema(on_servers.warehouse)
        on_servers.warehouse.close()
