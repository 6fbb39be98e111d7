"""The HTTP connectors against a local server replaying recorded-style store pages.

Falabella-style JSON API (page=N until the first empty page), Ripley-style catalogue API
(pagination.totalPages), Paris-style HTML grid (offset) with product pages; plus the faults
real stores produce: 429 with Retry-After, intermittent 5xx, slow answers, a changed layout,
an outage. Timing assertions use generous lower bounds on request arrivals.

Every test runs with both HTTP clients a source can configure: the plain ``httpx`` one and
the browser-impersonating ``curl_cffi`` session (retries, Retry-After, timeouts, rate limit,
circuit breaker and archive behave the same); a store behind a bot check answers only the
second.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.ingestion import (
    Archive,
    CircuitOpenError,
    FetchMode,
    FetchRequest,
    KnownListing,
    SourcesConfig,
    build_connector,
    concat_batches,
    load_sources,
    replay_day,
)
from arbx_dagster.ingestion.http_policy import (
    USER_AGENT,
    CircuitBreakerPolicy,
    HttpClientConfig,
    RateLimit,
)
from arbx_dagster.ingestion.sources import HtmlSource, HttpJsonSource
from arbx_dagster.storage.cache import Cache, MemoryCache

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
from fixture_server import Fault, FixtureServer

SOURCES_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "retailers" / "sources.yaml"
NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
LISTING = FetchMode.LISTING_PAGES
FALABELLA_API = "/falabella/s/browse/v1/listing/cl"
PRICES = ["sku", "price_list", "price_offer", "price_card"]


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer() as running:
        yield running


@pytest.fixture(params=["httpx", "curl_cffi"])
def client(request: pytest.FixtureRequest) -> HttpClientConfig:
    return HttpClientConfig(kind=request.param)


@pytest.fixture
def stores(server: FixtureServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> SourcesConfig:
    """The fixture stores as ``sources.yaml`` defines them (the default client)."""
    monkeypatch.setenv("ARBX_FIXTURE_URL", server.url)
    monkeypatch.setenv("ARBX_TEST_ARCHIVE", str(tmp_path / "archive"))
    return load_sources(SOURCES_FILE)


@pytest.fixture
def sources(stores: SourcesConfig, client: HttpClientConfig) -> SourcesConfig:
    """The fixture stores, every HTTP one fetched through ``client``."""
    retailers = [
        s.model_copy(update={"client": client}) if isinstance(s, HttpJsonSource | HtmlSource) else s
        for s in stores.retailers
    ]
    return stores.model_copy(update={"retailers": retailers})


def _fetch(
    sources: SourcesConfig,
    name: str,
    cache: Cache | None = None,
    archive: Archive | None = None,
    **request: object,
) -> tuple[pl.DataFrame, object]:
    connector = build_connector(sources.get(name), cache or MemoryCache(), archive)
    try:
        return concat_batches(connector.fetch(FetchRequest(observed_at=NOW, **request)))
    finally:
        connector.close()


def _with(sources: SourcesConfig, name: str, **update: object) -> SourcesConfig:
    """The sources with one retailer's settings changed (a faster timeout, a tighter limit)."""
    retailers = [s.model_copy(update=update) if s.name == name else s for s in sources.retailers]
    return sources.model_copy(update={"retailers": retailers})


# --- the three store styles ----------------------------------------------------------------


