"""Sliding-window rate limits shared by every worker (Redis), or per process without it.

The sliding-window counter keeps one counter per fixed window and weighs the previous
window by how much of it still overlaps the sliding one: two ``INCR``/``GET`` per check,
no per-request bookkeeping, and bursts at a window boundary cannot double the limit.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from anyio import to_thread

from arbx_dagster.storage.cache import Cache, CacheError, RedisCache


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds; 0 when allowed


# The same sliding-window step as ``RateLimiter._count`` in one atomic round trip: read the
# previous window, count this request, undo it when over the limit.
_SLIDING_WINDOW = """
local previous = tonumber(redis.call('get', KEYS[1]) or '0')
local current = redis.call('incr', KEYS[2])
if current == 1 then redis.call('expire', KEYS[2], ARGV[1]) end
local weighted = previous * (1 - tonumber(ARGV[2]))
if weighted + current > tonumber(ARGV[3]) then
  redis.call('decr', KEYS[2])
  return {0, previous, current}
end
return {1, previous, current}
"""


class RateLimiter:
    def __init__(self, cache: Cache, window_seconds: int = 60) -> None:
        self.cache = cache
        self.window = window_seconds
        # The in-process cache never waits on I/O: no need to leave the event loop for it.
        self.blocking = cache.backend != "memory"
        self._script = (
            cache.client.register_script(_SLIDING_WINDOW) if isinstance(cache, RedisCache) else None
        )

    async def check(self, scope: str, identity: str, limit: int) -> Decision:
        """:meth:`hit` from the event loop (in a worker thread when it does I/O)."""
        if limit <= 0 or not self.blocking:
            return self.hit(scope, identity, limit)
        return await to_thread.run_sync(self.hit, scope, identity, limit)

    def hit(self, scope: str, identity: str, limit: int, now: float | None = None) -> Decision:
        """Count one request of ``identity`` against ``limit`` per window.

        A rejected request is not counted, so a client that backs off as told gets in again.
        ``limit <= 0`` disables the check. Blocking (a Redis round trip): callers on the
        event loop use :meth:`check`.
        """
        if limit <= 0:
            return Decision(True, limit, limit, 0)
        now = time.time() if now is None else now
        index = int(now // self.window)
        elapsed = (now % self.window) / self.window
        base = f"ratelimit:{scope}:{identity}"
        allowed, previous, current = self._count(base, index, elapsed, limit)
        weighted = previous * (1 - elapsed)
        if allowed:
            return Decision(True, limit, max(0, math.floor(limit - weighted - current)), 0)
        # When will enough of the previous window have slid out (or this one ended)?
        excess = weighted + current - limit
        wait = excess / previous * self.window if previous > 0 else (1 - elapsed) * self.window
        wait = min(wait, (1 - elapsed) * self.window + self.window)
        return Decision(False, limit, 0, max(1, math.ceil(wait)))

    def _count(self, base: str, index: int, elapsed: float, limit: int) -> tuple[bool, int, int]:
        """(allowed, previous window's count, this window's count including this request)."""
        if self._script is not None:
            keys = [self.cache.key(f"{base}:{index - 1}"), self.cache.key(f"{base}:{index}")]
            try:
                ok, previous, current = self._script(
                    keys=keys, args=[self.window * 2, elapsed, limit]
                )
            except (redis_errors(), OSError) as exc:
                raise CacheError(f"rate limiter: {exc}") from exc
            return bool(ok), int(previous), int(current)
        previous = int(self.cache.get(f"{base}:{index - 1}") or 0)
        current = self.cache.incr(f"{base}:{index}", 1, ttl_seconds=self.window * 2)
        if previous * (1 - elapsed) + current <= limit:
            return True, previous, current
        self.cache.incr(f"{base}:{index}", -1)
        return False, previous, current


def redis_errors() -> type[Exception]:
    import redis

    return redis.RedisError
