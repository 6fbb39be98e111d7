"""End to end on PostgreSQL + Redis: a signed webhook lands observations, the real
file-drop sensor (evaluated with its cursor on a Dagster instance) picks the files up,
the ingestion and downstream runs find an opportunity, and an SSE client of the API hears
about it from the opportunities asset itself (and the list shows it)."""

from __future__ import annotations

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
    read_event,
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

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


@pytest.fixture
def stack(
    tmp_path: Path, postgres_url: str, postgres_warehouse: Warehouse, redis_cache: Cache
) -> Iterator[dict[str, Any]]:
    sources_path = write_sources(tmp_path / "sources")
    settings = service_settings(tmp_path / "home", postgres_url=postgres_url)
    cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
    app = create_app(
        settings,
        cache=cache,
        dagster=StubDagster(),
        sources=resolve_sources(sources_path),  # type: ignore[arg-type]
    )
    with serve_in_thread(app) as server:
        yield {"url": server.url, "sources": sources_path, "cache": cache}


def test_webhook_to_sensor_to_run_to_opportunity_to_sse(
    stack: dict[str, Any], postgres_url: str, postgres_warehouse: Warehouse, redis_cache: Cache
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    url = stack["url"]
    with (
        httpx.Client(timeout=httpx.Timeout(30, read=60)) as http,
        http.stream("GET", f"{url}/api/sse/updates", headers=AUTH) as stream,
    ):
        assert stream.status_code == 200

        # A scraper elsewhere pushes prices; the daemon's part follows (sensor, runs).
        pushed = push_through_pipeline(
            url,
            spread_observations(now),
            postgres_url=postgres_url,
            redis_cache=stack["cache"],
            sources_path=stack["sources"],
            now=now,
            source="scraper-e2e",
        )
        assert len(pushed.landed["files"]) == 2
        # The sensor asked for one run holding both landed files (one delivery), and it ran...
        [request] = pushed.ingestion.requests
        assert request.job_name == "deliver_files"
        assert len(request.run_config["ops"]["raw_prices"]["config"]["paths"]) == 2
        assert [r.success for r in pushed.ingestion.runs] == [True]
        assert postgres_warehouse.scalar("SELECT count(*) FROM raw_prices") == 2
        # ...exactly once: its cursor remembers the files.
        assert pushed.rerun_requests == []
        assert pushed.downstream.success

        found = postgres_warehouse.query("SELECT * FROM opportunities")
        assert found.height == 1
        opportunity = found.row(0, named=True)
        assert (opportunity["kind"], opportunity["buy_retailer"], opportunity["ref_retailer"]) == (
            "spread",
            "ripley",
            "paris",
        )

        # The opportunities asset of the downstream run announced it (nobody else did).
        published = [e for e in pushed.events if e.type.startswith("opportunit")]
        assert [(e.type, e.data["run_id"]) for e in published] == [
            ("opportunity.new", pushed.downstream.run_id)
        ]

        # The client hears that very event.
        event = read_event(stream.iter_lines(), "opportunit")
        assert event["id"] == published[0].id
        assert event["type"] == "opportunity.new"
        assert event["data"]["run_id"] == pushed.downstream.run_id
        assert event["data"]["opportunity_id"] == opportunity["opportunity_id"]
        assert event["data"]["margin_clp"] == opportunity["margin_clp"] > 0

        # And the (cached) list already shows it.
        page = http.get(f"{url}/api/opportunities", headers=AUTH).json()
        assert [o["opportunity_id"] for o in page["items"]] == [opportunity["opportunity_id"]]
