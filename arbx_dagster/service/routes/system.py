"""Health, Prometheus metrics and the dashboard (no API key needed: not under ``/api``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response

from arbx_dagster.service import health
from arbx_dagster.service.auth import Principal
from arbx_dagster.service.metrics import CONTENT_TYPE
from arbx_dagster.service.routes.deps import optional_key
from arbx_dagster.service.schemas import HealthAnswer
from arbx_dagster.service.state import ServiceState, get_state

STATIC = Path(__file__).resolve().parents[1] / "static"
router = APIRouter(tags=["system"])


@router.get(
    "/health",
    response_model=HealthAnswer,
    responses={503: {"model": HealthAnswer, "description": "A required component is down"}},
    # FastAPI lists the bearer key; {} adds "or none": the key is optional here
    openapi_extra={"security": [{}]},
)
def get_health(
    st: Annotated[ServiceState, Depends(get_state)],
    caller: Annotated[Principal | None, Depends(optional_key)],
) -> JSONResponse:
    """Liveness and each component's state, for anyone; with an API key (optional, never
    a 401), each component's detail too, which can name internal hosts and users."""
    status, body = health.check(st)
    if caller is None:
        body = health.public(body)
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


@router.get("/metrics", response_class=PlainTextResponse)
def prometheus(st: Annotated[ServiceState, Depends(get_state)]) -> Response:
    """Requests, latencies, SSE clients, webhook outcomes, rate-limit rejections: of the
    whole service, whichever worker answers."""
    return Response(st.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/", include_in_schema=False)
def dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")
