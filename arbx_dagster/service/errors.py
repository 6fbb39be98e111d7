"""Every failure as a JSON answer with a clear status: bad input is a 4xx, a busy or
unreachable dependency a 503 with ``Retry-After``, and only a bug is a 500 (logged
without request headers or bodies, so no secret ever reaches the log). Each route documents
the error statuses it can answer, with this body (:class:`ErrorAnswer`), through
:func:`error_responses`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from arbx_dagster.ingestion.sources_file import SourcesError
from arbx_dagster.service.dagster_api import DagsterError, DagsterUnavailable
from arbx_dagster.service.db import WarehouseBusy, WarehouseUnavailable
from arbx_dagster.service.opportunities import BadCursor
from arbx_dagster.service.run_control import LaunchRejected
from arbx_dagster.service.webhooks import SignatureError, WebhookRejected
from arbx_dagster.storage.cache import CacheError

log = logging.getLogger(__name__)

_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    502: "bad_gateway",
    503: "unavailable",
}


class FieldProblem(BaseModel):
    field: str = Field(description="Where: e.g. body.observations.0.price_offer")
    message: str


class ErrorAnswer(BaseModel):
    """The body of every error answer (what :func:`error_response` and the middleware send)."""

    error: str = Field(
        description="A stable name for the status",
        json_schema_extra={"enum": sorted({*_NAMES.values(), "error"})},
    )
    message: str = Field(description="What is wrong, for a person")
    details: list[FieldProblem] | None = Field(None, description="422: every invalid field")
    run_id: str | None = Field(None, description="409 on a launch: the run in the way")


_WHY = {
    400: "Malformed request (a body that is not JSON, a bad cursor)",
    401: "Missing or invalid credentials",
    404: "Not found",
    409: "Conflicts with work in progress",
    413: "Request body too large",
    415: "Body not in a supported encoding",
    422: "Invalid input (`details` names every invalid field)",
    429: "Rate limit exceeded: retry after `Retry-After` seconds",
    502: "Dagster answered with an error",
    503: "A dependency is down or busy: retry after `Retry-After` seconds",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}


def error_responses(
    *statuses: int, why: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting error statuses with :class:`ErrorAnswer`, so every
    router states what it can answer in one line, with the body it really sends (``why``
    gives a route's own description of a status)."""
    return {
        status: {
            "model": ErrorAnswer,
            "description": (why or {}).get(status, _WHY[status]),
            **({"headers": _RETRY_AFTER} if status in (429, 503) else {}),
        }
        for status in statuses
    }


def document_validation_errors(schema: dict[str, Any]) -> None:
    """FastAPI documents a 422 on every operation that validates input, with its own
    ``{"detail": ...}`` body; this service answers those with :class:`ErrorAnswer`."""
    for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
        response = operation.get("responses", {}).get("422")
        content = (response or {}).get("content", {}).get("application/json", {})
        if content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
            response["description"] = _WHY[422]
            content["schema"] = {"$ref": "#/components/schemas/ErrorAnswer"}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    models = ErrorAnswer.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(models.pop("$defs", {}))
    components["ErrorAnswer"] = models


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"error": _NAMES.get(status, "error"), "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        details.append({"field": ".".join(loc), "message": error.get("msg", "invalid")})
    return details[:50]


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        first = details[0] if details else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return error_response(422, message, details=details)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(BadCursor)
    async def _cursor(request: Request, exc: BadCursor) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(SignatureError)
    async def _signature(request: Request, exc: SignatureError) -> JSONResponse:
        return error_response(401, str(exc))

    @app.exception_handler(WebhookRejected)
    async def _webhook(request: Request, exc: WebhookRejected) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status in (409, 503) else None
        return error_response(exc.status, str(exc), headers=headers)

    @app.exception_handler(LaunchRejected)
    async def _launch(request: Request, exc: LaunchRejected) -> JSONResponse:
        extra = {"run_id": exc.run_id} if exc.run_id else {}
        return error_response(exc.status, str(exc), **extra)

    @app.exception_handler(WarehouseBusy)
    async def _busy(request: Request, exc: WarehouseBusy) -> JSONResponse:
        return error_response(503, str(exc), headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(WarehouseUnavailable)
    async def _warehouse_down(request: Request, exc: WarehouseUnavailable) -> JSONResponse:
        log.error("warehouse unavailable: %s", exc)
        return error_response(503, "the warehouse is unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(SourcesError)
    async def _sources_broken(request: Request, exc: SourcesError) -> JSONResponse:
        log.error("sources.yaml cannot be used: %s", exc)
        return error_response(503, f"sources.yaml cannot be used: {exc}")

    @app.exception_handler(CacheError)
    async def _cache_down(request: Request, exc: CacheError) -> JSONResponse:
        log.error("cache unavailable: %s", exc)
        return error_response(503, "Redis is unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(DagsterUnavailable)
    async def _dagster_down(request: Request, exc: DagsterUnavailable) -> JSONResponse:
        return error_response(
            503, f"the Dagster webserver is unreachable: {exc}", headers={"Retry-After": "5"}
        )

    @app.exception_handler(DagsterError)
    async def _dagster_error(request: Request, exc: DagsterError) -> JSONResponse:
        return error_response(502, f"Dagster answered with an error: {exc}")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error")
