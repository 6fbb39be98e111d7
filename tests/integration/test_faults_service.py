"""The API through real faults: PostgreSQL cut, gone, or stalled behind a TCP proxy while
the service runs. Whatever the database does, the answer is a 200 or a 503 with
Retry-After, never a 500, and the service recovers on its own once the database is back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fault_proxy import FaultProxy
from service_harness import (
    TEST_KEY,
    TEST_SECRET,
    StubDagster,
    serve_in_thread,
    service_settings,
    spread_observations,
    write_sources,
)

from arbx_dagster.ingestion.webhook_signature import sign
from arbx_dagster.resources.sources import resolve_sources
from arbx_dagster.service.app import create_app
from arbx_dagster.storage.cache import Cache, RedisCache
from arbx_dagster.storage.warehouse import Warehouse

pytestmark = pytest.mark.services

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
POOL = 8


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy("127.0.0.1", 5432) as proxy:
        yield proxy


@pytest.fixture
def served(
    tmp_path: Path,
    postgres_url: str,
    postgres_warehouse: Warehouse,
    redis_cache: Cache,
    proxy: FaultProxy,
) -> Iterator[str]:
    """The API on uvicorn, its warehouse reached through the proxy (Redis directly)."""
    settings = service_settings(tmp_path, postgres_url=proxy.url(postgres_url))
    cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
    app = create_app(settings, cache=cache, dagster=StubDagster())  # type: ignore[arg-type]
    with serve_in_thread(app) as server:
        yield server.url


def _burst(url: str, n: int, path: str = "/api/config") -> list[httpx.Response]:
    """``n`` requests at once, each on a connection of its own (the pool fills up)."""

    def one(_: int) -> httpx.Response:
        return httpx.get(url + path, headers=AUTH, timeout=30)

    with ThreadPoolExecutor(POOL) as pool:
        return list(pool.map(one, range(n)))


def _statuses(responses: list[httpx.Response]) -> list[int]:
    return sorted(r.status_code for r in responses)


def test_a_database_blip_leaves_no_dead_connection_behind(served: str, proxy: FaultProxy) -> None:
    assert _statuses(_burst(served, 20)) == [200] * 20
    assert proxy.connections >= 2  # the pool holds several connections

    assert proxy.cut() >= 2  # one second of network trouble resets every pooled connection
    time.sleep(1)

    assert _statuses(_burst(served, 20)) == [200] * 20


def test_while_the_database_is_down_the_api_answers_503_then_recovers(
    served: str, proxy: FaultProxy
) -> None:
    assert _statuses(_burst(served, 8)) == [200] * 8
    with proxy.outage():
        down = _burst(served, 12) + _burst(served, 4, "/api/opportunities")
        assert {r.status_code for r in down} == {503}
        assert all(int(r.headers["retry-after"]) > 0 for r in down)
        assert all("warehouse" in r.json()["message"] for r in down)
    assert _statuses(_burst(served, 12)) == [200] * 12


def test_a_cut_in_the_middle_of_requests_answers_503_not_500(
    served: str, proxy: FaultProxy
) -> None:
    assert _statuses(_burst(served, 8)) == [200] * 8
    answers: list[httpx.Response] = []
    with proxy.paused():  # requests reach the database and hang there …
        sender = threading.Thread(target=lambda: answers.extend(_burst(served, 8)))
        sender.start()
        time.sleep(0.5)
        proxy.cut()  # … until the connection is lost under them
    sender.join(timeout=30)
    assert len(answers) == 8
    assert set(_statuses(answers)) <= {200, 503}, [r.text for r in answers]
    assert _statuses(_burst(served, 8)) == [200] * 8


@pytest.fixture
def served_through_redis_proxy(
    tmp_path: Path, postgres_url: str, postgres_warehouse: Warehouse, redis_cache: Cache
) -> Iterator[tuple[str, FaultProxy]]:
    """The API with its Redis reached through a proxy (PostgreSQL directly)."""
    with FaultProxy("127.0.0.1", 6379) as proxy:
        settings = service_settings(tmp_path, postgres_url=postgres_url)
        cache = RedisCache(
            proxy.url(redis_cache.url),  # type: ignore[attr-defined]
            prefix=redis_cache.prefix,  # type: ignore[attr-defined]
            timeout_seconds=0.5,
        )
        sources = resolve_sources(write_sources(tmp_path / "sources"))
        app = create_app(settings, cache=cache, dagster=StubDagster(), sources=sources)  # type: ignore[arg-type]
        with serve_in_thread(app) as server:
            yield server.url, proxy


def _deliver(url: str) -> httpx.Response:
    body = json.dumps({"observations": spread_observations(datetime.now(UTC))}).encode()
    headers = {"Content-Type": "application/json", "X-Arbx-Signature": sign(TEST_SECRET, body)}
    return httpx.post(url + "/api/webhooks/prices", content=body, headers=headers, timeout=30)


def _landed(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "sources" / "landing").rglob("*") if p.is_file()]


def test_without_redis_the_api_serves_from_the_warehouse_and_says_it_is_degraded(
    served_through_redis_proxy: tuple[str, FaultProxy], tmp_path: Path
) -> None:
    url, proxy = served_through_redis_proxy
    assert _statuses(_burst(url, 4, "/api/opportunities")) == [200] * 4
    with proxy.outage():
        # Redis accelerates (page cache, rate limits) and carries events: without it the
        # data routes still answer from the warehouse; health says what is missing.
        assert _statuses(_burst(url, 4, "/api/opportunities")) == [200] * 4
        assert _statuses(_burst(url, 4, "/api/config")) == [200] * 4
        health = httpx.get(url + "/health", timeout=30)
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["components"]["cache"]["state"] == "down"
        # A delivery cannot be claimed once-only without Redis: refused whole, retried later.
        refused = _deliver(url)
        assert refused.status_code == 503 and "retry-after" in refused.headers
        assert _landed(tmp_path) == []
    assert _deliver(url).status_code == 202
    assert _landed(tmp_path)
    recovered = _burst(url, 4, "/api/opportunities")
    assert _statuses(recovered) == [200] * 4
    assert httpx.get(url + "/health", timeout=30).json()["status"] in {"ok", "degraded"}
