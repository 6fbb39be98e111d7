"""Polite HTTP: retries with backoff on 429/5xx/timeouts honouring Retry-After, no retry on
answers that will not change, a rate limit and a circuit breaker shared through the cache."""

from __future__ import annotations

import itertools
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from arbx_dagster.ingestion.circuit import CircuitBreaker, CircuitOpenError
from arbx_dagster.ingestion.http import FetchFailed, RetailerHttp, parse_retry_after
from arbx_dagster.ingestion.http_policy import USER_AGENT, RetryPolicy
from arbx_dagster.ingestion.ratelimit import TokenBucket
from arbx_dagster.ingestion.stats import FetchStats
from arbx_dagster.storage.cache import Cache, MemoryCache

FAST = RetryPolicy(max_attempts=4, backoff_base_seconds=0.01, backoff_max_seconds=0.05)


class Script:
    """A mock server answering from a list of (status, headers) or exceptions."""

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return httpx.Response(status, headers=headers, content=b'{"ok": true}')


def _http(script: Script, **kwargs: object) -> tuple[RetailerHttp, list[float]]:
    sleeps: list[float] = []
    options: dict = {"retry": FAST, "sleep": sleeps.append, "rng": random.Random(1)}
    options.update(kwargs)
    http = RetailerHttp("shop", transport=httpx.MockTransport(script), **options)
    return http, sleeps


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(max_attempts=7, backoff_base_seconds=1, backoff_max_seconds=10, jitter=0.5)
    http, sleeps = _http(Script(*[503] * 7), retry=policy)
    with pytest.raises(FetchFailed, match="failed after 7 attempt"):
        http.get("https://shop.test/x")
    assert len(sleeps) == 6
    for delay, ceiling in zip(sleeps, [1, 2, 4, 8, 10, 10], strict=True):
        assert ceiling * 0.5 <= delay <= ceiling
    again, same_seed = _http(Script(*[503] * 7), retry=policy)
    with pytest.raises(FetchFailed):
        again.get("https://shop.test/x")
    assert same_seed == sleeps  # the jitter comes from the injected generator


def test_429_and_5xx_are_retried_and_retry_after_is_honoured() -> None:
    script = Script((429, {"Retry-After": "3"}), 503, 200)
    http, sleeps = _http(script)
    stats = FetchStats()
    response = http.get("https://shop.test/listing", stats=stats)
    assert response.status == 200 and response.attempts == 3
    assert sleeps[0] == 3.0  # the server's wait, not our shorter backoff
    assert 0 < sleeps[1] <= 0.02
    assert stats.status_counts == {"429": 1, "503": 1, "200": 1}
    assert (stats.requests, stats.retries) == (3, 2)
    assert script.requests[0].headers["user-agent"] == USER_AGENT


def test_a_retry_after_pauses_every_worker_sharing_the_bucket() -> None:
    cache = MemoryCache()
    limiter = TokenBucket(cache, "shop", 100, 1, sleep=lambda _: None)
    http, sleeps = _http(Script((429, {"Retry-After": "3"}), 200), limiter=limiter)
    stats = FetchStats()
    assert http.get("https://shop.test/x", stats=stats).status == 200
    assert sleeps == [3.0]
    assert stats.rate_limited_seconds > 2.5  # the retry itself waited out the pause…
    other_worker = TokenBucket(cache, "shop", 100, 1)
    assert 2.5 < other_worker.reserve() <= 3.0  # …and so does everyone else


def test_timeouts_and_connection_errors_are_retried() -> None:
    script = Script(httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), 200)
    http, _ = _http(script)
    stats = FetchStats()
    assert http.get("https://shop.test/x", stats=stats).status == 200
    assert stats.status_counts == {"timeout": 1, "error": 1, "200": 1}


def test_a_request_that_keeps_failing_raises_after_max_attempts() -> None:
    script = Script(500, 500, 500, 500, 200)
    http, sleeps = _http(script)
    with pytest.raises(FetchFailed, match="failed after 4 attempt") as error:
        http.get("https://shop.test/x")
    assert error.value.status == 500 and len(sleeps) == 3


