"""The service's REST API on PostgreSQL + Redis: auth, opportunities (filters, cursor
pagination, cache invalidation), products, labels, config, rate limits, security headers,
body limits, health; and the embedded DuckDB default answering 503 while a run holds it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from service_harness import TEST_KEY, StubDagster, metric_value, service_settings

from arbx_dagster.domain.lifecycle import OPPORTUNITY_STATE_SCHEMA
from arbx_dagster.domain.schema import conform
from arbx_dagster.pipeline.announcements import invalidate_opportunities, publish_opportunity_events
from arbx_dagster.resources.sources import resolve_sources
from arbx_dagster.service.app import create_app
from arbx_dagster.service.auth import issue_key, revoke_key
from arbx_dagster.service.dagster_api import DagsterClient
from arbx_dagster.service.ratelimit import RateLimiter
from arbx_dagster.storage.cache import Cache, CacheError, MemoryCache, RedisCache
from arbx_dagster.storage.event_log import RedisEventLog
from arbx_dagster.storage.warehouse import Warehouse

pytestmark = pytest.mark.services

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
NOW = datetime.now(UTC).replace(microsecond=0)


def opportunity(i: int, **overrides: Any) -> dict[str, Any]:
    row = {
        "opportunity_id": f"opp-{i:03d}",
        "kind": "glitch" if i % 5 == 0 else "spread",
        "canonical_id": f"cp-{i % 7}",
        "product_name": f"Producto {i}",
        "category": "Tecnología > Televisores" if i % 2 else "Hogar > Cocina",
        "buy_retailer": ("falabella", "ripley", "paris")[i % 3],
        "buy_sku": f"sku-{i}",
        "buy_url": None,
        "buy_price": 100_000 + i * 1_000,
        "buy_price_type": "offer",
        "ref_retailer": "paris",
        "ref_price": 200_000,
        "margin_clp": 10_000 + (i * 7_919) % 90_000,  # distinct, unordered
        "roi_pct": float(5 + (i * 13) % 40),
        "confidence": 0.9,
        "severity": "high" if i % 5 == 0 else None,
        "observed_at": NOW,
        "review": "weak identity: the two listings share no model code" if i % 6 == 1 else None,
        "status": "new" if i % 4 else "active",
        "first_seen": NOW - timedelta(hours=i),
        "last_seen": NOW,
        "expired_at": None,
        "times_seen": 1,
    }
    row.update(overrides)
    return row


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return conform(pl.DataFrame(rows), OPPORTUNITY_STATE_SCHEMA)


def seed(warehouse: Warehouse, rows: list[dict[str, Any]]) -> pl.DataFrame:
    data = frame(rows)
    warehouse.upsert("opportunities", data, ["opportunity_id"])
    return data


@pytest.fixture
def app_factory(
    tmp_path: Path, postgres_url: str, postgres_warehouse: Warehouse, redis_cache: Cache
) -> Iterator[Any]:
    """Apps on the test's PostgreSQL database and Redis prefix (several share them)."""
    clients: list[TestClient] = []

    def make(dagster: Any = None, sources: Any = None, **overrides: Any) -> TestClient:
        settings = service_settings(
            tmp_path, postgres_url=postgres_url, redis_url="redis://unused", **overrides
        )
        cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
        app = create_app(settings, cache=cache, dagster=dagster or StubDagster(), sources=sources)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(app_factory: Any) -> TestClient:
    return app_factory()


# --- auth ---------------------------------------------------------------------------------

