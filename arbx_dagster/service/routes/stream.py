"""``GET /api/sse/updates``: the live event stream (Server-Sent Events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from sse_starlette import EventSourceResponse

from arbx_dagster.service.auth import Principal
from arbx_dagster.service.errors import error_responses
from arbx_dagster.service.routes.deps import require_key
from arbx_dagster.service.sse import event_response
from arbx_dagster.service.state import ServiceState, get_state

router = APIRouter(
    prefix="/api/sse",
    tags=["events"],
    responses=error_responses(401, 429, 503, why={503: "Too many live connections"}),
)

EVENT_ID = r"^\d{1,16}-\d{1,10}$"


@router.get(
    "/updates",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "An event stream"}},
)
async def updates(
    _: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
    last_event_id: Annotated[
        str | None, Header(max_length=40, description="Resume after this event id")
    ] = None,
    since: Annotated[
        str | None,
        Query(max_length=40, pattern=EVENT_ID, description="Same as Last-Event-ID"),
    ] = None,
) -> EventSourceResponse:
    """New/changed/expired opportunities and run status changes, with heartbeats."""
    if st.broadcaster.clients >= st.settings.sse_max_clients:
        raise HTTPException(503, "too many live connections", headers={"Retry-After": "5"})
    st.metrics.inc("arbx_sse_connections_total")
    return event_response(st.broadcaster, last_event_id or since, st.settings.sse_heartbeat_seconds)
