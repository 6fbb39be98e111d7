"""No-spam guarantees hold through the shared cache: Redis across workers, memory in-process.

Every test runs on both caches (the ``cache`` fixture); the Redis run skips when no server is
reachable, and fails under ARBX_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import polars as pl
import pytest
from alert_inbox import Inbox, spread_opportunity

from arbx_dagster.alerts import AlertDispatcher
from arbx_dagster.alerts.messages import Alert
from arbx_dagster.domain.schema import PRICE_HISTORY_SCHEMA
from arbx_dagster.storage.cache import Cache, RedisCache

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def twin(cache: Cache) -> Cache:
    """Another worker's handle on the same cache (a new Redis connection, same keys)."""
    if isinstance(cache, RedisCache):
        return RedisCache(cache.url, prefix=cache.prefix)
    return cache


def opportunity(margin: int, oid: str = "o1", roi: float = 12.0) -> pl.DataFrame:
    return spread_opportunity(margin, observed_at=NOW, oid=oid, roi=roi)


def make(cache: Cache, inbox: Inbox, **options) -> AlertDispatcher:
    return AlertDispatcher(cache, [inbox], lambda: NOW, backoff_seconds=0.01, **options)


def test_two_workers_never_both_send_the_same_alert(cache: Cache) -> None:
    inbox = Inbox()
    workers = [make(cache, inbox), make(twin(cache), inbox)]
    reports = [w.dispatch(opportunity(30_000)) for w in workers]
    assert len(inbox.alerts) == 1
    assert [r.sent.total() for r in reports] == [1, 0]


def test_concurrent_dispatches_of_a_new_opportunity_send_it_once(cache: Cache) -> None:
    inbox = Inbox()
    workers = [make(twin(cache), inbox) for _ in range(6)]
    threads = [threading.Thread(target=w.dispatch, args=(opportunity(30_000),)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(inbox.alerts) == 1


def test_an_improvement_inside_the_cooldown_waits_for_it_to_pass(cache: Cache) -> None:
    inbox = Inbox()
    alerts = make(cache, inbox, cooldown_seconds=0.4)
    alerts.dispatch(opportunity(20_000))
    early = alerts.dispatch(opportunity(40_000))  # material, but within the cooldown
    assert early.suppressed == {"cooldown": 1}
    time.sleep(0.5)
    later = alerts.dispatch(opportunity(40_000))
    assert later.sent == {"new_opportunity": 1}
    assert [a.data["margin_clp"] for a in inbox.alerts] == [20_000, 40_000]
    assert "(mejoró)" in inbox.alerts[1].title


def test_hysteresis_survives_restarts_and_expiry(cache: Cache) -> None:
    inbox = Inbox()
    margins = [51_000, 49_000, 46_000, 51_000, 44_000, 52_000]
    for margin in margins:  # a new dispatcher each run: the memory is in the cache
        make(twin(cache), inbox, cooldown_seconds=0.01).dispatch(opportunity(margin))
        time.sleep(0.02)
    # 💰 at 51 000; kept down to 45 000; lost at 44 000; earned again at 52 000.
    assert [a.kind for a in inbox.alerts] == ["high_margin", "high_margin"]
    assert [a.data["margin_clp"] for a in inbox.alerts] == [51_000, 52_000]

    # An opportunity that expires and comes back is not news.
    run = make(twin(cache), inbox, cooldown_seconds=0.01)
    expired = opportunity(52_000).with_columns(status=pl.lit("expired"))
    assert run.dispatch(expired).sent.total() == 0
    time.sleep(0.02)
    assert run.dispatch(opportunity(52_000)).suppressed == {"not_material": 1}


def test_alert_memory_expires_instead_of_growing_forever(cache: Cache) -> None:
    make(cache, Inbox()).dispatch(opportunity(30_000))
    if isinstance(cache, RedisCache):
        assert 0 < cache.client.ttl(cache.key("alert:state:o1")) <= 30 * 86400
        assert 0 < cache.client.ttl(cache.key("alert:cooldown:o1")) <= 6 * 3600
    else:
        assert cache.get("alert:state:o1") is not None


def test_a_failed_run_raises_one_system_alert_across_workers(cache: Cache) -> None:
    inbox = Inbox()
    first = make(cache, inbox).system_error(
        "run full_refresh failed", "step opportunities: ZeroDivisionError", run_id="r-1"
    )
    retry = make(twin(cache), inbox).system_error(
        "run full_refresh failed", "step opportunities: ZeroDivisionError", run_id="r-2"
    )
    assert first.sent == {"system_error": 1} and retry.suppressed == {"cooldown": 1}
    (alert,) = inbox.alerts
    assert alert.title.startswith("🚨") and "Run: r-1" in alert.body


def test_watch_hits_fire_once_and_again_only_after_rearming(cache: Cache) -> None:
    from arbx_dagster.alerts import WatchRule, evaluate_watch_rules

    rule = WatchRule("cheap-tv", "target_price", target_price=300_000)
    history = pl.DataFrame(schema=PRICE_HISTORY_SCHEMA)

    def listing(price: int) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {
                    "retailer": "paris",
                    "sku": "p1",
                    "name": "TV",
                    "category": "tv",
                    "url": None,
                    "price_offer": price,
                    "price_card": None,
                    "in_stock": True,
                    "last_seen": NOW,
                }
            ]
        )

    inbox = Inbox()
    prices = [299_990, 295_990, 310_000, 299_990, 279_990]
    for price in prices:
        hits = evaluate_watch_rules([rule], listing(price), history, NOW)
        make(twin(cache), inbox).dispatch_watch(hits)
    # Fires at 299 990; 295 990 is no news; 310 000 re-arms; fires again at 299 990; a
    # further 6 % drop (279 990) is news again.
    assert [a.data["price"] for a in inbox.alerts] == [299_990, 299_990, 279_990]


@pytest.mark.parametrize("failures", [3])
def test_an_undelivered_alert_is_retried_by_another_worker(cache: Cache, failures: int) -> None:
    class Flaky(Inbox):
        def __init__(self) -> None:
            super().__init__()
            self.remaining = failures

        def send(self, alert: Alert, timeout: float) -> None:
            if self.remaining:
                self.remaining -= 1
                raise RuntimeError("503")
            super().send(alert, timeout)

    channel = Flaky()
    first = AlertDispatcher(cache, [channel], lambda: NOW, backoff_seconds=0.01)
    assert first.dispatch(opportunity(30_000)).suppressed == {"undelivered": 1}
    second = AlertDispatcher(twin(cache), [channel], lambda: NOW, backoff_seconds=0.01)
    assert second.dispatch(opportunity(30_000)).sent.total() == 1
    assert len(channel.alerts) == 1
