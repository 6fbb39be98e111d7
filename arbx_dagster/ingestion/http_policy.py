"""How politely, and with which HTTP client, a source's pages are fetched: the rate limit,
retries, the circuit breaker and the client (``client:``, ``rate_limit:``, ``retry:`` and
``circuit_breaker:`` in ``sources.yaml``)."""

from __future__ import annotations

import difflib
import typing
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from arbx_dagster.ingestion.source_types import ConfigModel

USER_AGENT = "ArbX/0.1 (+https://github.com/arbx; price-intelligence bot)"


class RateLimit(ConfigModel):
    """Token bucket shared by every worker scraping the retailer."""

    requests_per_second: float = Field(1.0, gt=0)
    burst: int = Field(2, ge=1)


class RetryPolicy(ConfigModel):
    """Exponential backoff with jitter; ``Retry-After`` wins when the server sends one."""

    max_attempts: int = Field(4, ge=1, le=20)
    backoff_base_seconds: float = Field(0.5, ge=0)
    backoff_max_seconds: float = Field(30.0, ge=0)
    jitter: float = Field(0.5, ge=0, le=1)
    retry_on_status: tuple[int, ...] = (429, 500, 502, 503, 504)
    max_retry_after_seconds: float = Field(120.0, ge=0)


class CircuitBreakerPolicy(ConfigModel):
    """Stop hammering a retailer that keeps failing; probe again after a cool-down."""

    failure_threshold: int = Field(5, ge=1)
    cooldown_seconds: float = Field(300.0, gt=0)


ClientKind = Literal["httpx", "curl_cffi"]
# curl_cffi's names for "the latest it knows" of each browser; pinned versions (chrome124,
# safari184, …) are accepted when the installed curl_cffi knows them.
BROWSERS = ("chrome", "edge", "safari", "safari_ios", "chrome_android", "firefox", "tor")
DEFAULT_BROWSER = "chrome"


class HttpClientConfig(ConfigModel):
    """Which HTTP client fetches a source's pages (``client:`` in ``sources.yaml``).

    ``httpx`` (default): a plain client with ArbX's honest User-Agent. ``curl_cffi``: a
    session that impersonates a real browser (its TLS and HTTP/2 fingerprint and its default
    headers, User-Agent included) for a store whose bot protection refuses plain clients;
    ``impersonate`` names the browser (default ``chrome``, the latest Chrome curl_cffi
    knows; or a pinned version such as ``chrome124``). Retries, rate limit, circuit breaker,
    timeouts, ``headers`` and the archive work the same with either. ``client: curl_cffi``
    is short for ``client: {kind: curl_cffi}``.
    """

    kind: ClientKind = "httpx"
    impersonate: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"kind": data} if isinstance(data, str) else data

    @field_validator("impersonate")
    @classmethod
    def _known_browser(cls, value: str | None) -> str | None:
        if value is None:
            return value
        known = impersonation_targets()
        if value not in known:
            close = difflib.get_close_matches(value, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"unknown browser {value!r} to impersonate: one of {', '.join(BROWSERS)}, "
                f"or a version curl_cffi knows such as chrome124{hint}"
            )
        return value

    @model_validator(mode="after")
    def _impersonation_needs_curl_cffi(self) -> HttpClientConfig:
        if self.impersonate is not None and self.kind != "curl_cffi":
            raise ValueError(
                f"impersonate needs kind: curl_cffi (the {self.kind} client cannot "
                "impersonate a browser)"
            )
        return self

    @property
    def browser(self) -> str | None:
        """The browser a ``curl_cffi`` client impersonates (None for ``httpx``)."""
        if self.kind != "curl_cffi":
            return None
        return self.impersonate or DEFAULT_BROWSER


def impersonation_targets() -> frozenset[str]:
    """Browser names the installed curl_cffi can impersonate."""
    from curl_cffi.requests.impersonate import BrowserTypeLiteral  # only where it is used

    return frozenset((*typing.get_args(BrowserTypeLiteral), *BROWSERS))
