"""Without Redis the alert memory is the warehouse: no spam across runs or processes.

A per-run in-process cache forgets every claim when the run ends, so each run would
re-alert. Each test here builds a *new* dispatcher, on a *new* MemoryCache, per run, and
gets the memory through ``alert_memory`` as the pipeline does: on DuckDB and PostgreSQL it
is the warehouse, with Redis it is Redis.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import polars as pl
import pytest
from alert_inbox import Inbox, spread_opportunity

from arbx_dagster.alerts import AlertDispatcher, AlertMemory, WatchRule, evaluate_watch_rules
from arbx_dagster.alerts.store import WarehouseAlertMemory, alert_memory
from arbx_dagster.domain.schema import PRICE_HISTORY_SCHEMA
from arbx_dagster.storage.cache import Cache, MemoryCache, RedisCache
from arbx_dagster.storage.warehouse import Warehouse

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


# The warehouse memory's SQL runs on both engines in the last test; the dispatcher-level
# tests take DuckDB and Redis.
@pytest.fixture(params=["duckdb", "redis"])
def memory_of_a_run(request: pytest.FixtureRequest, tmp_path):
    """A factory: the alert memory one pipeline run would get (a fresh cache every call)."""
    if request.param == "redis":
        shared: Cache = request.getfixturevalue("redis_cache")
        warehouse = request.getfixturevalue("duckdb_warehouse")
        return lambda: alert_memory(RedisCache(shared.url, prefix=shared.prefix), warehouse)
    warehouse = request.getfixturevalue(f"{request.param}_warehouse")
    return lambda: alert_memory(MemoryCache(), warehouse)


def run(memory: AlertMemory, inbox: Inbox, **options) -> AlertDispatcher:
    return AlertDispatcher(memory, [inbox], lambda: NOW, backoff_seconds=0.01, **options)


def opportunity(margin: int) -> pl.DataFrame:
    return spread_opportunity(margin, observed_at=NOW)


def test_without_redis_the_memory_is_the_warehouse(duckdb_warehouse: Warehouse) -> None:
    assert isinstance(alert_memory(MemoryCache(), duckdb_warehouse), WarehouseAlertMemory)


def test_two_runs_on_fresh_caches_send_an_opportunity_once(memory_of_a_run) -> None:
    inbox = Inbox()
    first = run(memory_of_a_run(), inbox).dispatch(opportunity(30_000))
    second = run(memory_of_a_run(), inbox).dispatch(opportunity(30_000))
    assert first.sent == {"new_opportunity": 1}
    assert second.sent.total() == 0
    assert len(inbox.alerts) == 1


def test_again_only_when_materially_better_across_runs(memory_of_a_run) -> None:
    inbox = Inbox()
    for margin in (30_000, 33_000, 45_000):  # +10 % is not material, +50 % is
        run(memory_of_a_run(), inbox, cooldown_seconds=0.05).dispatch(opportunity(margin))
        time.sleep(0.1)
    assert [a.data["margin_clp"] for a in inbox.alerts] == [30_000, 45_000]
    assert "(mejoró)" in inbox.alerts[1].title


def test_a_system_error_cooldown_survives_the_run(memory_of_a_run) -> None:
    inbox = Inbox()
    first = run(memory_of_a_run(), inbox).system_error("check volume failed", key="check:v")
    again = run(memory_of_a_run(), inbox).system_error("check volume failed", key="check:v")
    assert first.sent == {"system_error": 1}
    assert again.suppressed == {"cooldown": 1}
    assert len(inbox.alerts) == 1


def test_watch_hits_are_deduplicated_across_runs(memory_of_a_run) -> None:
    rule = WatchRule("cheap-tv", "target_price", target_price=300_000)
    listing = pl.DataFrame(
        [
            {
                "retailer": "paris",
                "sku": "p1",
                "name": "TV",
                "category": "tv",
                "url": None,
                "price_offer": 299_990,
                "price_card": None,
                "in_stock": True,
                "last_seen": NOW,
            }
        ]
    )
    hits = evaluate_watch_rules([rule], listing, pl.DataFrame(schema=PRICE_HISTORY_SCHEMA), NOW)
    inbox = Inbox()
    reports = [run(memory_of_a_run(), inbox).dispatch_watch(hits) for _ in range(3)]
    assert [r.sent.total() for r in reports] == [1, 0, 0]


def test_warehouse_memory_keys_expire_and_can_be_claimed_again(warehouse: Warehouse) -> None:
    memory = WarehouseAlertMemory(warehouse)
    assert memory.add("alert:cooldown:o1", "a", 0.2)
    assert not WarehouseAlertMemory(warehouse).add("alert:cooldown:o1", "b", 0.2)
    assert memory.get("alert:cooldown:o1") == "a"
    time.sleep(0.3)
    assert memory.get("alert:cooldown:o1") is None
    assert memory.add("alert:cooldown:o1", "c", None)
    memory.set("alert:state:o1", "{}", 60)
    assert memory.get_many(["alert:state:o1", "never-set", "alert:cooldown:o1"]) == [
        "{}",
        None,
        "c",
    ]
    assert memory.delete("alert:cooldown:o1", "alert:state:o1", "never-set") == 2
    assert memory.get("alert:state:o1") is None
