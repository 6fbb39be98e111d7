"""Read endpoints: opportunities, products, KPIs, retailers, current settings."""

from __future__ import annotations

import dataclasses
import os
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response

from arbx_dagster.service.auth import Principal
from arbx_dagster.service.errors import error_responses
from arbx_dagster.service.opportunities import (
    OpportunityQuery,
    cached,
    decode_cursor,
    fetch_page,
    fill,
)
from arbx_dagster.service.reads import kpis, product_detail
from arbx_dagster.service.routes.deps import require_key
from arbx_dagster.service.schemas import OpportunityFilters, OpportunityPage, RetailerList
from arbx_dagster.service.state import ServiceState, get_state
from arbx_dagster.storage.settings_store import read_thresholds

# Every route: a key (401), its rate limits (429), the warehouse or Redis (503).
router = APIRouter(prefix="/api", tags=["data"], responses=error_responses(401, 429, 503))


@router.get("/opportunities", response_model=OpportunityPage, responses=error_responses(400))
async def list_opportunities(
    _: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
    filters: Annotated[OpportunityFilters, Query()],
) -> Response:
    """Opportunities (live by default), filtered, sorted and paginated with ``cursor``."""
    chosen = filters.model_dump()
    q = OpportunityQuery(**chosen | {"sku": tuple(chosen["sku"]) if chosen["sku"] else None})
    if q.cursor:
        decode_cursor(q.cursor, q.sort)  # a bad cursor is a 400 before any lookup

    def load() -> dict[str, Any]:
        with st.db.read() as warehouse:
            return fetch_page(warehouse, q)

    # The hot path: a cached page is served without leaving the event loop unless the
    # cache itself does I/O (Redis); the warehouse is always read in a worker thread.
    if st.cache.backend != "memory":
        text, key = await to_thread.run_sync(cached, st.cache, q)
    else:
        text, key = cached(st.cache, q)
    source = "hit"
    if text is None:
        ttl = st.settings.opportunities_cache_seconds
        text, source = await to_thread.run_sync(fill, st.cache, ttl, q, key, load)
    headers = {"X-Cache": source}
    if source == "stale":  # the warehouse is busy with a run: the last good answer
        headers["Warning"] = '110 - "Response is stale"'
    return Response(text, media_type="application/json", headers=headers)


@router.get("/products/{product_id}", responses=error_responses(404))
def get_product(
    _: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
    product_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]+$", max_length=128)],
    days: Annotated[int, Query(ge=1, le=730)] = 90,
) -> dict[str, Any]:
    """A canonical product: its listings per retailer with their daily price history."""
    with st.db.read() as warehouse:
        detail = product_detail(warehouse, product_id, days)
    if detail is None:
        raise HTTPException(404, f"no product {product_id}")
    return detail


@router.get("/metrics")
def get_metrics(
    _: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
) -> dict[str, Any]:
    """KPIs and the latest intelligence metrics, plus the service's counters (all workers)
    and which worker answered."""
    with st.db.read() as warehouse:
        body = kpis(warehouse)
    body["service"] = {
        "worker_pid": os.getpid(),  # which worker answered
        "sse_clients": st.broadcaster.clients,  # on this worker (/metrics has the sum)
        "audit_records_waiting": st.auditor.pending,  # on this worker
        "requests": st.metrics.counter_total("arbx_http_requests_total"),
    }
    return body


@router.get("/retailers", response_model=RetailerList)
def list_retailers(
    _: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
) -> dict[str, Any]:
    """The retailers the enabled sources of sources.yaml provide (the dashboard's filter)."""
    return {"retailers": st.sources.provided_retailers()}


@router.get("/config")
def get_config(
    _: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
) -> dict[str, Any]:
    """The business settings in force (stored values over the shipped defaults)."""
    with st.db.read() as warehouse:
        return dataclasses.asdict(read_thresholds(warehouse))