def test_falabella_json_api_pages_until_the_first_empty_page(
    server: FixtureServer, sources: SourcesConfig, client: HttpClientConfig
) -> None:
    frame, stats = _fetch(sources, "falabella", mode=LISTING)
    pages = [a.query["page"] for a in server.requests_to(FALABELLA_API)]
    assert pages == ["1", "2", "3"]
    assert all(a.query["categoryId"] == "cat7190148" for a in server.requests_to(FALABELLA_API))
    agent = server.arrivals[0].headers["user-agent"]
    if client.kind == "httpx":
        assert agent == USER_AGENT  # honest about being a bot
    else:
        assert agent.startswith("Mozilla/5.0") and "Chrome/" in agent  # the browser's own
    assert server.arrivals[0].headers["accept-language"] == "es-CL,es;q=0.9"
    assert frame.select(*PRICES, "card_program", "is_first_party", "seller").rows() == [
        ("16677002", 599_990, 449_990, 429_990, "CMR", True, "Falabella"),
        ("17123457", 699_990, 499_990, None, None, False, "Electro Outlet SpA"),
        ("18000002", 289_990, 199_990, None, None, True, "Falabella"),  # event price
        ("19000002", 399_990, 299_990, 279_990, "CMR", True, "Falabella"),
        ("19500002", None, None, None, None, True, "Falabella"),  # "Consultar precio"
    ]
    assert frame["listing_rank"].to_list() == [1, 2, 3, 4, 5]
    assert frame["category"][0] == "Tecnología > TV y Video > Televisores"
    assert frame["url"][0] == f"{server.url}/falabella/product/16677001"
    assert json.loads(frame["image_urls"][0]) == [  # the gallery, links made absolute
        "https://media.falabella.com/falabellaCL/16677002_1/public",
        f"{server.url}/falabella/media/16677002_2/public",
    ]
    assert frame["observed_at"].unique().to_list() == [NOW]
    assert (stats.pages, stats.items_seen, stats.items_unparsable) == (3, 5, 1)
    assert stats.layout_problem() is None

    result = validate_observations(frame, now=NOW)
    assert result.accepted.height == 4
    [bad] = result.quarantined.iter_rows(named=True)
    assert (
        bad["source_location"] == f"{server.url}{FALABELLA_API}?categoryId=cat7190148&page=2#item-1"
    )
    assert frame.filter(pl.col("sku") == "19500002")["parse_error"][0] == (
        "unparsable price_offer: 'Consultar precio' (not a CLP amount)"
    )


