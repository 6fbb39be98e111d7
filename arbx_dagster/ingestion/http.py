"""HTTP the polite way: one client per retailer (pooled ``httpx`` by default, or a
browser-impersonating ``curl_cffi`` session, see ``clients.py``), rate-limited, retried with
exponential backoff and jitter on 429/5xx/timeouts (``Retry-After`` honoured), behind a
circuit breaker, with an honest User-Agent unless the source impersonates a browser.

A request that still fails after its retries raises :class:`FetchFailed`; the caller writes
no price for it. 404/410 are answers (the listing is gone), not failures.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.wait import wait_base

from arbx_dagster.ingestion.circuit import CircuitBreaker
from arbx_dagster.ingestion.clients import (
    ClientError,
    ClientTimeout,
    HttpClient,
    open_client,
    request_headers,
)
from arbx_dagster.ingestion.http_policy import HttpClientConfig, RetryPolicy
from arbx_dagster.ingestion.ratelimit import TokenBucket
from arbx_dagster.ingestion.stats import FetchStats

log = logging.getLogger(__name__)

GONE = (404, 410)
REFUSED = (403,)  # what bot protection answers a client it does not believe


class FetchFailed(RuntimeError):
    """A request failed for good (after retries, or a status not worth retrying).

    ``retry_after``: the wait the server asked for; ``retryable``: whether another attempt
    could fare better (what the retry loop looks at before giving up)."""

    def __init__(
        self,
        url: str,
        reason: str,
        status: int | None = None,
        attempts: int = 0,
        *,
        retry_after: float | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(f"GET {url} failed after {attempts} attempt(s): {reason}")
        self.url = url
        self.reason = reason
        self.status = status
        self.attempts = attempts
        self.retry_after = retry_after
        self.retryable = retryable


@dataclass(frozen=True)
class HttpResponse:
    url: str
    status: int
    content: bytes
    content_type: str
    attempts: int
    fetched_at: datetime

    @property
    def gone(self) -> bool:
        return self.status in GONE


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Backoff(wait_base):
    """The wait before a retry: exponential with jitter (workers that failed together do
    not retry together), or what the server asked for (``Retry-After``) when longer."""

    def __init__(self, policy: RetryPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.exponential = wait_exponential(
            multiplier=policy.backoff_base_seconds, max=policy.backoff_max_seconds
        )
        self.rng = rng or random.Random()

    def __call__(self, retry_state: RetryCallState) -> float:
        delay = self.exponential(retry_state) * (1 - self.policy.jitter * self.rng.random())
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(failure, "retry_after", None)
        return delay if retry_after is None else max(delay, retry_after)


class RetailerHttp:
    """The HTTP side of one retailer. Thread-safe; close it (or use ``with``) when done.

    ``client`` picks the HTTP client (``httpx`` by default, or a browser-impersonating
    ``curl_cffi`` session); everything else here is the same whichever sends the requests.
    ``client_impl`` (tests) supplies a ready :class:`~arbx_dagster.ingestion.clients.HttpClient`.
    """

    def __init__(
        self,
        retailer: str,
        *,
        timeout_seconds: float = 20.0,
        retry: RetryPolicy | None = None,
        limiter: TokenBucket | None = None,
        breaker: CircuitBreaker | None = None,
        client: HttpClientConfig | None = None,
        user_agent: str | None = None,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 4,
        transport: httpx.BaseTransport | None = None,
        client_impl: HttpClient | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.retailer = retailer
        self.retry = retry or RetryPolicy()
        self.limiter = limiter
        self.breaker = breaker
        self.config = client or HttpClientConfig()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.client: HttpClient = client_impl or open_client(
            self.config,
            timeout_seconds=timeout_seconds,
            headers=request_headers(self.config, user_agent, headers),
            max_connections=max_connections,
            transport=transport,
        )

    def __enter__(self) -> RetailerHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def get(
        self,
        url: str,
        params: Mapping[str, str | int] | None = None,
        stats: FetchStats | None = None,
    ) -> HttpResponse:
        """GET with rate limit, retries and circuit breaker; updates ``stats`` in place.

        Raises :class:`FetchFailed` when the request failed for good and
        :class:`~arbx_dagster.ingestion.circuit.CircuitOpenError` when the circuit is open.
        """
        stats = stats if stats is not None else FetchStats()
        policy = self.retry

        def before_retry(state: RetryCallState) -> None:
            stats.retries += 1
            reason = state.outcome.exception().reason  # type: ignore[union-attr]
            log.info(
                "%s: %s on %s; retry %d/%d in %.2f s",
                self.retailer, reason, url, state.attempt_number, policy.max_attempts - 1,
                state.upcoming_sleep,
            )  # fmt: skip

        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, FetchFailed) and exc.retryable),
            stop=stop_after_attempt(policy.max_attempts),
            wait=Backoff(policy, self._rng),
            sleep=self._sleep,
            before_sleep=before_retry,
            reraise=True,  # the last attempt's FetchFailed, or what was not worth retrying
        )
        for attempt in retrying:
            with attempt:
                response = self._attempt(url, params, stats, attempt.retry_state.attempt_number)
        return response

    def _attempt(
        self, url: str, params: Mapping[str, str | int] | None, stats: FetchStats, attempt: int
    ) -> HttpResponse:
        """One request: the response, or :class:`FetchFailed` saying whether to retry."""
        policy = self.retry
        if self.breaker is not None:
            self.breaker.before_request()
        if self.limiter is not None:
            stats.rate_limited_seconds += self.limiter.acquire()
        stats.requests += 1
        retry_after: float | None = None
        try:
            response = self.client.get(url, params=params or None)
        except ClientTimeout as exc:
            stats.status_counts["timeout"] += 1
            reason, status = f"timeout ({exc})", None
        except ClientError as exc:
            stats.status_counts["error"] += 1
            reason, status = str(exc), None
        else:
            status = response.status
            stats.status_counts[str(status)] += 1
            stats.bytes += len(response.content)
            if status < 400 or status in GONE:
                if self.breaker is not None:
                    self.breaker.record_success()
                return HttpResponse(
                    url=response.url,
                    status=status,
                    content=response.content,
                    content_type=response.header("content-type") or "",
                    attempts=attempt,
                    fetched_at=datetime.now(UTC),
                )
            reason = self._refused(status)
            retry_after = parse_retry_after(response.header("retry-after"))
            if status not in policy.retry_on_status:
                self._failed(reason)
                raise FetchFailed(url, reason, status, attempt)
        self._failed(reason)
        if retry_after is not None and self.limiter is not None:
            self.limiter.pause(min(retry_after, policy.max_retry_after_seconds))
        if retry_after is not None and retry_after > policy.max_retry_after_seconds:
            raise FetchFailed(
                url,
                f"{reason}, server asked to wait {retry_after:.0f} s "
                f"(more than retry.max_retry_after_seconds={policy.max_retry_after_seconds:g})",
                status,
                attempt,
            )
        raise FetchFailed(url, reason, status, attempt, retry_after=retry_after, retryable=True)

    def _refused(self, status: int) -> str:
        if status in REFUSED and self.config.browser is None:
            return (
                f"HTTP {status} (refused: the store may block plain HTTP clients; "
                f"set client: {{kind: curl_cffi}} on source {self.retailer!r} to fetch "
                "as a browser)"
            )
        return f"HTTP {status}"

    def _failed(self, reason: str) -> None:
        if self.breaker is not None:
            self.breaker.record_failure(reason)
