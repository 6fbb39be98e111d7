"""The ASGI app: ``create_app()`` wires settings, stores, background tails and routes.

One app per worker process. Workers share state only through the warehouse, Redis and
the Dagster webserver, so ``uvicorn --workers N`` (or several hosts) serve the same API.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from arbx_dagster.ingestion.sources import SourcesConfig
from arbx_dagster.pipeline.announcements import invalidate_opportunities
from arbx_dagster.service import errors
from arbx_dagster.service.audit import Auditor
from arbx_dagster.service.auth import KeyRing
from arbx_dagster.service.config import ServiceSettings
from arbx_dagster.service.dagster_api import DagsterClient
from arbx_dagster.service.db import Database
from arbx_dagster.service.logs import redact_uvicorn_logs
from arbx_dagster.service.metrics import Metrics
from arbx_dagster.service.middleware import (
    BodyLimitMiddleware,
    ClientRateLimitMiddleware,
    MetricsMiddleware,
    SecurityHeadersMiddleware,
)
from arbx_dagster.service.ratelimit import RateLimiter
from arbx_dagster.service.routes import control, data, stream, system, webhooks
from arbx_dagster.service.routes.system import STATIC
from arbx_dagster.service.run_control import RunWatcher
from arbx_dagster.service.sse import Broadcaster
from arbx_dagster.service.state import ServiceState
from arbx_dagster.service.webhooks import PriceWebhook
from arbx_dagster.storage.cache import Cache, RedisCache, open_cache
from arbx_dagster.storage.event_log import Event, EventLog, event_log_for

log = logging.getLogger(__name__)

API_VERSION = "1.0.0"


def build_state(
    settings: ServiceSettings,
    *,
    cache: Cache | None = None,
    dagster: DagsterClient | None = None,
    event_log: EventLog | None = None,
    sources: SourcesConfig | None = None,
) -> ServiceState:
    base = settings.base
    cache = cache or open_cache(base.redis_url, prefix=settings.redis_prefix)
    db = Database(base, pool_size=settings.warehouse_pool_size)
    log_ = event_log or event_log_for(cache, base.home)
    metrics = Metrics()
    dagster = dagster or DagsterClient(settings.dagster_url)

    def on_event(event: Event) -> None:
        # Without Redis the pipeline cannot bump the shared version: do it here.
        if event.type.startswith("opportunit") and not isinstance(cache, RedisCache):
            invalidate_opportunities(cache)

    broadcaster = Broadcaster(log_, on_event=on_event)
    st = ServiceState(
        settings=settings,
        db=db,
        cache=cache,
        events=log_,
        broadcaster=broadcaster,
        keys=KeyRing(settings.api_keys, db),
        limiter=RateLimiter(cache),
        auditor=Auditor(db),
        metrics=metrics,
        dagster=dagster,
        watcher=RunWatcher(dagster, cache, log_, settings.run_watch_seconds),
        _sources=sources,
    )
    metrics.gauge("arbx_sse_clients", lambda: broadcaster.clients, "Connected SSE clients.")
    metrics.gauge("arbx_audit_records_waiting", lambda: st.auditor.pending, "Audit backlog.")
    return st


def _housekeeper(st: ServiceState) -> threading.Thread:
    """Off the request path: write waiting audit records, re-read API keys, migrate, and
    publish this worker's gauges (which other workers' scrapes read)."""

    def loop() -> None:
        ticks = 0
        while not st._stop.wait(1):
            ticks += 1
            if st.auditor.pending:
                st.auditor.flush()
            if st.keys.due():
                st.keys.refresh()
            if not st.db.migrated and ticks % 30 == 0:  # started during a run: try again
                st.db.ensure_migrated()
            st.metrics.refresh_gauges()

    thread = threading.Thread(target=loop, name="arbx-housekeeper", daemon=True)
    thread.start()
    return thread


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the webhook body (parsed by hand, after the signature) and
    the service's own error body on validation errors."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    webhook = PriceWebhook.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(webhook.pop("$defs", {}))
    components["PriceWebhook"] = webhook
    errors.document_validation_errors(schema)
    app.openapi_schema = schema
    return schema


def create_app(
    settings: ServiceSettings | None = None,
    *,
    cache: Cache | None = None,
    dagster: DagsterClient | None = None,
    event_log: EventLog | None = None,
    sources: SourcesConfig | None = None,
) -> FastAPI:
    """The API. Dependencies can be injected (tests, benchmarks); by default they come
    from the environment (``ServiceSettings.from_env()``)."""
    settings = settings or ServiceSettings.from_env()
    redact_uvicorn_logs()  # no query string (a key put in a URL) reaches the access log
    st = build_state(settings, cache=cache, dagster=dagster, event_log=event_log, sources=sources)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        st.db.ensure_migrated()
        st.broadcaster.start()
        st.watcher.start()
        st.keys.refresh()
        flusher = _housekeeper(st)
        if not settings.api_keys and not st.keys.configured:
            log.warning("no API key configured (ARBX_API_KEYS): every /api/* call will be 401")
        try:
            yield
        finally:
            st._stop.set()
            st.watcher.stop()
            st.broadcaster.stop()
            flusher.join(timeout=2)
            st.auditor.flush()
            st.db.close()
            st.dagster.close()
            st.metrics.close()

    app = FastAPI(
        title="ArbX service API",
        version=API_VERSION,
        description=(
            "Live opportunities, products and metrics; signed price webhooks; pipeline "
            "control through Dagster. Every /api/* route except the webhook needs "
            "`Authorization: Bearer <key>`."
        ),
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads scripts from a CDN, which the CSP refuses
        redoc_url=None,
    )
    app.state.arbx = st
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    errors.install(app)
    for router in (system.router, data.router, control.router, webhooks.router, stream.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # Outermost last: metrics see every answer, CORS headers reach rate-limited ones.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        ClientRateLimitMiddleware,
        limiter=st.limiter,
        limit=settings.rate_limit_per_client,
        metrics=st.metrics,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "Last-Event-ID",
                "Idempotency-Key",
                "X-Arbx-Signature",
            ],
            expose_headers=["Retry-After", "X-Cache", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=st.metrics)
    return app
