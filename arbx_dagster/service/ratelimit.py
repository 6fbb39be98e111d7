"""The API's rate limits (per key, per client address): the ``limits`` library's sliding
window counter, one budget for every worker through Redis, or per process without it.

A sliding window counter weighs the previous window by how much of it still overlaps the
sliding one: bursts at a window boundary cannot double the limit, and a rejected request
is not counted, so a client that backs off as told gets in again.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from fastapi.concurrency import run_in_threadpool
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter

from arbx_dagster.storage.cache import Cache, CacheError, RedisCache


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds; 0 when allowed


def limits_storage(cache: Cache) -> Storage:
    """Redis through the cache's own connection pool (its timeouts, its prefix) when the
    cache is Redis; this process's memory otherwise."""
    if isinstance(cache, RedisCache):
        return RedisStorage(
            cache.url,
            connection_pool=cache.client.connection_pool,
            key_prefix=cache.key("ratelimit"),
            wrap_exceptions=True,
        )
    return MemoryStorage()


class RateLimiter:
    def __init__(self, cache: Cache, window_seconds: int = 60) -> None:
        self.window = window_seconds
        # The in-process cache never waits on I/O: no need to leave the event loop for it.
        self.blocking = cache.backend != "memory"
        self._limiter = SlidingWindowCounterRateLimiter(limits_storage(cache))

    async def check(self, scope: str, identity: str, limit: int) -> Decision:
        """:meth:`hit` from the event loop (in a worker thread when it does I/O)."""
        if limit <= 0 or not self.blocking:
            return self.hit(scope, identity, limit)
        return await run_in_threadpool(self.hit, scope, identity, limit)

    def hit(self, scope: str, identity: str, limit: int) -> Decision:
        """Count one request of ``identity`` against ``limit`` per window.

        ``limit <= 0`` disables the check. Blocking (a Redis round trip): callers on the
        event loop use :meth:`check`. Raises :class:`CacheError` when Redis fails (callers
        fail open).
        """
        if limit <= 0:
            return Decision(True, 0)
        item = RateLimitItemPerSecond(limit, self.window)
        try:
            if self._limiter.hit(item, scope, identity):
                return Decision(True, 0)
            reset = self._limiter.get_window_stats(item, scope, identity).reset_time
        except StorageError as exc:
            raise CacheError(f"rate limiter: {exc.storage_error}") from exc
        return Decision(False, max(1, math.ceil(reset - time.time())))
