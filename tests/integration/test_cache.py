"""The in-process cache and Redis honour the same contract."""

from __future__ import annotations

import threading
import time

import pytest

from arbx_dagster.storage.cache import Cache, LockNotAcquired


def test_values_expire(cache: Cache) -> None:
    cache.set("a", "1", ttl_seconds=0.2)
    assert cache.get("a") == "1"
    time.sleep(0.3)
    assert cache.get("a") is None


def test_add_sets_only_when_absent(cache: Cache) -> None:
    assert cache.add("alert:opp-1", "sent", ttl_seconds=60)
    assert not cache.add("alert:opp-1", "again", ttl_seconds=60)
    assert cache.get("alert:opp-1") == "sent"


def test_lock_is_exclusive_and_released(cache: Cache) -> None:
    with (
        cache.lock("refresh", ttl_seconds=5),
        pytest.raises(LockNotAcquired),
        cache.lock("refresh", ttl_seconds=5),
    ):
        pass
    with cache.lock("refresh", ttl_seconds=5):
        pass


def test_a_kept_alive_lease_outlives_its_ttl_and_a_plain_one_expires(cache: Cache) -> None:
    with cache.lock("scrape", ttl_seconds=0.3, keep_alive=True):
        time.sleep(0.8)  # well past the TTL: renewed, still ours
        with pytest.raises(LockNotAcquired):
            cache.lock("scrape", ttl_seconds=0.3).__enter__()
    with cache.lock("scrape", ttl_seconds=0.3):  # released on exit
        pass

    with cache.lock("crashed", ttl_seconds=0.2):
        time.sleep(0.3)  # a holder that stopped renewing loses the lease
        with cache.lock("crashed", ttl_seconds=5):
            pass


def test_counters_and_invalidation(cache: Cache) -> None:
    assert cache.incr("hits") == 1
    assert cache.incr("hits", 4) == 5
    cache.set("opportunities:page:1", "x")
    cache.set("opportunities:page:2", "y")
    cache.set("other", "z")
    assert cache.delete_matching("opportunities:*") == 2
    assert cache.get("other") == "z"


def test_an_update_is_atomic_and_counts_no_lookup(cache: Cache) -> None:
    """Read-modify-write from several threads loses no change (a token bucket's state)."""

    def add_one(raw: str | None) -> tuple[str, float, int]:
        value = int(raw or 0) + 1
        return str(value), 60, value

    def worker() -> None:
        for _ in range(25):
            cache.update("bucket", add_one)

    lookups = cache.stats.lookups
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.update("bucket", add_one) == 101
    assert cache.stats.lookups == lookups  # bookkeeping, not a cache read
    assert cache.get("bucket") == "101"


def test_hit_rate_is_tracked(cache: Cache) -> None:
    cache.set("k", "v")
    cache.get("k")
    cache.get("missing")
    assert cache.stats.hit_rate == 0.5


def test_many_keys_are_read_at_once_in_order(cache: Cache) -> None:
    cache.set("a", "1")
    cache.set("c", "3", ttl_seconds=60)
    names = ["a", "b", "c"] * 2_000  # more than one round trip's worth on Redis
    assert cache.get_many(names) == ["1", None, "3"] * 2_000
    assert cache.get_many([]) == []
