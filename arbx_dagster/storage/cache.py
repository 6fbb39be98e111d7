"""The cache: Redis when configured, an in-process stand-in with the same interface otherwise.

It is an accelerator and a coordination point (locks, dedup keys, rate limits, the event stream),
never a store of record: every caller must behave correctly when it is empty.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from arbx_dagster.storage.warehouse import redact

log = logging.getLogger(__name__)

T = TypeVar("T")
# ``update``'s change: the current value (None when absent) -> (new value, its TTL in
# seconds or None, what ``update`` returns).
Change = Callable[[str | None], tuple[str, float | None, T]]


class CacheError(RuntimeError):
    """The cache could not be reached or refused an operation."""


class LockNotAcquired(CacheError):
    """Someone else holds the lock."""


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0

    def count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None


# Redis: ArbX's own hits and misses, shared by every process, in hourly counters.
HIT_RATE_WINDOW_HOURS = 24
_STATS_FLUSH_EVERY = 50


class Cache(ABC):
    backend: str

    def __init__(self, prefix: str = "arbx:") -> None:
        self.prefix = prefix
        self.stats = CacheStats()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def get(self, name: str) -> str | None:
        value = self._get(self.key(name))
        self.stats.count(value is not None)
        self._counted(value is not None)
        return value

    def get_many(self, names: Sequence[str]) -> list[str | None]:
        """The values of ``names``, in order: one round trip per few thousand keys where
        the backend allows (a run checks the alert memory of every open opportunity)."""
        values = self._get_many([self.key(n) for n in names])
        for value in values:
            self.stats.count(value is not None)
            self._counted(value is not None)
        return values

    def _get_many(self, keys: list[str]) -> list[str | None]:
        return [self._get(key) for key in keys]

    def _counted(self, hit: bool) -> None:  # noqa: B027 - optional hook
        """Share one lookup's outcome beyond this instance (see ``cache_stats``)."""

    def cache_stats(self) -> CacheStats:
        """ArbX's own lookups this cache can account for (this instance by default)."""
        return self.stats

    @abstractmethod
    def _get(self, key: str) -> str | None: ...

    @abstractmethod
    def set(self, name: str, value: str, ttl_seconds: float | None = None) -> None: ...

    @abstractmethod
    def add(self, name: str, value: str, ttl_seconds: float | None = None) -> bool:
        """Set only if absent (dedup keys, locks); True when this call set it."""

    @abstractmethod
    def delete(self, *names: str) -> int: ...

    @abstractmethod
    def delete_matching(self, pattern: str) -> int:
        """Delete every key whose name matches a glob ``pattern`` (cache invalidation)."""

    @abstractmethod
    def incr(self, name: str, amount: int = 1, ttl_seconds: float | None = None) -> int: ...

    @abstractmethod
    def ping(self) -> bool: ...

    @abstractmethod
    def _release(self, key: str, token: str) -> None: ...

    @abstractmethod
    def _renew(self, key: str, token: str, ttl_seconds: float) -> bool:
        """Extend a lease we still hold; False when it was lost (expired, taken)."""

    @abstractmethod
    def describe(self) -> str: ...

    def update(self, name: str, change: Change[T]) -> T:
        """Read-modify-write ``name`` with no other ``update`` of it in between (state that
        several workers change, like a token bucket). Not counted as a lookup.

        Any cache can do it under :meth:`lock`; the in-process cache uses its own mutex."""
        with self.lock(name, ttl_seconds=5, wait_seconds=5):
            value, ttl, result = change(self._get(self.key(name)))
            self.set(name, value, ttl_seconds=ttl)
            return result

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (no-op for the in-process cache)."""

    def hit_rate(self) -> float | None:
        """Share of ArbX's reads answered from the cache (:meth:`cache_stats`); None when
        nothing was looked up."""
        return self.cache_stats().hit_rate

    @contextmanager
    def lock(
        self,
        name: str,
        ttl_seconds: float = 600,
        wait_seconds: float = 0,
        *,
        keep_alive: bool = False,
        poll_seconds: float = 0.05,
    ) -> Iterator[str]:
        """A lease-style mutex: expires on its own if the holder dies.

        ``keep_alive`` renews the lease every third of its TTL while the block runs, so
        work longer than the TTL stays exclusive and a crashed holder still frees it soon.
        """
        token = uuid.uuid4().hex
        key = self.key(f"lock:{name}")
        deadline = time.monotonic() + wait_seconds
        while not self.add(f"lock:{name}", token, ttl_seconds):
            if time.monotonic() >= deadline:
                raise LockNotAcquired(f"lock {name!r} is held by another worker")
            time.sleep(poll_seconds)
        stop = threading.Event()
        keeper = None
        if keep_alive:
            keeper = threading.Thread(
                target=self._keep_alive,
                args=(key, token, ttl_seconds, stop),
                name=f"lease:{name}",
                daemon=True,
            )
            keeper.start()
        try:
            yield token
        finally:
            stop.set()
            if keeper is not None:
                keeper.join()
            self._release(key, token)

    def _keep_alive(self, key: str, token: str, ttl_seconds: float, stop: threading.Event) -> None:
        while not stop.wait(ttl_seconds / 3):
            try:
                if not self._renew(key, token, ttl_seconds):
                    log.warning("lease %s was lost before its holder finished", key)
                    return
            except CacheError as exc:  # Redis blip: the next beat may get through
                log.warning("could not renew lease %s: %s", key, exc)


class MemoryCache(Cache):
    """In-process cache for the embedded default and tests without Redis.

    Its hit rate counts every MemoryCache of the process (a run's steps each open one), since
    the process started: an in-process cache has nothing to share beyond that."""

    backend = "memory"
    _process_stats = CacheStats()
    _process_lock = threading.Lock()

    def __init__(self, prefix: str = "arbx:") -> None:
        super().__init__(prefix)
        self._data: dict[str, tuple[str, float | None]] = {}
        self._mutex = threading.RLock()

    def _live(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    @staticmethod
    def _expiry(ttl_seconds: float | None) -> float | None:
        return time.monotonic() + ttl_seconds if ttl_seconds else None

    def _get(self, key: str) -> str | None:
        with self._mutex:
            return self._live(key)

    def set(self, name: str, value: str, ttl_seconds: float | None = None) -> None:
        with self._mutex:
            self._data[self.key(name)] = (value, self._expiry(ttl_seconds))

    def add(self, name: str, value: str, ttl_seconds: float | None = None) -> bool:
        with self._mutex:
            key = self.key(name)
            if self._live(key) is not None:
                return False
            self._data[key] = (value, self._expiry(ttl_seconds))
            return True

    def delete(self, *names: str) -> int:
        with self._mutex:
            return sum(self._data.pop(self.key(n), None) is not None for n in names)

    def delete_matching(self, pattern: str) -> int:
        with self._mutex:
            doomed = [k for k in self._data if fnmatch.fnmatchcase(k, self.key(pattern))]
            for key in doomed:
                del self._data[key]
            return len(doomed)

    def incr(self, name: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        with self._mutex:
            key = self.key(name)
            current = int(self._live(key) or 0) + amount
            expires = self._data[key][1] if key in self._data else self._expiry(ttl_seconds)
            self._data[key] = (str(current), expires)
            return current

    def ping(self) -> bool:
        return True

    def _release(self, key: str, token: str) -> None:
        with self._mutex:
            if self._live(key) == token:
                del self._data[key]

    def _renew(self, key: str, token: str, ttl_seconds: float) -> bool:
        with self._mutex:
            if self._live(key) != token:
                return False
            self._data[key] = (token, self._expiry(ttl_seconds))
            return True

    def describe(self) -> str:
        return "in-process memory"

    def update(self, name: str, change: Change[T]) -> T:
        with self._mutex:
            key = self.key(name)
            value, ttl, result = change(self._live(key))
            self._data[key] = (value, self._expiry(ttl))
            return result

    def _counted(self, hit: bool) -> None:
        with MemoryCache._process_lock:
            MemoryCache._process_stats.count(hit)

    def cache_stats(self) -> CacheStats:
        return MemoryCache._process_stats


# Deletes the lock only if we still hold it (compare-and-delete in one round trip).
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Extends the lease only if we still hold it (ARGV[2]: new TTL in ms).
_RENEW_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


_MGET_CHUNK = 5_000  # keys per MGET: one round trip, a bounded reply


class RedisCache(Cache):
    """Redis through redis-py's connection pool, with short timeouts so a slow server
    degrades the pipeline instead of hanging it."""

    backend = "redis"

    def __init__(self, url: str, prefix: str = "arbx:", timeout_seconds: float = 2.0) -> None:
        import redis

        super().__init__(prefix)
        self.url = url
        self._redis_errors = (redis.RedisError, OSError)
        self.client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=30,
            retry_on_timeout=True,
        )
        self._release_script = self.script(_RELEASE_SCRIPT)
        self._renew_script = self.script(_RENEW_SCRIPT)
        self._pending = CacheStats()  # lookups not yet added to the shared counters
        self._stats_lock = threading.Lock()

    def _call(self, method: str, *args: object, **kwargs: object) -> object:
        try:
            return getattr(self.client, method)(*args, **kwargs)
        except self._redis_errors as exc:
            raise CacheError(f"Redis at {redact(self.url)} failed on {method}: {exc}") from exc

    def script(self, source: str) -> Callable[[Sequence[str], Sequence[object]], Any]:
        """A Lua script, run atomically on the server as ``run(keys, args)`` (full keys:
        see :meth:`key`); a Redis failure raises :class:`CacheError`."""
        registered = self.client.register_script(source)

        def run(keys: Sequence[str], args: Sequence[object]) -> Any:
            try:
                return registered(keys=list(keys), args=list(args))
            except self._redis_errors as exc:
                raise CacheError(f"Redis at {redact(self.url)} failed on a script: {exc}") from exc

        return run

    def _get(self, key: str) -> str | None:
        return self._call("get", key)  # type: ignore[return-value]

    def _get_many(self, keys: list[str]) -> list[str | None]:
        values: list[str | None] = []
        for start in range(0, len(keys), _MGET_CHUNK):
            values += self._call("mget", keys[start : start + _MGET_CHUNK])  # type: ignore[operator]
        return values

    def set(self, name: str, value: str, ttl_seconds: float | None = None) -> None:
        px = int(ttl_seconds * 1000) if ttl_seconds else None
        self._call("set", self.key(name), value, px=px)

    def add(self, name: str, value: str, ttl_seconds: float | None = None) -> bool:
        px = int(ttl_seconds * 1000) if ttl_seconds else None
        return bool(self._call("set", self.key(name), value, nx=True, px=px))

    def delete(self, *names: str) -> int:
        if not names:
            return 0
        return int(self._call("delete", *(self.key(n) for n in names)))  # type: ignore[arg-type]

    def delete_matching(self, pattern: str) -> int:
        keys = list(self._call("scan_iter", match=self.key(pattern), count=500))  # type: ignore[call-overload]
        return int(self._call("delete", *keys)) if keys else 0  # type: ignore[arg-type]

    def incr(self, name: str, amount: int = 1, ttl_seconds: float | None = None) -> int:
        key = self.key(name)
        try:
            pipe = self.client.pipeline()
            pipe.incrby(key, amount)
            if ttl_seconds:
                pipe.expire(key, int(ttl_seconds), nx=True)
            return int(pipe.execute()[0])
        except self._redis_errors as exc:
            raise CacheError(f"Redis at {redact(self.url)} failed on incr: {exc}") from exc

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except self._redis_errors:
            return False

    def _release(self, key: str, token: str) -> None:
        with contextlib.suppress(CacheError):  # the lease expires on its own
            self._release_script([key], [token])

    def _renew(self, key: str, token: str, ttl_seconds: float) -> bool:
        return bool(self._renew_script([key], [token, int(ttl_seconds * 1000)]))

    def describe(self) -> str:
        return f"redis:{redact(self.url)}"

    # -- hit counting: ArbX's own lookups under this prefix, by every process ----------------

    def _counted(self, hit: bool) -> None:
        with self._stats_lock:
            self._pending.count(hit)
            due = self._pending.lookups >= _STATS_FLUSH_EVERY
        if due:
            self.flush_stats()

    def _stats_key(self, outcome: str, hour: int) -> str:
        return self.key(f"stats:cache:{outcome}:{hour}")

    def flush_stats(self) -> None:
        """Add this instance's uncounted lookups to the shared hourly counters."""
        with self._stats_lock:
            pending, self._pending = self._pending, CacheStats()
        if not pending.lookups:
            return
        hour = int(time.time() // 3600)
        ttl = 2 * HIT_RATE_WINDOW_HOURS * 3600
        try:
            pipe = self.client.pipeline(transaction=False)
            for outcome, n in (("hits", pending.hits), ("misses", pending.misses)):
                if n:
                    pipe.incrby(self._stats_key(outcome, hour), n)
                    pipe.expire(self._stats_key(outcome, hour), ttl)
            pipe.execute()
        except self._redis_errors:
            pass  # a statistic, not worth failing a caller over

    def cache_stats(self) -> CacheStats:
        """Hits and misses of every ArbX process on this prefix over the last 24 hours (the
        counting keys are written with INCRBY, never read with ``get``: they count nothing)."""
        self.flush_stats()
        now = int(time.time() // 3600)
        hours = range(now - HIT_RATE_WINDOW_HOURS + 1, now + 1)
        keys = [self._stats_key(o, h) for o in ("hits", "misses") for h in hours]
        try:
            values = [int(v or 0) for v in self.client.mget(keys)]
        except self._redis_errors:
            return self.stats
        half = len(hours)
        return CacheStats(hits=sum(values[:half]), misses=sum(values[half:]))

    def close(self) -> None:
        self.flush_stats()
        self.client.close()


def open_cache(redis_url: str | None, prefix: str = "arbx:") -> Cache:
    """Redis when a URL is configured, the in-process cache otherwise."""
    return RedisCache(redis_url, prefix=prefix) if redis_url else MemoryCache(prefix=prefix)


def shared_or_local(cache: Cache) -> Cache:
    """``cache`` if it answers, else a cache of this process alone.

    For state that is shared to coordinate workers (a store's rate limit, its circuit
    breaker) but is not worth failing a scrape over: without Redis each process keeps its
    own, which is what a single worker does anyway.
    """
    if cache.ping():
        return cache
    log.warning(
        "%s is unreachable: rate limits and circuit breakers are this process's own",
        cache.describe(),
    )
    return MemoryCache(prefix=cache.prefix)