def test_answers_that_will_not_change_are_not_retried() -> None:
    http, sleeps = _http(Script(403))
    with pytest.raises(FetchFailed, match="HTTP 403"):
        http.get("https://shop.test/x")
    assert sleeps == []
    http, _ = _http(Script(404))
    assert http.get("https://shop.test/gone").gone  # an answer: the listing is gone


def test_a_retry_after_longer_than_allowed_gives_up_and_pauses_the_bucket() -> None:
    cache = MemoryCache()
    limiter = TokenBucket(cache, "shop", 100, 1, sleep=lambda _: None)
    http, sleeps = _http(Script((429, {"Retry-After": "3600"})), limiter=limiter)
    with pytest.raises(FetchFailed, match="asked to wait 3600 s"):
        http.get("https://shop.test/x")
    assert sleeps == []
    assert limiter.reserve() > 100  # every worker now waits (capped at max_retry_after)


# --- rate limiter ------------------------------------------------------------------------


def test_the_bucket_allows_a_burst_then_spaces_requests(cache: Cache) -> None:
    limiter = TokenBucket(cache, "shop", requests_per_second=10, burst=3)
    waits = [limiter.reserve() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    # reservations queue up: each later one waits one interval (0.1 s) longer, less the
    # little time that passed between the calls
    assert 0 < waits[3] <= 0.1
    assert all(0.05 < b - a <= 0.1 for a, b in itertools.pairwise(waits[3:]))


def test_two_limiters_on_the_same_cache_share_one_budget(cache: Cache) -> None:
    """Two workers (threads, each with its own limiter object) together stay within rate."""
    arrivals: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        limiter = TokenBucket(cache, "shared-shop", requests_per_second=20, burst=1)
        for _ in range(5):
            limiter.acquire()
            with lock:
                arrivals.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    span = max(arrivals) - min(arrivals)
    assert len(arrivals) == 10
    assert span >= 0.8 * (10 - 1) / 20  # 9 intervals of 50 ms; one budget, not two


def test_a_pause_holds_every_limiter(cache: Cache) -> None:
    a = TokenBucket(cache, "paused", requests_per_second=100, burst=5)
    b = TokenBucket(cache, "paused", requests_per_second=100, burst=5)
    a.pause(2.0)
    assert 1.5 <= b.reserve() <= 2.0


# --- circuit breaker ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_circuit_opens_after_consecutive_failures_and_half_opens(cache: Cache) -> None:
    clock = Clock()
    breaker = CircuitBreaker(cache, "shop", failure_threshold=3, cooldown_seconds=60, clock=clock)
    for _ in range(2):
        breaker.before_request()
        breaker.record_failure("HTTP 500")
    breaker.record_success()  # not consecutive any more
    for _ in range(3):
        breaker.before_request()
        breaker.record_failure("HTTP 503")
    assert breaker.state().state == "open"
    other_worker = CircuitBreaker(
        cache, "shop", failure_threshold=3, cooldown_seconds=60, clock=clock
    )
    with pytest.raises(
        CircuitOpenError, match=r"open after 3 consecutive failures \(last: HTTP 503\)"
    ):
        other_worker.before_request()

    clock.now += 61
    assert breaker.state().state == "half-open"
    breaker.before_request()  # this worker probes…
    with pytest.raises(CircuitOpenError, match="another worker is probing"):
        other_worker.before_request()  # …the others wait
    breaker.record_failure("HTTP 503")  # the probe failed: open again
    with pytest.raises(CircuitOpenError):
        other_worker.before_request()

    clock.now += 61
    other_worker.before_request()
    other_worker.record_success()
    assert breaker.state().state == "closed"
    breaker.before_request()


def test_the_client_stops_at_an_open_circuit() -> None:
    cache = MemoryCache()
    breaker = CircuitBreaker(cache, "shop", failure_threshold=2, cooldown_seconds=60)
    script = Script(500, 500, 500, 500)
    http, _ = _http(script, breaker=breaker)
    with pytest.raises(CircuitOpenError, match="circuit for shop is open"):
        http.get("https://shop.test/x")
    assert len(script.requests) == 2  # the third attempt never left
