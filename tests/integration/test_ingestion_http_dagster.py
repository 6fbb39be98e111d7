"""``raw_prices`` materialized in Dagster against the local fixture server: tier runs fetch
only their tier's listings, a changed layout fails the partition loudly, and the
materialization says what the scrape did."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext as _up
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fault_proxy import FaultProxy
from fixture_server import Fault, FixtureServer
from instances import ephemeral_instance

from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.automation.sensors import alert_on_run_failure
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import DuckDBWarehouse

SOURCES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "retailers" / "sources.yaml"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 12:00 in Santiago: today is live
FALABELLA_API = "/falabella/s/browse/v1/listing/cl"
# Falabella's fixture listings (sku -> product page id), split over the three tiers.
TIERS = {
    "16677002": ("16677001", "critical"),
    "19000002": ("19000001", "critical"),
    "17123457": ("17123456", "important"),
    "18000002": ("18000001", "tracking"),
    "19500002": ("19500001", "tracking"),
}


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        monkeypatch.setenv("ARBX_FIXTURE_URL", running.url)
        monkeypatch.setenv("ARBX_TEST_ARCHIVE", str(tmp_path / "archive"))
        yield running


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with DuckDBWarehouse(path) as warehouse:
        migrate(warehouse)
    return path


def _materialize(
    warehouse_path: Path,
    *,
    partition: str | None = None,
    tier: str | None = None,
    tags: dict[str, str] | None = None,
    instance: dg.DagsterInstance | None = None,
    redis_url: str | None = None,
) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {"raw_prices": {"config": {"tier": tier}}}} if tier else None
    return dg.materialize(
        [raw_prices],
        partition_key=partition,
        run_config=run_config,
        tags=tags,
        instance=instance or ephemeral_instance(),
        raise_on_error=False,
        resources={
            "warehouse": WarehouseResource(duckdb_path=str(warehouse_path)),
            "cache": CacheResource(redis_url=redis_url),
            "clock": ClockResource(as_of=NOW.isoformat()),
            "alerts": AlertsResource(),
            "sources": SourcesResource(path=str(SOURCES_FILE)),
        },
    )


def _stored(warehouse_path: Path, retailer: str) -> list[str]:
    with DuckDBWarehouse(warehouse_path) as warehouse:
        return warehouse.query(
            "SELECT sku FROM raw_prices WHERE retailer = $1 ORDER BY sku", [retailer]
        )["sku"].to_list()


# --- tier runs -------------------------------------------------------------------------------


def _assign_tiers(warehouse_path: Path, server: FixtureServer) -> None:
    """Yesterday's intelligence stage: every Falabella listing known, each in its tier."""
    with DuckDBWarehouse(warehouse_path) as warehouse, warehouse.transaction():
        for sku, (product, tier) in TIERS.items():
            warehouse.execute(
                "INSERT INTO listings (retailer, sku, product_id, name, name_norm, url, "
                "first_seen, last_seen, updated_at) "
                "VALUES ('falabella', $1, $2, $3, $3, $4, $5, $5, $5)",
                [sku, product, f"tv {sku}", f"{server.url}/falabella/product/{product}", NOW],
            )
            warehouse.execute(
                "INSERT INTO listing_tiers VALUES ('falabella', $1, 0.1, 1, $2, 30, $3)",
                [sku, tier, NOW],
            )


def _skus_in(tier: str) -> list[str]:
    return sorted(sku for sku, (_, assigned) in TIERS.items() if assigned == tier)


def test_a_critical_run_reads_listing_pages_for_its_tier_only(
    server: FixtureServer, warehouse_path: Path
) -> None:
    _assign_tiers(warehouse_path, server)
    result = _materialize(warehouse_path, partition="2026-11-23|falabella", tier="critical")
    assert result.success
    assert _stored(warehouse_path, "falabella") == _skus_in("critical")
    assert [a.query["page"] for a in server.requests_to(FALABELLA_API)] == ["1", "2", "3"]
    assert server.requests_to("/falabella/product/") == []  # the cheap pass: no product pages


def test_an_important_run_opens_the_product_pages_of_its_tier_only(
    server: FixtureServer, warehouse_path: Path
) -> None:
    _assign_tiers(warehouse_path, server)
    result = _materialize(warehouse_path, partition="2026-11-23|falabella", tier="important")
    assert result.success
    assert _stored(warehouse_path, "falabella") == _skus_in("important") == ["17123457"]
    opened = [a.path for a in server.requests_to("/falabella/product/")]
    assert opened == ["/falabella/product/17123456"]  # full mode, for the tier's listing only
    with DuckDBWarehouse(warehouse_path) as warehouse:
        assert warehouse.scalar("SELECT ean FROM raw_prices") == "8806084123456"  # product page


def test_a_tier_with_no_listings_assigned_scrapes_nothing(
    server: FixtureServer, warehouse_path: Path
) -> None:
    result = _materialize(warehouse_path, partition="2026-11-23|falabella", tier="critical")
    assert result.success
    assert server.arrivals == [] and _stored(warehouse_path, "falabella") == []


# --- a changed layout fails loudly -----------------------------------------------------------