PROTECTED = [
    ("GET", "/api/opportunities", None),
    ("GET", "/api/products/cp-1", None),
    ("GET", "/api/metrics", None),
    ("GET", "/api/config", None),
    ("GET", "/api/retailers", None),
    ("GET", "/api/pipeline/status", None),
    ("GET", "/api/sse/updates", None),
    ("POST", "/api/pipeline/runs", {"job": "full_refresh"}),
    ("POST", "/api/pipeline/runs/0a0022a8-c173-426b-9c27-3f563350ffa6/terminate", None),
    ("PUT", "/api/config", {"min_margin_clp": 1}),
    ("POST", "/api/matches/0123456789abcdef/label", {"decision": "confirm"}),
]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-key-0123456789abcdef"},
        {"Authorization": f"Basic {TEST_KEY}"},
        {"Authorization": f"Bearer {TEST_KEY}x"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "other-scheme", "prefix-of-key", "empty"],
)
def test_every_api_route_but_the_webhook_needs_a_valid_key(
    api: TestClient, headers: dict[str, str]
) -> None:
    for method, path, body in PROTECTED:
        response = api.request(method, path, headers=headers, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "unauthorized"
    # The open endpoints: health, Prometheus, the document, the dashboard.
    for path in ("/health", "/metrics", "/openapi.json", "/"):
        assert api.get(path).status_code == 200, path
    assert metric_value(api.get("/metrics").text, "arbx_auth_failures_total") == len(PROTECTED)


def test_keys_from_the_table_are_stored_hashed_and_can_be_revoked(
    app_factory: Any, postgres_warehouse: Warehouse
) -> None:
    key = issue_key(postgres_warehouse, "dashboard")
    stored = postgres_warehouse.query("SELECT * FROM api_keys")
    assert stored["name"].to_list() == ["dashboard"]
    assert key not in json.dumps(stored.rows(), default=str)  # only the hash is kept
    first = app_factory()
    assert first.get("/api/config", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert revoke_key(postgres_warehouse, "dashboard") == 1
    second = app_factory()  # a worker that (re)loads the table no longer accepts it
    assert second.get("/api/config", headers={"Authorization": f"Bearer {key}"}).status_code == 401


# --- opportunities ------------------------------------------------------------------------


def test_opportunities_are_filtered_sorted_and_cursor_paginated(
    api: TestClient, postgres_warehouse: Warehouse
) -> None:
    rows = [opportunity(i) for i in range(1, 26)]
    rows.append(opportunity(99, status="expired", margin_clp=999_999))
    seed(postgres_warehouse, rows)

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/opportunities", params=params, headers=AUTH).json()
        seen.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    margins = [o["margin_clp"] for o in seen]
    assert pages == 3 and len(seen) == 25 and len({o["opportunity_id"] for o in seen}) == 25
    assert margins == sorted(margins, reverse=True)
    assert "opp-099" not in {o["opportunity_id"] for o in seen}  # expired is not live

    def ids(**params: Any) -> list[str]:
        response = api.get("/api/opportunities", params={"limit": 200, **params}, headers=AUTH)
        assert response.status_code == 200, response.text
        return [o["opportunity_id"] for o in response.json()["items"]]

    expected = {r["opportunity_id"] for r in rows[:25] if r["kind"] == "glitch"}
    assert set(ids(kind="glitch")) == expected
    assert set(ids(retailer="paris")) == {
        r["opportunity_id"] for r in rows[:25] if r["buy_retailer"] == "paris"
    }
    one = rows[6]
    assert ids(retailer=one["buy_retailer"], sku=one["buy_sku"]) == [one["opportunity_id"]]
    assert ids(sku="no-such-sku") == []
    several = [r for r in rows[:25] if r["status"] != "expired"][:3]
    assert set(ids(sku=[r["buy_sku"] for r in several] + ["no-such-sku"])) >= {
        r["opportunity_id"] for r in several
    }
    too_many = {"sku": [f"s{i}" for i in range(101)]}
    assert api.get("/api/opportunities", params=too_many, headers=AUTH).status_code == 422
    assert set(ids(category="TELEVISORES")) == {
        r["opportunity_id"] for r in rows[:25] if "Televisores" in r["category"]
    }
    assert set(ids(min_margin=60_000, min_roi=20)) == {
        r["opportunity_id"] for r in rows[:25] if r["margin_clp"] >= 60_000 and r["roi_pct"] >= 20
    }
    assert ids(status="expired") == ["opp-099"]
    held = {r["opportunity_id"] for r in rows[:25] if r["review"]}
    assert held and set(ids(review="held")) == held
    assert set(ids(review="clear")) == {r["opportunity_id"] for r in rows[:25]} - held
    page = api.get("/api/opportunities", params={"review": "held"}, headers=AUTH).json()
    assert all(o["review"].startswith("weak identity") for o in page["items"])
    by_roi = api.get(
        "/api/opportunities", params={"sort": "roi", "order": "asc", "limit": 200}, headers=AUTH
    ).json()["items"]
    assert [o["roi_pct"] for o in by_roi] == sorted(o["roi_pct"] for o in by_roi)

    # Cursors by time survive the round trip too (datetimes inside the cursor).
    first = api.get(
        "/api/opportunities", params={"sort": "first_seen", "limit": 5}, headers=AUTH
    ).json()
    second = api.get(
        "/api/opportunities",
        params={"sort": "first_seen", "limit": 5, "cursor": first["next_cursor"]},
        headers=AUTH,
    ).json()
    assert first["items"][-1]["first_seen"] > second["items"][0]["first_seen"]

    bad = api.get("/api/opportunities", params={"cursor": "bm9wZQ"}, headers=AUTH)
    assert bad.status_code == 400 and "cursor" in bad.json()["message"]
    # values no column can hold are refused before any query (not a 500)
    for value in (10**30, -(2**63) - 1, "1e999"):
        raw = f'["margin",{value},"x"]'.encode()
        forged = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        answer = api.get("/api/opportunities", params={"cursor": forged}, headers=AUTH)
        assert answer.status_code == 400, (value, answer.text)
    long_id = base64.urlsafe_b64encode(f'["margin",1,"{"x" * 65}"]'.encode()).decode().rstrip("=")
    assert (
        api.get("/api/opportunities", params={"cursor": long_id}, headers=AUTH).status_code == 400
    )
    other_sort = api.get(
        "/api/opportunities", params={"cursor": first["next_cursor"]}, headers=AUTH
    )
    assert other_sort.status_code == 400
    for params in (
        {"limit": 0},
        {"limit": 201},
        {"kind": "nope"},
        {"min_roi": "nan"},
        {"retailer": "Paris!"},
        {"category": "a\x00b"},
    ):
        response = api.get("/api/opportunities", params=params, headers=AUTH)
        assert response.status_code == 422, (params, response.text)


def test_a_glitch_is_shown_by_its_depth_and_its_roi_is_capped(
    api: TestClient, postgres_warehouse: Warehouse
) -> None:
    seed(
        postgres_warehouse,
        [
            # Stored before the cap: 1 CLP against $89.990 is an "ROI" of 8 998 900 %.
            opportunity(5, buy_price=1, ref_price=89_990, margin_clp=89_989, roi_pct=8_998_900.0),
            opportunity(6, buy_price=150_000, ref_price=200_000, roi_pct=33.3),
        ],
    )
    page = api.get("/api/opportunities", headers=AUTH).json()
    shown = {o["opportunity_id"]: o for o in page["items"]}
    glitch, spread = shown["opp-005"], shown["opp-006"]
    assert glitch["kind"] == "glitch"
    assert glitch["depth_pct"] == pytest.approx(-99.9989, abs=1e-3)
    assert glitch["roi_pct"] == 1_000.0
    assert (spread["depth_pct"], spread["roi_pct"]) == (pytest.approx(-25.0), 33.3)


def test_pages_are_cached_in_redis_until_new_opportunities_are_published(
    app_factory: Any, postgres_warehouse: Warehouse, redis_cache: Cache
) -> None:
    first, second = app_factory(), app_factory()  # two workers, one Redis
    before = seed(postgres_warehouse, [opportunity(1), opportunity(2)])
    assert first.get("/api/opportunities", headers=AUTH).headers["x-cache"] == "miss"
    cached = second.get("/api/opportunities", headers=AUTH)
    assert cached.headers["x-cache"] == "hit"  # the other worker's page, from Redis
    assert cached.json()["count"] == 2

    after = seed(postgres_warehouse, [opportunity(3, margin_clp=500_000)])
    assert second.get("/api/opportunities", headers=AUTH).json()["count"] == 2  # still cached
    state = pl.concat([before, after])
    assert (
        publish_opportunity_events(
            redis_cache,
            before,
            state,
            events=RedisEventLog(redis_cache),  # type: ignore[arg-type]
        )
        == 1
    )  # what the pipeline does
    fresh = first.get("/api/opportunities", headers=AUTH)
    assert fresh.headers["x-cache"] == "miss"
    assert fresh.json()["items"][0]["opportunity_id"] == "opp-003"


# --- products, labels, config, KPIs -------------------------------------------------------


def seed_product(warehouse: Warehouse) -> None:
    now = NOW
    warehouse.upsert(
        "canonical_products",
        pl.DataFrame(
            [
                {
                    "canonical_id": "cp-1",
                    "title": "Smart TV LG 55",
                    "brand": "LG",
                    "model_code": "55UR8750",
                    "category": "TV",
                    "n_listings": 2,
                    "n_retailers": 2,
                    "updated_at": now,
                }
            ]
        ),
        ["canonical_id"],
    )
    listings = [
        {
            "retailer": r,
            "sku": s,
            "name": "Smart TV LG 55",
            "name_norm": "smart tv lg 55",
            "price_offer": p,
            "in_stock": True,
            "first_seen": now,
            "last_seen": now,
            "updated_at": now,
        }
        for r, s, p in (("ripley", "R1", 299_990), ("paris", "P1", 449_990))
    ]
    warehouse.upsert("listings", pl.DataFrame(listings), ["retailer", "sku"])
    warehouse.upsert(
        "product_matches",
        pl.DataFrame(
            {
                "retailer": ["ripley", "paris"],
                "sku": ["R1", "P1"],
                "canonical_id": ["cp-1"] * 2,
                "match_probability": [0.99, 0.99],
                "matched_at": [now, now],
            }
        ),
        ["retailer", "sku"],
    )
    warehouse.upsert(
        "match_pairs",
        pl.DataFrame(
            [
                {
                    "left_retailer": "paris",
                    "left_sku": "P1",
                    "right_retailer": "ripley",
                    "right_sku": "R1",
                    "probability": 0.99,
                    "matched_at": now,
                }
            ]
        ),
        ["left_retailer", "left_sku", "right_retailer", "right_sku"],
    )
    days = [date.today() - timedelta(days=d) for d in range(3)]
    history = [
        {
            "retailer": r,
            "sku": s,
            "day": d,
            "price_offer": p + i * 1000,
            "in_stock": True,
            "observations": 1,
        }
        for r, s, p in (("ripley", "R1", 299_990), ("paris", "P1", 449_990))
        for i, d in enumerate(days)
    ]
    warehouse.upsert("price_history", pl.DataFrame(history), ["retailer", "sku", "day"])


def test_a_product_shows_its_listings_history_and_match_pairs_which_can_be_labelled(
    api: TestClient, postgres_warehouse: Warehouse
) -> None:
    seed_product(postgres_warehouse)
    detail = api.get("/api/products/cp-1", headers=AUTH).json()
    assert detail["product"]["title"] == "Smart TV LG 55"
    assert sorted(detail["retailers"]) == ["paris", "ripley"]
    assert len(detail["retailers"]["ripley"][0]["history"]) == 3
    assert api.get("/api/products/cp-404", headers=AUTH).status_code == 404
    assert api.get("/api/products/bad%20id", headers=AUTH).status_code == 422

    pair_id = detail["match_pairs"][0]["pair_id"]
    labelled = api.post(
        f"/api/matches/{pair_id}/label",
        json={"decision": "reject", "note": "different screen size"},
        headers=AUTH,
    )
    assert labelled.status_code == 200, labelled.text
    stored = postgres_warehouse.query("SELECT * FROM match_labels").row(0, named=True)
    assert stored["is_match"] is False and stored["labelled_by"] == "api:ops"
    assert (stored["left_sku"], stored["right_sku"]) == ("P1", "R1")
    missing = api.post(
        "/api/matches/0000000000000000/label", json={"decision": "confirm"}, headers=AUTH
    )
    assert missing.status_code == 404
    invalid = api.post(f"/api/matches/{pair_id}/label", json={"decision": "maybe"}, headers=AUTH)
    assert invalid.status_code == 422
    audit = postgres_warehouse.query(
        "SELECT actor, action, outcome FROM audit_log WHERE action = 'match.label' ORDER BY id"
    ).rows()
    assert audit[0] == ("api:ops", "match.label", "ok")
    assert audit[1][2].startswith("rejected 404")


def test_config_changes_are_validated_and_audited(
    api: TestClient, postgres_warehouse: Warehouse
) -> None:
    changed = api.put(
        "/api/config",
        json={"min_margin_clp": 25_000, "enabled_retailers": ["falabella", "paris"]},
        headers=AUTH,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["min_margin_clp"] == 25_000
    assert api.get("/api/config", headers=AUTH).json()["enabled_retailers"] == [
        "falabella",
        "paris",
    ]
    for body in (
        {"min_margin_clp": -1},
        {"nope": 1},
        {},
        {"min_roi_pct": "many"},
        {"enabled_retailers": []},
    ):
        response = api.put("/api/config", json=body, headers=AUTH)
        assert response.status_code == 422, (body, response.text)
    nan = api.put(
        "/api/config",
        content=b'{"min_roi_pct": NaN}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    audit = postgres_warehouse.query(
        "SELECT actor, action, target, details FROM audit_log WHERE action = 'config.set' "
        "ORDER BY id"
    ).rows()
    assert [(a, t) for a, _, t, _ in audit] == [
        ("api:ops", "min_margin_clp"),
        ("api:ops", "enabled_retailers"),
    ]
    assert json.loads(audit[0][3]) == {"from": 10_000, "to": 25_000}


def two_stores(folder: Path) -> Any:
    """Sources of two stores no built-in list knows (and one whose source is disabled)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sources.yaml").write_text(
        f"""
version: 1
archive: {{root: {folder / "archive"}}}
retailers:
  - {{name: abt-exports, connector: file_drop, path: {folder}, retailer: abt}}
  - {{name: buy-exports, connector: file_drop, path: {folder}, retailer: buy}}
  - {{name: old, connector: file_drop, path: {folder}, retailer: lider, enabled: false}}
""",
        encoding="utf-8",
    )
    return resolve_sources(folder / "sources.yaml")


def test_enabled_retailers_are_checked_against_the_sources(
    app_factory: Any, tmp_path: Path, postgres_warehouse: Warehouse
) -> None:
    api = app_factory(sources=two_stores(tmp_path / "stores"))
    for unknown in (["abt", "walmart"], ["lider"]):
        rejected = api.put("/api/config", json={"enabled_retailers": unknown}, headers=AUTH)
        assert rejected.status_code == 422, rejected.text
        assert "sources.yaml provides: abt, buy" in rejected.json()["message"]
    accepted = api.put("/api/config", json={"enabled_retailers": ["buy"]}, headers=AUTH)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["enabled_retailers"] == ["buy"]


def test_the_retailers_the_sources_provide_are_listed_for_the_dashboard(
    app_factory: Any, tmp_path: Path
) -> None:
    api = app_factory(sources=two_stores(tmp_path / "stores"))
    listed = api.get("/api/retailers", headers=AUTH)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"retailers": ["abt", "buy"]}


def test_a_broken_sources_file_is_a_503_that_says_what_is_wrong(
    app_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "sources.yaml"
    broken.write_text("version: 1\nretailers:\n  - name: x\n    connector: nope\n")
    monkeypatch.setenv("ARBX_SOURCES", str(broken))
    api = app_factory()
    answer = api.get("/api/retailers", headers=AUTH)
    assert answer.status_code == 503, answer.text
    assert answer.json()["message"].startswith("sources.yaml cannot be used")


def test_money_settings_take_their_currency_neutral_names(
    api: TestClient, postgres_warehouse: Warehouse
) -> None:
    changed = api.put("/api/config", json={"min_margin": 2_500}, headers=AUTH)
    assert changed.status_code == 200, changed.text
    assert changed.json()["min_margin_clp"] == 2_500
    both = {"min_margin": 1, "min_margin_clp": 2}
    refused = api.put("/api/config", json=both, headers=AUTH)
    assert refused.status_code == 422
    assert "given twice" in refused.text


def test_kpis_and_prometheus_metrics(api: TestClient, postgres_warehouse: Warehouse) -> None:
    seed(postgres_warehouse, [opportunity(1), opportunity(5)])
    today, yesterday = NOW.date(), NOW.date() - timedelta(days=1)
    snapshot = [
        (yesterday, "retailer", "ripley", "volatility_pct", 9.0),  # an older day: not shown
        (today, "retailer", "ripley", "volatility_pct", 4.5),
        (today, "retailer", "ripley", "listings", 120.0),
        (today, "category", "Tecnología > TV", "critical_share", 0.25),
    ]
    postgres_warehouse.upsert(
        "intelligence_metrics",
        pl.DataFrame(
            snapshot,
            schema=["as_of_date", "scope", "scope_key", "metric", "value"],
            orient="row",
        ).with_columns(computed_at=pl.lit(NOW)),
        ["as_of_date", "scope", "scope_key", "metric"],
    )
    body = api.get("/api/metrics", headers=AUTH).json()
    assert body["opportunities"]["live"] == 2
    assert set(body["opportunities"]["by_kind"]) == {"spread", "glitch"}
    # The latest snapshot of the intelligence metrics, by scope, key and metric.
    assert body["intelligence"] == {
        "as_of_date": today.isoformat(),
        "metrics": {
            "category": {"Tecnología > TV": {"critical_share": 0.25}},
            "retailer": {"ripley": {"listings": 120.0, "volatility_pct": 4.5}},
        },
    }
    assert body["service"]["worker_pid"] == os.getpid()  # TestClient: this process
    text = api.get("/metrics").text
    assert "# TYPE arbx_http_requests_total counter" in text
    route = "/api/metrics"
    requests = metric_value(
        text, "arbx_http_requests_total", method="GET", route=route, status="200"
    )
    assert requests == 1
    latency = "arbx_http_request_duration_seconds_bucket"
    assert metric_value(text, latency, route=route, le="+Inf") == 1
    assert metric_value(text, "arbx_sse_clients") == 0


# --- rate limits, limits, headers ---------------------------------------------------------


def test_rate_limits_per_key_are_shared_by_workers_through_redis(app_factory: Any) -> None:
    first = app_factory(rate_limit_per_key=4)
    second = app_factory(rate_limit_per_key=4)
    codes = [c.get("/api/config", headers=AUTH).status_code for c in (first, second) * 2]
    assert codes == [200] * 4
    limited = second.get("/api/config", headers=AUTH)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 120
    assert limited.json()["error"] == "rate_limited"
    assert metric_value(second.get("/metrics").text, "arbx_rate_limited_total", scope="key") == 1


def test_rate_limits_per_client_address_cover_the_webhook_too(app_factory: Any) -> None:
    api = app_factory(rate_limit_per_client=3)
    codes = [api.post("/api/webhooks/prices", content=b"{}").status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    assert api.get("/health").status_code == 200  # health checks are never limited


def test_security_headers_cors_allow_list_and_body_limit(app_factory: Any) -> None:
    api = app_factory(cors_origins=("https://dash.example.cl",), max_body_bytes=2048)
    response = api.get("/api/config", headers=AUTH)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers  # plain HTTP
    tls = TestClient(api.app, base_url="https://testserver")
    assert "max-age" in tls.get("/health").headers["strict-transport-security"]

    preflight = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = api.options(
        "/api/opportunities", headers={"Origin": "https://dash.example.cl", **preflight}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example.cl"
    refused = api.options(
        "/api/opportunities", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers

    big = api.put("/api/config", content=b"{" + b" " * 4096 + b"}", headers=AUTH)
    assert big.status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(8):
            yield b" " * 512

    streamed = api.put("/api/config", content=chunks(), headers=AUTH)
    assert streamed.status_code == 413


def test_health_reports_each_component_in_detail_to_key_holders(
    app_factory: Any, tmp_path: Path
) -> None:
    api = app_factory(dagster=DagsterClient("http://127.0.0.1:9"))
    health = api.get("/health", headers=AUTH)
    assert health.status_code == 200
    assert health.headers["cache-control"] == "no-store"
    components = health.json()["components"]
    assert components["warehouse"]["state"] == "ok"
    assert components["warehouse"]["engine"] == "postgres"
    assert components["cache"] == {"state": "ok", "backend": "redis"}
    assert components["dagster"]["state"] == "unreachable"
    assert "http://127.0.0.1:9" in components["dagster"]["detail"]
    assert health.json()["status"] == "degraded"

    settings = service_settings(
        tmp_path / "down", postgres_url="postgresql://postgres:hunter2@127.0.0.1:1/none"
    )
    dead_redis = RedisCache("redis://127.0.0.1:1/0", timeout_seconds=0.2)
    with TestClient(create_app(settings, cache=dead_redis, dagster=StubDagster())) as down:  # type: ignore[arg-type]
        response = down.get("/health", headers=AUTH)
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "down"
        assert body["components"]["warehouse"]["state"] == "down"
        assert "127.0.0.1" in body["components"]["warehouse"]["detail"]
        assert body["components"]["cache"]["state"] == "down"
        assert "hunter2" not in response.text  # no secret in answers, even to key holders
        # Data endpoints say the warehouse is unavailable instead of failing.
        unavailable = down.get("/api/config", headers=AUTH)
        assert unavailable.status_code == 503 and "retry-after" in unavailable.headers


def test_health_tells_anonymous_callers_the_states_only(tmp_path: Path) -> None:
    """No host, user, database, URL or error text without a key; same status codes."""
    settings = service_settings(
        tmp_path, postgres_url="postgresql://warehouse_admin:hunter2@127.0.0.1:1/arbx_prod"
    )
    dead_redis = RedisCache("redis://127.0.0.1:1/0", timeout_seconds=0.2)
    dagster = DagsterClient("http://127.0.0.1:9")  # the internal webserver, unreachable
    with TestClient(create_app(settings, cache=dead_redis, dagster=dagster)) as down:  # type: ignore[arg-type]
        keyed = down.get("/health", headers=AUTH)
        for headers in ({}, {"Authorization": "Bearer wrong-key-0123456789abcdef"}):
            anonymous = down.get("/health", headers=headers)
            assert anonymous.status_code == keyed.status_code == 503
            assert anonymous.json() == {
                "status": "down",
                "components": {
                    "warehouse": {"state": "down"},
                    "cache": {"state": "down"},
                    "events": {"state": keyed.json()["components"]["events"]["state"]},
                    "dagster": {"state": "unreachable"},
                },
            }
            for private in ("127.0.0.1", "warehouse_admin", "arbx_prod", "hunter2", "postgres"):
                assert private not in anonymous.text, private
        assert len(keyed.json()["components"]["warehouse"]) > 1  # the key holder's detail
        # A wrong key is not refused here, but it is an authentication failure all the same.
        assert metric_value(down.get("/metrics").text, "arbx_auth_failures_total") == 1


def test_the_openapi_document_has_the_contract_paths(api: TestClient) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    for path in (
        "/health",
        "/api/opportunities",
        "/api/products/{product_id}",
        "/api/metrics",
        "/api/sse/updates",
        "/api/webhooks/prices",
        "/api/pipeline/runs",
        "/api/pipeline/runs/{run_id}/terminate",
        "/api/pipeline/status",
        "/api/config",
        "/api/matches/{pair_id}/label",
    ):
        assert path in paths, path
    assert "put" in paths["/api/config"]
    assert paths["/health"]["get"]["security"] == [{"HTTPBearer": []}, {}]  # a key, or none
    webhook = paths["/api/webhooks/prices"]["post"]
    assert webhook["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PriceWebhook"
    )


def test_every_route_documents_its_error_answers_with_the_error_body(api: TestClient) -> None:
    """What a client can get besides success is in the document, with the body it gets."""
    document = api.get("/openapi.json").json()
    error_body = {"$ref": "#/components/schemas/ErrorAnswer"}
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }

    def errors(method: str, path: str) -> dict[int, Any]:
        responses = operations[(method, path)]["responses"]
        return {int(code): answer for code, answer in responses.items() if int(code) >= 400}

    for (method, path), operation in operations.items():
        documented = errors(method, path)
        if path.startswith("/api/"):  # a key or signature, the rate limits, a dependency
            assert {401, 429, 503} <= set(documented), (method, path)
            assert "Retry-After" in documented[429]["headers"], (method, path)
        if operation.get("parameters") or operation.get("requestBody"):
            assert 422 in documented, (method, path)
        if operation.get("requestBody"):
            assert {400, 413} <= set(documented), (method, path)
        for code, answer in documented.items():
            if path != "/health":  # whose 503 is the health report itself
                assert answer["content"]["application/json"]["schema"] == error_body, code
    assert set(errors("POST", "/api/webhooks/prices")) == {400, 401, 409, 413, 415, 422, 429, 503}
    assert {404, 409, 502} <= set(errors("POST", "/api/pipeline/runs"))
    assert {404, 409, 502} <= set(errors("POST", "/api/pipeline/runs/{run_id}/terminate"))
    assert 400 in errors("GET", "/api/opportunities")  # a bad cursor
    assert 404 in errors("GET", "/api/products/{product_id}")
    assert 404 in errors("POST", "/api/matches/{pair_id}/label")
    assert set(errors("GET", "/api/metrics")) == {401, 429, 503}  # no input: no 422
    assert "HTTPValidationError" not in json.dumps(document)  # FastAPI's body is not sent

    # The answers really have the documented shape.
    schema = document["components"]["schemas"]["ErrorAnswer"]
    for answer in (
        api.get("/api/config"),  # no key
        api.get("/api/opportunities?limit=0", headers=AUTH),
        api.get("/api/products/nope", headers=AUTH),
    ):
        body = answer.json()
        assert set(schema["required"]) <= set(body) <= set(schema["properties"]), body
        assert body["error"] in schema["properties"]["error"]["enum"]
    assert body["error"] == "not_found"
    details = api.get("/api/opportunities?limit=0", headers=AUTH).json()["details"]
    assert details == [{"field": "query.limit", "message": details[0]["message"]}]


# --- embedded defaults ----------------------------------------------------------------------


def test_embedded_duckdb_locked_by_a_running_pipeline_answers_503(tmp_path: Path) -> None:
    settings = service_settings(tmp_path)
    cache = MemoryCache()
    with TestClient(create_app(settings, cache=cache, dagster=StubDagster())) as api:  # type: ignore[arg-type]
        assert api.get("/api/opportunities", headers=AUTH).status_code == 200
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                "print('ready', flush=True); time.sleep(30)",
                str(settings.base.duckdb_path),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
            busy = api.get("/api/opportunities?min_margin=1", headers=AUTH)
            assert busy.status_code == 503, busy.text
            assert busy.headers["retry-after"] == "2"
            assert "pipeline" in busy.json()["message"]
            # A page asked before keeps being served (marked stale) through the run.
            invalidate_opportunities(cache)
            stale = api.get("/api/opportunities", headers=AUTH)
            assert stale.status_code == 200 and stale.headers["x-cache"] == "stale"
            assert api.get("/health").json()["components"]["warehouse"]["state"] == "busy"
            assert (
                api.put("/api/config", json={"min_margin_clp": 1}, headers=AUTH).status_code == 503
            )
        finally:
            holder.kill()
            holder.wait()
        time.sleep(0.2)
        assert api.get("/api/opportunities?min_margin=1", headers=AUTH).status_code == 200


def test_the_sliding_window_limits_and_says_when_to_retry(cache: Cache) -> None:
    """Same behaviour in memory and in Redis (where every worker shares the counts)."""
    limiter = RateLimiter(cache, window_seconds=1)
    time.sleep(1.01 - time.time() % 1)  # clear of a window's end
    decisions = [limiter.hit("key", "ops", 5) for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert decisions[5].retry_after == 1
    assert limiter.hit("key", "other", 5).allowed is True  # per identity
    # Rejected requests are not counted: a client that waits as told gets in again.
    time.sleep(decisions[6].retry_after)
    assert limiter.hit("key", "ops", 5).allowed is True


def test_a_rate_limit_without_redis_raises_a_cache_error_for_callers_to_fail_open() -> None:
    limiter = RateLimiter(RedisCache("redis://127.0.0.1:1", timeout_seconds=0.2))
    with pytest.raises(CacheError, match="rate limiter"):
        limiter.hit("client", "10.0.0.1", 5)
