"""A per-retailer token bucket kept in the cache, so every worker shares one budget.

On Redis the whole refill-and-take step is one Lua script using the server's clock (workers'
clocks never disagree about the bucket); any other cache runs it as one atomic
``Cache.update``. Callers *reserve* a token: the bucket may go negative and the call returns
how long to wait, so waiting workers are served in order without polling. A ``429`` pauses
the whole bucket (``pause``) so the other workers back off too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from arbx_dagster.storage.cache import Cache, RedisCache

# KEYS[1] bucket hash; ARGV: rate (tokens/s), burst, tokens to take, pause seconds.
# Returns the seconds the caller must wait before using its token (as a string: Lua numbers
# would be truncated to integers on the way back).
_BUCKET_SCRIPT = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local take = tonumber(ARGV[3])
local pause = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'paused_until')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
local paused_until = tonumber(state[3]) or 0
if pause > 0 then
  paused_until = math.max(paused_until, now + pause)
  tokens = math.min(tokens, 0)
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
tokens = tokens - take
local wait = 0
if tokens < 0 then wait = -tokens / rate end
wait = math.max(wait, paused_until - now)
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now),
           'paused_until', tostring(paused_until))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + wait) * 1000) + 60000)
return tostring(wait)
"""


def _step(
    state: tuple[float, float, float] | None,
    now: float,
    rate: float,
    burst: int,
    take: float,
    pause: float,
) -> tuple[tuple[float, float, float], float]:
    """The script's arithmetic in Python, for the in-process bucket."""
    tokens, ts, paused_until = state if state is not None else (float(burst), now, 0.0)
    if pause > 0:
        paused_until = max(paused_until, now + pause)
        tokens = min(tokens, 0.0)
    tokens = min(float(burst), tokens + max(0.0, now - ts) * rate) - take
    wait = max(-tokens / rate if tokens < 0 else 0.0, paused_until - now)
    return (tokens, now, paused_until), wait


class TokenBucket:
    """``acquire()`` before every request to ``name``: sleeps as long as the budget needs."""

    def __init__(
        self,
        cache: Cache,
        name: str,
        requests_per_second: float,
        burst: int = 1,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if requests_per_second <= 0 or burst < 1:
            raise ValueError("requests_per_second must be > 0 and burst >= 1")
        self.cache = cache
        self.name = name
        self.rate = float(requests_per_second)
        self.burst = int(burst)
        self._sleep = sleep
        self._key = f"ratelimit:{name}"
        # Redis runs the step itself, on its own clock; any other cache via ``update``.
        self._script = cache.script(_BUCKET_SCRIPT) if isinstance(cache, RedisCache) else None

    def reserve(self, tokens: float = 1.0) -> float:
        """Take ``tokens`` now (possibly on credit); return the seconds to wait before use."""
        return self._run(tokens, 0.0)

    def acquire(self) -> float:
        """Wait for one request's worth of budget; return how long we waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Make every worker wait ``seconds`` (the server said so with ``Retry-After``)."""
        if seconds > 0:
            self._run(0.0, seconds)

    def _run(self, take: float, pause: float) -> float:
        if self._script is not None:
            key = self.cache.key(self._key)
            return float(self._script([key], [self.rate, self.burst, take, pause]))
        return self.cache.update(self._key, lambda raw: self._local(raw, take, pause))

    def _local(self, raw: str | None, take: float, pause: float) -> tuple[str, float, float]:
        state = tuple(float(x) for x in raw.split(",")) if raw else None
        new_state, wait = _step(state, _clock(), self.rate, self.burst, take, pause)  # type: ignore[arg-type]
        ttl = self.burst / self.rate + wait + 60
        return ",".join(repr(x) for x in new_state), ttl, wait


def _clock() -> float:
    # Wall time (not monotonic) so that non-memory caches shared by processes agree.
    return time.time()
