"""The HTTP clients a source can fetch through, behind one small interface.

:class:`~arbx_dagster.ingestion.http.RetailerHttp` owns everything polite (rate limit,
retries, ``Retry-After``, circuit breaker, stats); a client only sends one GET and answers
with a :class:`ClientResponse`, or raises :class:`ClientTimeout` / :class:`ClientError`.
So the fetch logic is written once, whichever client a source configures (``client:`` in
``sources.yaml``, :class:`~arbx_dagster.ingestion.http_policy.HttpClientConfig`):

* ``httpx`` — a plain pooled client (the default);
* ``curl_cffi`` — a libcurl session impersonating a real browser: its TLS and HTTP/2
  fingerprint and its default headers (``sec-ch-ua``, a browser User-Agent, …), for stores
  whose bot protection refuses plain clients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from arbx_dagster.ingestion.http_policy import USER_AGENT, HttpClientConfig

# Sent by every client; a source's ``headers`` override them.
BASE_HEADERS = {
    "Accept": "application/json, text/html;q=0.9, */*;q=0.5",
    "Accept-Language": "es-CL,es;q=0.9",
}


class ClientTimeout(Exception):
    """The server did not answer in time (connect or read)."""


class ClientError(Exception):
    """The request got no HTTP answer: refused, reset, DNS, TLS…"""


@dataclass(frozen=True)
class ClientResponse:
    url: str  # after redirects
    status: int
    content: bytes  # decoded (gzip, br…), as the store sent it otherwise
    headers: Mapping[str, str]  # lower-case names

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class HttpClient(Protocol):
    """One GET at a time, no retries: :class:`RetailerHttp` decides what to do next."""

    kind: str

    def get(self, url: str, params: Mapping[str, str | int] | None = None) -> ClientResponse:
        """GET ``url`` with ``params`` added to its own query; raise :class:`ClientTimeout`
        or :class:`ClientError` when no answer came."""
        ...

    def close(self) -> None: ...


def request_headers(
    config: HttpClientConfig, user_agent: str | None, headers: Mapping[str, str] | None
) -> dict[str, str]:
    """The headers a source's requests carry. The User-Agent is the configured one, else
    ArbX's honest one for a plain client; an impersonating client keeps its browser's own
    (a bot's User-Agent on a browser's fingerprint would give it away)."""
    agent = user_agent or (USER_AGENT if config.browser is None else None)
    return {
        **({"User-Agent": agent} if agent else {}),
        **BASE_HEADERS,
        **(headers or {}),
    }


def open_client(
    config: HttpClientConfig,
    *,
    timeout_seconds: float,
    headers: Mapping[str, str],
    max_connections: int = 4,
    transport: httpx.BaseTransport | None = None,
) -> HttpClient:
    """The client ``config`` names. ``transport`` (tests) only applies to httpx."""
    if config.kind == "curl_cffi":
        return CurlCffiClient(
            config.browser or "chrome", timeout_seconds=timeout_seconds, headers=headers
        )
    return HttpxClient(
        timeout_seconds=timeout_seconds,
        headers=headers,
        max_connections=max_connections,
        transport=transport,
    )


class HttpxClient:
    kind = "httpx"

    def __init__(
        self,
        *,
        timeout_seconds: float,
        headers: Mapping[str, str],
        max_connections: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers=dict(headers),
            follow_redirects=True,
            transport=transport,
        )

    def get(self, url: str, params: Mapping[str, str | int] | None = None) -> ClientResponse:
        # httpx would replace the URL's own query with ``params``: merge them instead
        target = httpx.URL(url).copy_merge_params(dict(params)) if params else httpx.URL(url)
        try:
            response = self._client.get(target)
        except httpx.TimeoutException as exc:
            raise ClientTimeout(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise ClientError(f"{type(exc).__name__}: {exc}") from exc
        return ClientResponse(
            url=str(response.url),
            status=response.status_code,
            content=response.content,
            headers={k.lower(): v for k, v in response.headers.items()},
        )

    def close(self) -> None:
        self._client.close()


class CurlCffiClient:
    """A curl_cffi session impersonating ``browser``. Each thread gets its own curl handle
    (curl_cffi's thread-local handles), so one instance is as thread-safe as the httpx one;
    connections are reused per handle (``max_connections`` does not apply)."""

    kind = "curl_cffi"

    def __init__(self, browser: str, *, timeout_seconds: float, headers: Mapping[str, str]):
        from curl_cffi import requests as curl_requests  # imported only where it is used

        self.browser = browser
        self._errors = curl_requests.exceptions
        # like httpx, connecting gets min(timeout, 10 s); curl then bounds the whole exchange
        # (connect + timeout_seconds) where httpx bounds each read: a slow server times out
        # either way
        self._session: Any = curl_requests.Session(
            impersonate=browser,
            headers=dict(headers),
            timeout=(min(timeout_seconds, 10.0), timeout_seconds),
            allow_redirects=True,
        )

    def get(self, url: str, params: Mapping[str, str | int] | None = None) -> ClientResponse:
        try:  # curl_cffi adds ``params`` to the URL's own query
            response = self._session.get(url, params=dict(params) if params else None)
        except self._errors.Timeout as exc:
            raise ClientTimeout(type(exc).__name__) from exc
        except self._errors.RequestException as exc:
            raise ClientError(f"{type(exc).__name__}: {_first_line(exc)}") from exc
        return ClientResponse(
            url=str(response.url),
            status=response.status_code,
            content=response.content,
            headers={k.lower(): v for k, v in response.headers.items() if v is not None},
        )

    def close(self) -> None:
        self._session.close()


def _first_line(exc: BaseException) -> str:
    # curl's messages end with a pointer to its error table: keep the reason
    return str(exc).split(". See https://curl.se", 1)[0]