def test_a_redesigned_grid_fails_the_partition_loudly_without_retrying(
    server: FixtureServer, warehouse_path: Path, alert_receiver: Any
) -> None:
    server.always("/paris/tecnologia/", Fault(fixture="paris/grid-redesign.html"))
    with ephemeral_instance() as instance:
        result = _materialize(warehouse_path, partition="2026-11-23|paris", instance=instance)
        assert not result.success
        [failure] = [e for e in result.all_events if e.is_step_failure]
        message = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
        assert message.startswith("2026-11-23|paris: layout change suspected")
        assert "container 'div.search-result-content' not found" in message
        # a broken parser stays broken: no step retry (RetryPolicy), no run retry
        assert not any(
            e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY for e in result.all_events
        )
        assert len(server.requests_to("/paris/tecnologia/")) == 1
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.tags["dagster/retry_on_asset_or_op_failure"] == "false"

        [alert] = alert_receiver.delivered("/alerts")
        assert alert["title"].startswith("🚨")
        assert alert["title"].endswith("raw_prices 2026-11-23|paris cannot be trusted")
        assert "layout change suspected" in alert["message"]
        # the run-failure sensor does not repeat what the step already said
        with dg.build_run_status_sensor_context(
            sensor_name="alert_on_run_failure",
            dagster_event=result.get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=run,
            resources={
                "cache": CacheResource(),
                "clock": ClockResource(as_of=NOW.isoformat()),
                "warehouse": WarehouseResource(duckdb_path=str(warehouse_path)),
                "alerts": AlertsResource(),
            },
        ) as context:
            alert_on_run_failure(context.for_run_failure())
    assert len(alert_receiver.delivered("/alerts")) == 1
    assert _stored(warehouse_path, "paris") == []  # nothing quietly landed


# --- what a materialization says ---------------------------------------------------------------


def test_an_http_materialization_reports_what_each_retailer_scrape_did(
    server: FixtureServer, warehouse_path: Path
) -> None:
    server.fail_next(FALABELLA_API, Fault(status=500))
    server.fail_next("/ripley/", Fault(status=429, headers={"Retry-After": "0"}))
    today = {
        "dagster/asset_partition_range_start": "2026-11-23|falabella",
        "dagster/asset_partition_range_end": "2026-11-23|ripley",
    }
    result = _materialize(warehouse_path, tags=today)
    assert result.success
    by_partition = {  # one event per partition: its own figures, then the run's
        event.partition: {
            k: getattr(v, "value", v) for k, v in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    metadata = by_partition["2026-11-23|falabella"]
    totals = metadata["run_totals"]
    falabella, paris, ripley = (
        metadata["per_retailer"][r] for r in ("falabella", "paris", "ripley")
    )

    # rows: fetched = stored + quarantined, with the reasons, per retailer and in total
    assert [(r["fetched"], r["stored"], r["quarantined"]) for r in (falabella, paris, ripley)] == [
        (5, 4, 1),
        (5, 4, 1),
        (5, 5, 0),
    ]
    assert falabella["top_quarantine_reasons"] == {
        "unparsable price_offer: 'Consultar precio' (not a CLP amount)": 1
    }
    assert paris["top_quarantine_reasons"] == {"missing name": 1}
    assert (totals["fetched"], totals["stored"], totals["quarantined"]) == (15, 13, 2)
    assert sum(totals["quarantine_reasons"].values()) == 2
    # each partition's event counts that partition's rows, not the run's 13
    assert {key: m["dagster/row_count"] for key, m in by_partition.items()} == {
        "2026-11-23|falabella": 4,
        "2026-11-23|paris": 4,
        "2026-11-23|ripley": 5,
    }
    assert (metadata["fetched"], metadata["stored"], metadata["quarantined"]) == (5, 4, 1)
    assert metadata["quarantine_reasons"] == falabella["top_quarantine_reasons"]

    # the scrape: pages read (listing + product pages), HTTP errors met (retried), duration
    assert [r["pages"] for r in (falabella, paris, ripley)] == [3 + 5, 2 + 4, 2]
    assert falabella["status_counts"] == {"200": 8, "500": 1} and falabella["http_errors"] == 1
    assert ripley["status_counts"] == {"200": 2, "429": 1} and ripley["http_errors"] == 1
    assert paris["http_errors"] == 0 and totals["http_errors"] == 2
    assert all(r["pages_failed"] == 0 and r["duration_seconds"] > 0 for r in (falabella, ripley))
    assert totals["duration_seconds"] > 0 and totals["pages"] == 16
    assert (metadata["pages"], metadata["http_errors"]) == (8, 1)  # falabella's own
    rows = {r.data["partition"]: r.data for r in metadata["per_partition"].records}
    assert {k: rows["2026-11-23|ripley"][k] for k in ("how", "fetched", "stored")} == {
        "how": "live",
        "fetched": 5,
        "stored": 5,
    }


@pytest.mark.services
def test_scraping_with_redis_gone_stores_what_it_stores_with_it(
    server: FixtureServer, tmp_path: Path, redis_url: str
) -> None:
    """Redis shares the stores' rate limits and circuit breakers between workers; without
    it each process keeps its own, and the scrape goes on."""
    stored = {}
    for case in ("with", "without"):
        path = tmp_path / f"{case}.duckdb"
        with DuckDBWarehouse(path) as warehouse:
            migrate(warehouse)
        with FaultProxy("127.0.0.1", 6379) as proxy, proxy.outage() if case == "without" else _up():
            result = _materialize(
                path, partition="2026-11-23|falabella", redis_url=proxy.url(redis_url)
            )
        assert result.success, case
        stored[case] = _stored(path, "falabella")
    assert stored["without"] == stored["with"] and len(stored["with"]) == 4
