"""No secret leaves the service in its logs: a whole request cycle (health, reads with a
right and a wrong key, a setting change, signed, badly signed and replayed webhooks) on
PostgreSQL (a URL with a password) and Redis, with every logger at DEBUG and uvicorn's
access log on, never writes an API key (not even one a client put in the URL), the
webhook secret or the database password — nor do the answers or the audit log."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import Request, urlopen

import httpx
import pytest
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

PG_PASSWORD = "pg-Secret-4711"  # the server trusts local connections: it is sent, unused
WRONG_KEY = "wrong-key-but-secret-0123456789"
LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error")


class Recorder(logging.Handler):
    """Every record's message, arguments and traceback, as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name}: {record.getMessage()} {record.args!r}"
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder()
    previous = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield handler
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(handler)
        logging.getLogger(name).setLevel(previous[name])


def with_password(url: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(
        netloc=f"{parsed.username}:{PG_PASSWORD}@{parsed.hostname}:{parsed.port or 5432}"
    ).geturl()


def test_a_request_cycle_logs_no_secret(
    tmp_path: Path,
    postgres_url: str,
    postgres_warehouse: Warehouse,
    redis_cache: Cache,
    recorder: Recorder,
) -> None:
    sources = write_sources(tmp_path / "sources")
    app = create_app(
        service_settings(tmp_path, postgres_url=with_password(postgres_url)),
        cache=RedisCache(redis_cache.url, prefix=redis_cache.prefix),  # type: ignore[attr-defined]
        dagster=StubDagster(),  # type: ignore[arg-type]
        sources=resolve_sources(sources),
    )
    body = json.dumps({"observations": spread_observations(datetime.now(UTC))}).encode()
    signed = {"X-Arbx-Signature": sign(TEST_SECRET, body), "Content-Type": "application/json"}
    answers = []
    with serve_in_thread(app, all_logs=True) as server, httpx.Client(base_url=server.url) as http:
        ok = {"Authorization": f"Bearer {TEST_KEY}"}
        answers += [
            http.get("/health"),
            http.get("/api/opportunities", headers=ok),
            http.get("/api/opportunities", headers={"Authorization": f"Bearer {WRONG_KEY}"}),
            http.put("/api/config", json={"min_margin_clp": 12_000}, headers=ok),
            http.post("/api/webhooks/prices", content=body, headers=signed),
            http.post("/api/webhooks/prices", content=body, headers=signed),  # a replay
            http.post(
                "/api/webhooks/prices",
                content=body,
                headers={**signed, "X-Arbx-Signature": sign("not-the-secret", body)},
            ),
        ]
        # A client that put its key in the URL: the access log must not keep it. (Sent
        # with urllib: httpx would log the URL on the client side, in the test's own log.)
        misplaced = f"{server.url}/api/opportunities?limit=5&api_key={TEST_KEY}&{WRONG_KEY}"
        with urlopen(Request(misplaced, headers=ok), timeout=10) as answer:
            assert answer.status == 200
    assert [a.status_code for a in answers] == [200, 200, 401, 200, 202, 202, 401]

    logged = "\n".join(recorder.lines)
    assert "GET /api/opportunities" in logged  # the access log was on and captured
    assert "GET /api/opportunities?limit=5&api_key=[redacted]&[redacted] HTTP/1.1" in logged
    audit = postgres_warehouse.query("SELECT * FROM audit_log").write_csv()
    for secret in (TEST_KEY, WRONG_KEY, TEST_SECRET, PG_PASSWORD):
        assert secret not in logged, secret
        assert all(secret not in a.text for a in answers), secret
        assert secret not in audit, secret
