"""The HTTP client per source: ``client:`` in sources.yaml picks httpx (default) or a
browser-impersonating curl_cffi session, validated up front; both carry the same headers,
and the fetch logic (retries, Retry-After, timeouts) is the same whichever sends."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path

import pytest

from arbx_dagster.ingestion.clients import (
    ClientError,
    ClientResponse,
    ClientTimeout,
    CurlCffiClient,
    HttpxClient,
    open_client,
    request_headers,
)
from arbx_dagster.ingestion.http import FetchFailed, RetailerHttp
from arbx_dagster.ingestion.http_policy import USER_AGENT, HttpClientConfig, RetryPolicy
from arbx_dagster.ingestion.sources import SourcesConfig
from arbx_dagster.ingestion.sources_file import SourcesError, parse_sources
from arbx_dagster.ingestion.stats import FetchStats

REPO = Path(__file__).resolve().parents[2]

SOURCE = """
defaults:
  client: {client}
retailers:
  - name: falabella
    connector: http_json
    base_url: https://example.test
{extra}
    listing:
      url: /listing
      items_path: data.results
      fields: {{sku: skuId}}
  - name: exports
    connector: file_drop
    path: landing
"""


def _load(client: str = "{}", extra: str = "") -> SourcesConfig:
    return parse_sources(SOURCE.format(client=client, extra=extra), origin="sources.yaml")


# --- configuration -------------------------------------------------------------------------


def test_the_default_client_is_plain_httpx() -> None:
    falabella = _load().get("falabella")
    assert falabella.client == HttpClientConfig(kind="httpx")
    assert falabella.client.browser is None


def test_a_source_can_fetch_as_a_browser_through_curl_cffi() -> None:
    falabella = _load(extra="    client: {kind: curl_cffi, impersonate: safari}").get("falabella")
    assert (falabella.client.kind, falabella.client.browser) == ("curl_cffi", "safari")
    # the short form, impersonating the latest Chrome by default
    short = _load(extra="    client: curl_cffi").get("falabella")
    assert (short.client.kind, short.client.browser) == ("curl_cffi", "chrome")
    # a pinned browser version that curl_cffi knows
    pinned = _load(extra="    client: {kind: curl_cffi, impersonate: chrome124}")
    assert pinned.get("falabella").client.browser == "chrome124"


def test_defaults_give_every_http_source_the_client_and_leave_file_drops_alone() -> None:
    sources = _load(client="{kind: curl_cffi}")
    assert sources.get("falabella").client.kind == "curl_cffi"
    assert not hasattr(sources.get("exports"), "client")


def test_an_unknown_client_kind_is_a_located_error() -> None:
    with pytest.raises(SourcesError) as error:
        _load(extra="    client: {kind: curl}")
    assert str(error.value) == (
        "sources.yaml:8: retailers[0] (falabella).client.kind: "
        "must be one of httpx, curl_cffi (got 'curl')"
    )


def test_an_unknown_browser_is_an_error_that_suggests_the_near_ones() -> None:
    with pytest.raises(SourcesError) as error:
        _load(extra="    client: {kind: curl_cffi, impersonate: chrom}")
    message = str(error.value)
    assert message.startswith(
        "sources.yaml:8: retailers[0] (falabella).client.impersonate: unknown browser 'chrom' "
        "to impersonate: one of chrome, edge, safari, safari_ios, chrome_android, firefox, tor, "
        "or a version curl_cffi knows such as chrome124; did you mean "
    )
    assert "chrome" in message.rsplit("did you mean", 1)[1]


def test_only_curl_cffi_can_impersonate() -> None:
    with pytest.raises(SourcesError, match=r"client: impersonate needs kind: curl_cffi"):
        _load(extra="    client: {impersonate: chrome}")


def test_a_misspelt_client_key_is_rejected() -> None:
    with pytest.raises(SourcesError, match=r"client\.browser: unknown key"):
        _load(extra="    client: {kind: curl_cffi, browser: chrome}")


# --- headers -------------------------------------------------------------------------------


def test_a_plain_client_is_honest_and_an_impersonating_one_keeps_its_browsers_agent() -> None:
    plain = request_headers(HttpClientConfig(), None, None)
    assert plain["User-Agent"] == USER_AGENT
    browser = request_headers(HttpClientConfig(kind="curl_cffi"), None, None)
    assert "User-Agent" not in browser  # curl_cffi sends the impersonated browser's
    assert plain["Accept-Language"] == browser["Accept-Language"] == "es-CL,es;q=0.9"


def test_a_configured_user_agent_and_headers_win_with_either_client() -> None:
    for config in (HttpClientConfig(), HttpClientConfig(kind="curl_cffi")):
        headers = request_headers(config, "Mozilla/5.0 test", {"Accept-Language": "en"})
        assert headers["User-Agent"] == "Mozilla/5.0 test"
        assert headers["Accept-Language"] == "en"


def test_the_configured_kind_opens_that_client() -> None:
    plain = open_client(HttpClientConfig(), timeout_seconds=1, headers={})
    browser = open_client(
        HttpClientConfig(kind="curl_cffi", impersonate="firefox"), timeout_seconds=1, headers={}
    )
    try:
        assert isinstance(plain, HttpxClient) and plain.kind == "httpx"
        assert isinstance(browser, CurlCffiClient) and browser.browser == "firefox"
    finally:
        plain.close()
        browser.close()


# --- one fetch logic, any client -----------------------------------------------------------


class ScriptedClient:
    """A client answering from a script: a status, (status, headers), or an exception."""

    kind = "scripted"

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, Mapping[str, str | int] | None]] = []
        self.closed = False

    def get(self, url: str, params: Mapping[str, str | int] | None = None) -> ClientResponse:
        self.calls.append((url, params))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return ClientResponse(url, status, b"{}", {"content-type": "application/json", **headers})

    def close(self) -> None:
        self.closed = True


def _http(client: ScriptedClient, config: HttpClientConfig | None = None) -> RetailerHttp:
    return RetailerHttp(
        "shop",
        retry=RetryPolicy(max_attempts=4, backoff_base_seconds=0.01, backoff_max_seconds=0.05),
        client=config,
        client_impl=client,
        sleep=lambda _: None,
        rng=random.Random(1),
    )


def test_any_client_is_retried_through_timeouts_errors_and_429() -> None:
    client = ScriptedClient(ClientTimeout("Timeout"), ClientError("ConnectionError: reset"), 429)
    stats = FetchStats()
    with _http(client) as http:
        response = http.get("https://shop.test/p", params={"page": 2}, stats=stats)
    assert response.status == 200 and response.attempts == 4
    assert response.content_type == "application/json"
    assert client.calls == [("https://shop.test/p", {"page": 2})] * 4
    assert stats.status_counts == {"timeout": 1, "error": 1, "429": 1, "200": 1}
    assert client.closed


def test_a_refusal_tells_a_plain_client_how_to_fetch_as_a_browser() -> None:
    with pytest.raises(FetchFailed) as plain:
        _http(ScriptedClient(403)).get("https://shop.test/p")
    assert plain.value.attempts == 1
    assert "set client: {kind: curl_cffi} on source 'shop'" in str(plain.value)

    browser = HttpClientConfig(kind="curl_cffi")
    with pytest.raises(FetchFailed) as refused:
        _http(ScriptedClient(403), browser).get("https://shop.test/p")
    assert refused.value.reason == "HTTP 403"  # already a browser: nothing more to suggest


def test_the_documented_falabella_client_line_loads_when_uncommented() -> None:
    example = (REPO / "sources.example.yaml").read_text(encoding="utf-8")
    line = "    # client: {kind: curl_cffi, impersonate: chrome}\n"
    assert example.count(line) == 1
    sources = parse_sources(example.replace(line, line.replace("# ", "", 1)))
    falabella = sources.get("falabella")
    assert (falabella.client.kind, falabella.client.browser) == ("curl_cffi", "chrome")
    assert falabella.user_agent is None  # the browser's own
    assert sources.get("ripley").client.kind == "httpx"
