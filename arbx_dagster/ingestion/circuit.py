"""A circuit breaker per retailer: stop hammering a store that keeps failing, and say so.

Closed -> (``failure_threshold`` consecutive failed requests) -> open: every request fails
fast with :class:`CircuitOpenError` until ``cooldown_seconds`` pass -> half-open: one worker
probes; success closes the circuit, failure re-opens it for another cool-down. The state
lives in the cache, so all workers scraping the retailer see the same circuit.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from arbx_dagster.storage.cache import Cache

log = logging.getLogger(__name__)


class CircuitOpenError(RuntimeError):
    """Requests to this retailer are suspended; the message says since when and until when."""

    def __init__(self, retailer: str, message: str, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.retailer = retailer
        self.retry_at = retry_at


@dataclass(frozen=True)
class CircuitState:
    state: str  # closed / open / half-open
    failures: int
    opened_at: float | None = None
    retry_at: float | None = None
    reason: str | None = None


class CircuitBreaker:
    def __init__(
        self,
        cache: Cache,
        retailer: str,
        *,
        failure_threshold: int = 5,
        cooldown_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.retailer = retailer
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._prefix = f"circuit:{retailer}"
        self._probe_token: str | None = None

    # --- state ---

    def state(self) -> CircuitState:
        failures = int(self.cache.get(f"{self._prefix}:failures") or 0)
        raw = self.cache.get(f"{self._prefix}:open")
        if raw is None:
            return CircuitState("closed", failures)
        opened = json.loads(raw)
        state = "open" if self._clock() < opened["retry_at"] else "half-open"
        return CircuitState(
            state, failures, opened["opened_at"], opened["retry_at"], opened["reason"]
        )

    def before_request(self) -> None:
        """Raise :class:`CircuitOpenError` unless a request may go out now."""
        current = self.state()
        if current.state == "closed":
            return
        if current.state == "open":
            raise CircuitOpenError(self.retailer, self._open_message(current), current.retry_at)
        if self._probe_token is not None:
            return  # we are the probe; retries of the probe request may continue
        token = uuid.uuid4().hex
        if self.cache.add(f"{self._prefix}:probe", token, ttl_seconds=self.cooldown_seconds):
            self._probe_token = token
            log.info("circuit for %s is half-open: probing with one request", self.retailer)
            return
        raise CircuitOpenError(
            self.retailer,
            f"circuit for {self.retailer} is half-open and another worker is probing it",
            current.retry_at,
        )

    def record_success(self) -> None:
        was_open = self.cache.get(f"{self._prefix}:open") is not None
        self.cache.delete(
            f"{self._prefix}:failures", f"{self._prefix}:open", f"{self._prefix}:probe"
        )
        self._probe_token = None
        if was_open:
            log.warning("circuit for %s closed again: the retailer answers", self.retailer)

    def record_failure(self, reason: str) -> None:
        ttl = max(self.cooldown_seconds * 4, 3600)
        failures = self.cache.incr(f"{self._prefix}:failures", ttl_seconds=ttl)
        probing = self._probe_token is not None
        if probing or failures >= self.failure_threshold:
            self._open(failures, reason, probing)

    def reset(self) -> None:
        self.cache.delete(
            f"{self._prefix}:failures", f"{self._prefix}:open", f"{self._prefix}:probe"
        )
        self._probe_token = None

    # --- internals ---

    def _open(self, failures: int, reason: str, probing: bool) -> None:
        now = self._clock()
        retry_at = now + self.cooldown_seconds
        state = {"opened_at": now, "retry_at": retry_at, "reason": reason, "failures": failures}
        self.cache.set(
            f"{self._prefix}:open",
            json.dumps(state),
            ttl_seconds=max(self.cooldown_seconds * 4, 3600),
        )
        self.cache.delete(f"{self._prefix}:probe")
        self._probe_token = None
        what = "probe failed, circuit re-opened" if probing else "circuit opened"
        log.error(
            "%s for %s after %d consecutive failures (last: %s); no requests until %s",
            what, self.retailer, failures, reason, _iso(retry_at),
        )  # fmt: skip

    def _open_message(self, state: CircuitState) -> str:
        wait = max(0.0, (state.retry_at or 0) - self._clock())
        return (
            f"circuit for {self.retailer} is open after {state.failures} consecutive failures "
            f"(last: {state.reason}); requests suspended until {_iso(state.retry_at)} "
            f"(in {wait:.0f} s)"
        )


def _iso(moment: float | None) -> str:
    if moment is None:
        return "?"
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