def test_full_mode_completes_listings_from_product_pages(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    frame, stats = _fetch(sources, "falabella", mode=FetchMode.FULL)
    assert len(server.requests_to("/falabella/product/")) == 5
    samsung = frame.row(0, named=True)
    assert (samsung["model"], samsung["stock_qty"], samsung["ean"]) == ("QN55Q60DAGXZS", 25, None)
    assert frame.filter(pl.col("sku") == "17123457")["ean"][0] == "8806084123456"
    assert frame.select(*PRICES).rows()[0] == ("16677002", 599_990, 449_990, 429_990)
    assert samsung["source_location"] == f"{server.url}/falabella/product/16677001"
    assert stats.pages == 3 + 5


def test_ripley_catalogue_stops_at_total_pages(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    frame, _ = _fetch(sources, "ripley", mode=LISTING)
    assert [a.query["page"] for a in server.requests_to("/ripley/")] == ["1", "2"]
    assert frame.select(*PRICES, "in_stock", "is_first_party", "seller", "condition").rows() == [
        ("2000390012345P", 999_990, 799_990, 749_990, True, True, "Ripley", "new"),
        ("MPM00012345678", 399_990, 329_990, None, True, False, "CellStore SpA", "new"),
        ("2000390054321P", 899_990, 849_990, 819_990, False, True, "Ripley", "new"),
        ("2000390099999P", 449_990, 349_990, None, True, True, "Ripley", "new"),
        ("MPM00098765432", 379_990, 259_990, None, True, False, "Reacondicionados Chile",
         "refurbished"),
    ]  # fmt: skip
    assert frame["card_program"].to_list() == ["Tarjeta Ripley", None, "Tarjeta Ripley", None, None]
    assert json.loads(frame["image_urls"][0]) == [  # one picture is a gallery of one
        "https://home.ripley.cl/store/Attachment/WOP/D191/2000390012345P/2000390012345P_2.jpg"
    ]


def test_paris_html_grid_and_product_pages(server: FixtureServer, sources: SourcesConfig) -> None:
    frame, stats = _fetch(sources, "paris", mode=FetchMode.FULL)
    grid = [a for a in server.arrivals if a.path.endswith("/notebooks/")]
    assert [(a.query["start"], a.query["sz"]) for a in grid] == [("0", "3"), ("3", "3")]
    assert frame.select(*PRICES, "in_stock", "is_first_party", "model", "stock_qty").rows() == [
        ("MKLG7E", 1_099_990, 899_990, 849_990, True, True, "MLY33LE/A", 12),
        ("LEN82XB", 599_990, 449_990, None, True, True, "82XB0012CL", 4),
        ("HP9X7Z1", 849_990, 699_990, 649_990, True, False, "15-FA1023LA", 2),
        ("ASU1604", 799_990, None, None, False, True, "X1605VA-MB123W", 0),  # sold out
        ("DEL3520", 499_990, 399_990, None, True, True, None, None),  # tile lost its link
    ]
    assert frame["ean"][0] == "194253081234"
    assert json.loads(frame["image_urls"][0]) == [
        "https://imagenes.paris.cl/MKLG7E_1.jpg",
        f"{server.url}/paris/images/MKLG7E_2.jpg",  # the hover image, relative on the page
    ]
    assert frame["category"][0] == "Tecnología > Computadores > Notebooks"
    assert "no product URL for sku 'DEL3520'" in stats.errors
    result = validate_observations(frame, now=NOW)
    assert result.accepted["sku"].to_list() == ["MKLG7E", "LEN82XB", "HP9X7Z1", "ASU1604"]
    assert result.reasons == {"missing name": 1}


# --- faults --------------------------------------------------------------------------------


def test_429_with_retry_after_is_honoured(server: FixtureServer, sources: SourcesConfig) -> None:
    server.fail_next(FALABELLA_API, Fault(status=429, headers={"Retry-After": "1"}))
    frame, stats = _fetch(sources, "falabella", mode=LISTING)
    first, second = server.requests_to(FALABELLA_API)[:2]
    assert second.at - first.at >= 0.9
    assert stats.status_counts["429"] == 1 and stats.retries == 1
    assert frame.height == 5 and frame["price_offer"].null_count() == 1


def test_intermittent_5xx_are_retried(server: FixtureServer, sources: SourcesConfig) -> None:
    server.fail_next(FALABELLA_API, Fault(status=500), Fault(status=502))
    server.fail_next("/falabella/product/18000001", Fault(status=503))
    frame, stats = _fetch(sources, "falabella", mode=FetchMode.FULL)
    assert stats.retries == 3 and stats.pages_failed == 0
    assert frame.filter(pl.col("sku") == "18000002")["model"][0] == "L43M8-A2LA"
    assert frame.height == 5


def test_the_html_store_is_retried_through_a_429_and_a_500(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    grid = "/paris/tecnologia/computadores/notebooks/"
    server.fail_next(grid, Fault(status=429, headers={"Retry-After": "1"}))
    server.fail_next("/paris/notebook-hp-victus", Fault(status=500))
    frame, stats = _fetch(sources, "paris", mode=FetchMode.FULL)
    first, second = server.requests_to(grid)[:2]
    assert second.at - first.at >= 0.9  # waited as told
    assert (first.query["start"], second.query["start"]) == ("0", "0")  # the same page again
    assert stats.status_counts["429"] == 1 and stats.status_counts["500"] == 1
    assert stats.retries == 2 and stats.pages_failed == 0 and stats.http_errors == 2
    # every row as without faults, the product page's data included
    hp = frame.filter(pl.col("sku") == "HP9X7Z1").row(0, named=True)
    assert (hp["model"], hp["stock_qty"], hp["price_offer"]) == ("15-FA1023LA", 2, 699_990)
    assert frame.height == 5


def test_a_slow_answer_times_out_and_the_retry_succeeds(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    server.fail_next("/ripley/", Fault(delay=1.5))
    frame, stats = _fetch(_with(sources, "ripley", timeout_seconds=0.3), "ripley", mode=LISTING)
    assert stats.status_counts["timeout"] == 1
    assert frame["sku"].to_list()[0] == "2000390012345P" and frame.height == 5


def test_the_rate_limit_spaces_requests(server: FixtureServer, sources: SourcesConfig) -> None:
    limited = _with(sources, "falabella", rate_limit=RateLimit(requests_per_second=10, burst=1))
    _, stats = _fetch(limited, "falabella", mode=FetchMode.FULL)
    arrivals = [a.at for a in server.arrivals]
    assert len(arrivals) == 8
    assert arrivals[-1] - arrivals[0] >= 0.8 * 7 / 10
    assert stats.rate_limited_seconds > 0


def test_workers_share_the_rate_limit_through_redis(
    server: FixtureServer, sources: SourcesConfig, redis_cache: Cache
) -> None:
    limited = _with(sources, "falabella", rate_limit=RateLimit(requests_per_second=10, burst=1))
    frames: list[pl.DataFrame] = []

    def worker() -> None:
        frames.append(_fetch(limited, "falabella", cache=redis_cache, mode=LISTING)[0])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    arrivals = sorted(a.at for a in server.arrivals)
    assert len(arrivals) == 6
    assert arrivals[-1] - arrivals[0] >= 0.8 * 5 / 10  # one budget for both workers
    assert [f.height for f in frames] == [5, 5]


# --- failures never become prices ----------------------------------------------------------


def test_a_changed_layout_is_detected_not_read_as_an_empty_category(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    server.always("/paris/tecnologia/", Fault(fixture="paris/grid-redesign.html"))
    frame, stats = _fetch(sources, "paris", mode=LISTING)
    assert frame.is_empty()
    assert stats.layout_errors == 1
    assert "container 'div.search-result-content' not found" in stats.errors[0]
    assert stats.layout_problem() == "1 page(s) lacked the expected structure"

    server.always(FALABELLA_API, Fault(fixture="falabella/listing-changed.json"))
    frame, stats = _fetch(sources, "falabella", mode=LISTING)
    assert frame.is_empty() and len(server.requests_to(FALABELLA_API)) == 1
    assert "items_path 'data.results' found nothing" in stats.errors[0]


def test_a_page_that_fails_for_good_writes_no_price(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    tracked = (KnownListing("16677002", name="Samsung"), KnownListing("19000002", name="TCL"))
    server.fail_next(FALABELLA_API, Fault(), *[Fault(status=500)] * 4)  # page 2 never answers
    frame, stats = _fetch(sources, "falabella", mode=LISTING, listings=tracked)
    assert frame["sku"].to_list() == ["16677002"]  # page 2's TCL: no row, no zero, no copy
    assert stats.pages_failed == 1 and stats.missing == 0
    assert any("not marked missing because the crawl was incomplete" in e for e in stats.errors)
    assert any("failed after 4 attempt(s): HTTP 500" in e for e in stats.errors)


def test_a_tracked_listing_gone_from_the_pages_is_marked_missing(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    tracked = (
        KnownListing("17123457", name="LG 65"),
        KnownListing("99999999", name="Discontinued TV", url="https://x/99999999"),
    )
    frame, stats = _fetch(sources, "falabella", mode=LISTING, listings=tracked)
    assert frame.select("sku", "fetch_status", "price_offer", "name").rows() == [
        ("17123457", "ok", 499_990, 'Smart TV LG 65" UHD 4K 65UR8750PSA'),
        ("99999999", "missing", None, "Discontinued TV"),
    ]
    assert stats.missing == 1
    result = validate_observations(frame, now=NOW)
    assert result.quarantined.is_empty()  # recorded as missing, never priced


def test_full_mode_opens_tracked_product_pages_the_listing_did_not_show(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    product = f"{server.url}/falabella/product"
    tracked = (
        KnownListing("16677102", name="Samsung 55 (other variant)", url=f"{product}/16677001"),
        KnownListing("42", name="Gone", url=f"{product}/42"),
    )
    frame, stats = _fetch(sources, "falabella", mode=FetchMode.FULL, listings=tracked)
    assert frame.select(*PRICES, "fetch_status").rows() == [
        ("16677102", 1_999_990, 1_499_990, None, "ok"),  # the variant's own prices
        ("42", None, None, None, "missing"),  # the product page answered 404
    ]
    assert stats.missing == 1


def test_the_circuit_opens_on_an_outage_and_closes_after_cool_down(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    breaker = CircuitBreakerPolicy(failure_threshold=3, cooldown_seconds=0.5)
    flaky = _with(sources, "ripley", circuit_breaker=breaker)
    cache = MemoryCache()
    server.always("/ripley/", Fault(status=503))
    with pytest.raises(CircuitOpenError, match="circuit for ripley is open after 3 consecutive"):
        _fetch(flaky, "ripley", cache=cache, mode=LISTING)
    assert len(server.requests_to("/ripley/")) == 3
    with pytest.raises(CircuitOpenError):
        _fetch(flaky, "ripley", cache=cache, mode=LISTING)
    assert len(server.requests_to("/ripley/")) == 3  # fails fast: the store is left alone

    server.always("/ripley/", None)
    threading.Event().wait(0.6)
    frame, _ = _fetch(flaky, "ripley", cache=cache, mode=LISTING)
    assert frame.height == 5


# --- archive -------------------------------------------------------------------------------


def test_a_day_replays_from_the_archive_without_the_network(
    sources: SourcesConfig, tmp_path: Path
) -> None:
    archive = Archive.from_config(sources.archive)
    live, live_stats = _fetch(sources, "paris", archive=archive, mode=FetchMode.FULL)
    blobs = list((tmp_path / "archive" / "blobs").rglob("*.zst"))
    assert len(blobs) == 2 + 4  # two grid pages, four product pages

    day = NOW.date()
    offline = Archive(tmp_path / "archive")
    replayed, stats = concat_batches(replay_day(offline, "paris", day))
    assert replayed.equals(live)
    assert (stats.items_seen, stats.pages) == (live_stats.items_seen, live_stats.pages)

    # a fixed parser: re-parse the same bytes with today's mapping
    fixed = sources.get("paris").model_copy(update={"constants": {"condition": "refurbished"}})
    reparsed, _ = concat_batches(replay_day(offline, "paris", day, config=fixed))
    assert reparsed.filter(pl.col("sku") == "DEL3520")["condition"][0] == "refurbished"
    assert reparsed["price_offer"].equals(live["price_offer"])


def test_an_outage_during_product_pages_keeps_the_listing_rows(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    flaky = _with(sources, "falabella", circuit_breaker=CircuitBreakerPolicy(failure_threshold=2))
    server.always("/falabella/product/", Fault(status=500))
    connector = build_connector(flaky.get("falabella"), MemoryCache())
    batches = []
    with pytest.raises(CircuitOpenError):
        for batch in connector.fetch(FetchRequest(observed_at=NOW)):
            batches.append(batch)
    assert len(server.requests_to("/falabella/product/")) == 2  # then it stopped asking
    assert batches[0].frame.select(*PRICES).rows()[0] == ("16677002", 599_990, 449_990, 429_990)
    assert batches[0].frame["model"].null_count() == 3  # listing data only, never invented
    assert batches[-1].stats.circuit_open


# --- the HTTP client -----------------------------------------------------------------------


def test_a_store_behind_a_bot_check_refuses_the_plain_client_with_a_clear_error(
    server: FixtureServer, stores: SourcesConfig
) -> None:
    server.browsers_only("/falabella/")
    assert stores.get("falabella").client.kind == "httpx"  # the default
    frame, stats = _fetch(stores, "falabella", mode=LISTING)
    assert frame.is_empty()  # no price from a refused page
    assert len(server.requests_to(FALABELLA_API)) == 1  # a refusal is not retried
    assert stats.status_counts["403"] == 1 and stats.pages_failed == 1
    [failure] = [e for e in stats.errors if "HTTP 403" in e]
    assert (
        "HTTP 403 (refused: the store may block plain HTTP clients; "
        "set client: {kind: curl_cffi} on source 'falabella' to fetch as a browser)"
    ) in failure


def test_the_impersonating_client_gets_through_the_bot_check(
    server: FixtureServer, stores: SourcesConfig
) -> None:
    server.browsers_only("/falabella/")
    browser = _with(
        stores, "falabella", client=HttpClientConfig(kind="curl_cffi", impersonate="chrome")
    )
    frame, stats = _fetch(browser, "falabella", mode=FetchMode.FULL)
    assert frame.height == 5 and stats.pages == 3 + 5 and stats.http_errors == 0
    assert frame.filter(pl.col("sku") == "17123457")["ean"][0] == "8806084123456"
    first = server.arrivals[0].headers
    assert '"Google Chrome"' in first["sec-ch-ua"]
    assert first["user-agent"].startswith("Mozilla/5.0")


def test_configured_user_agent_and_headers_are_sent_by_either_client(
    server: FixtureServer, sources: SourcesConfig
) -> None:
    custom = _with(
        sources,
        "ripley",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) ArbX-test",
        headers={"Accept-Language": "en", "X-Store-Zone": "13"},
    )
    frame, _ = _fetch(custom, "ripley", mode=LISTING)
    assert frame.height == 5
    for arrival in server.requests_to("/ripley/"):
        assert arrival.headers["user-agent"] == "Mozilla/5.0 (X11; Linux x86_64) ArbX-test"
        assert arrival.headers["accept-language"] == "en"  # the source's headers win
        assert arrival.headers["x-store-zone"] == "13"
        assert arrival.headers["accept"] == "application/json, text/html;q=0.9, */*;q=0.5"
