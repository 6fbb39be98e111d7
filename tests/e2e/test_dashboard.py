"""The dashboard in a real headless Chromium: it connects with an API key, lists the live
opportunities, shows an opportunity pushed through the pipeline (webhook → sensor → runs)
without a reload, filters, and draws the selected product's price history.

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and Playwright for Python
(no ``playwright install``: the system browser is used). Without them the test is skipped
locally with the reason, and fails in CI (``CI`` or ``ARBX_REQUIRE_BROWSER`` set), so a
missing browser is never silently untested there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_harness import (
    TEST_KEY,
    StubDagster,
    push_through_pipeline,
    serve_in_thread,
    service_settings,
    spread_observations,
    write_sources,
)

from arbx_dagster.resources.sources import resolve_sources
from arbx_dagster.service.app import create_app
from arbx_dagster.storage.cache import Cache, RedisCache
from arbx_dagster.storage.warehouse import Warehouse

pytestmark = [pytest.mark.services, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("ARBX_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_required() -> bool:
    flags = (os.environ.get("CI", ""), os.environ.get("ARBX_REQUIRE_BROWSER", ""))
    return any(flag not in ("", "0", "false") for flag in flags)


def _missing(reason: str) -> None:
    if _browser_required():
        pytest.fail(f"{reason} (required in CI: `make browser` installs it)", pytrace=False)
    pytest.skip(f"{reason}; install it with `apt-get install -y chromium` (or `make browser`)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    if not CHROMIUM.exists():
        _missing(f"Chromium not found at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def stack(
    tmp_path: Path, postgres_url: str, postgres_warehouse: Warehouse, redis_cache: Cache
) -> Iterator[dict[str, Any]]:
    sources_path = write_sources(tmp_path / "sources")
    cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
    app = create_app(
        service_settings(tmp_path / "home", postgres_url=postgres_url),
        cache=cache,
        dagster=StubDagster(),  # type: ignore[arg-type]
        sources=resolve_sources(sources_path),
    )
    with serve_in_thread(app) as server:
        yield {"url": server.url, "sources": sources_path, "cache": cache}


@pytest.fixture
def stores_stack(
    tmp_path: Path, postgres_url: str, postgres_warehouse: Warehouse, redis_cache: Cache
) -> Iterator[str]:
    """The service on sources of two stores no built-in list knows."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        f"""
version: 1
archive: {{root: {tmp_path / "archive"}}}
retailers:
  - {{name: walmart-exports, connector: file_drop, path: {tmp_path}, retailer: walmart}}
  - {{name: target-exports, connector: file_drop, path: {tmp_path}, retailer: target}}
""",
        encoding="utf-8",
    )
    app = create_app(
        service_settings(tmp_path / "home", postgres_url=postgres_url),
        cache=RedisCache(redis_cache.url, prefix=redis_cache.prefix),  # type: ignore[attr-defined]
        dagster=StubDagster(),  # type: ignore[arg-type]
        sources=resolve_sources(sources),
    )
    with serve_in_thread(app) as server:
        yield server.url


def pipeline_opportunity(
    stack: dict[str, Any], postgres_url: str, warehouse: Warehouse
) -> dict[str, Any]:
    """A scraper's webhook, then what the daemon runs; returns the opportunity found, after
    checking that the run's opportunities asset announced it (no one else does)."""
    now = datetime.now(UTC).replace(microsecond=0)
    pushed = push_through_pipeline(
        stack["url"],
        spread_observations(now),
        postgres_url=postgres_url,
        redis_cache=stack["cache"],
        sources_path=stack["sources"],
        now=now,
    )
    assert all(r.success for r in pushed.ingestion.runs) and pushed.downstream.success
    after = warehouse.query("SELECT * FROM opportunities")
    assert after.height == 1, f"the pipeline found {after.height} opportunities, not 1"
    found = after.row(0, named=True)
    announced = [
        (e.type, e.data["opportunity_id"], e.data["run_id"])
        for e in pushed.events
        if e.type.startswith("opportunit")
    ]
    assert announced == [("opportunity.new", found["opportunity_id"], pushed.downstream.run_id)]
    return found


def test_an_opportunity_from_the_pipeline_appears_live_and_its_history_is_charted(
    browser: Any,
    stack: dict[str, Any],
    postgres_url: str,
    postgres_warehouse: Warehouse,
    redis_cache: Cache,
) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(stack["url"] + "/")
    page.fill("#api-key", TEST_KEY)
    page.click("#connect")
    page.wait_for_selector("[data-testid=connection]:has-text('live')", timeout=30_000)
    page.wait_for_selector("[data-testid=summary]:has-text('0 live opportunities')")
    page.evaluate("window.__notReloaded = true")

    found = pipeline_opportunity(stack, postgres_url, postgres_warehouse)

    row = page.wait_for_selector(f"tr[data-id='{found['opportunity_id']}']", timeout=30_000)
    assert page.evaluate("window.__notReloaded") is True  # pushed, not reloaded
    text = row.inner_text()
    assert "Smart TV LG 55" in text and "ripley" in text and "$299.990" in text
    assert page.inner_text("[data-testid=summary]").startswith("1 live opportunities")

    # Filters apply to the list (and to what arrives live).
    page.select_option("#f-kind", "glitch")
    page.wait_for_selector("[data-testid=summary]:has-text('0 live opportunities')")
    page.select_option("#f-kind", "")
    page.wait_for_selector(f"tr[data-id='{found['opportunity_id']}']")

    # The selected product's price history, one line per listing.
    row = page.query_selector(f"tr[data-id='{found['opportunity_id']}']")
    row.click()
    page.wait_for_selector("#chart path[data-series]", state="attached", timeout=30_000)
    series = page.eval_on_selector_all(
        "#chart path[data-series]", "paths => paths.map(p => p.dataset.series).sort()"
    )
    assert series == ["paris P-55UR8750", "ripley R-55UR8750"]
    assert "Smart TV LG 55" in page.inner_text("#product-title")
    assert errors == []
    page.close()


def test_a_wrong_key_is_told_and_nothing_is_listed(browser: Any, stack: dict[str, Any]) -> None:
    page = browser.new_page()
    page.goto(stack["url"] + "/")
    page.fill("#api-key", "not-the-key-0123456789")
    page.click("#connect")
    page.wait_for_selector("[data-testid=connection]:has-text('invalid API key')")
    assert page.query_selector_all("tr[data-id]") == []
    csp = httpx.get(stack["url"] + "/").headers["content-security-policy"]
    assert "script-src 'self'" in csp  # the page runs under the strict policy
    page.close()


def test_the_retailer_filter_lists_the_retailers_the_sources_provide(
    browser: Any, stores_stack: str
) -> None:
    page = browser.new_page()
    page.goto(stores_stack + "/")
    page.fill("#api-key", TEST_KEY)
    page.click("#connect")
    page.wait_for_selector("[data-testid=retailer-filter] option[value=walmart]", state="attached")
    options = page.eval_on_selector_all(
        "[data-testid=retailer-filter] option", "options => options.map(o => o.value)"
    )
    assert options == ["", "target", "walmart"]
    page.select_option("#f-retailer", "walmart")
    page.wait_for_selector("[data-testid=summary]:has-text('0 live opportunities')")
    page.close()
