"""``POST /api/webhooks/prices``: signed by the sender instead of an API key."""

from __future__ import annotations

import json
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from arbx_dagster.service import webhooks
from arbx_dagster.service.audit import AuditRecord
from arbx_dagster.service.errors import error_responses
from arbx_dagster.service.state import ServiceState, get_state

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])

SIGNATURE_DOC = (
    "`t=<unix seconds>,v2=<hex>`: HMAC-SHA256 with ARBX_WEBHOOK_SECRET over "
    "`v2\\n<t>\\n<Idempotency-Key, or nothing>\\n<raw body>` (see the README)"
)
KEY_DOC = (
    "Names the delivery (a retry with the same key gets the first answer). Signed: "
    "it is part of the v2 signature"
)


def parse_batch(text: str, limit: int) -> webhooks.PriceWebhook:
    """The batch in a UTF-8 body: 400 if it is not JSON, 422 if it is not a batch."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise webhooks.WebhookRejected(400, f"body is not JSON: {exc}") from exc
    except RecursionError:  # thousands of nested brackets: no batch is shaped like that
        raise webhooks.WebhookRejected(400, "body is nested too deeply to be a batch") from None
    try:
        batch = webhooks.PriceWebhook.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False, include_context=False)) from exc
    if len(batch.observations) > limit:
        raise webhooks.WebhookRejected(413, f"at most {limit} observations per delivery")
    return batch


def handle_delivery(
    st: ServiceState,
    signature: str | None,
    key: str | None,
    raw: bytes,
    content_type: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Verify, validate and land one delivery, counting and auditing the outcome."""
    secret = st.settings.webhook_secret
    if not secret:
        st.metrics.inc("arbx_webhook_deliveries_total", outcome="disabled")
        raise webhooks.WebhookRejected(503, "webhooks are disabled (set ARBX_WEBHOOK_SECRET)")
    try:
        webhooks.verify_signature(secret, signature, raw, idempotency_key=key)
    except webhooks.SignatureError:
        st.metrics.inc("arbx_webhook_deliveries_total", outcome="bad_signature")
        raise
    limit = st.settings.max_webhook_observations
    sources = st.sources  # a broken sources.yaml: 503 saying which line (errors.py)
    try:
        text = webhooks.utf8_text(raw, content_type)
        answer, replayed = webhooks.accept(
            st.cache,
            sources,
            st.settings.webhook_source,
            key,
            raw,
            lambda source: parse_batch(text, limit),
        )
    except (webhooks.WebhookRejected, RequestValidationError) as exc:
        st.metrics.inc("arbx_webhook_deliveries_total", outcome="rejected")
        status = getattr(exc, "status", 422)
        st.auditor.record_rejection("webhook", "webhook.prices", {"status": status}, str(exc)[:300])
        raise
    st.metrics.inc("arbx_webhook_deliveries_total", outcome="replayed" if replayed else "accepted")
    if not replayed:
        st.auditor.record(
            AuditRecord(
                actor=f"webhook:{answer.get('source') or 'unnamed'}",
                action="webhook.prices",
                target=answer["landing"],
                details={k: answer[k] for k in ("idempotency_key", "observations", "files")},
            )
        )
    return answer, replayed


@router.post(
    "/prices",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/PriceWebhook"}}
            },
        }
    },
    responses={
        202: {
            "model": webhooks.WebhookAnswer,
            "description": "Landed for ingestion (or, with `Idempotent-Replayed: true`, the "
            "first answer to the same key or body)",
        },
        **error_responses(
            400,
            401,
            409,
            413,
            415,
            422,
            429,
            503,
            why={
                400: "The body is not JSON, or is nested too deeply",
                401: "Missing, wrong or stale signature",
                409: "The same delivery is being processed: retry after `Retry-After`",
                413: "Too many observations or bytes",
                415: "The body is not UTF-8 JSON",
                422: "Not a valid batch, or an Idempotency-Key reused for other data",
                503: "Webhooks disabled, no landing source, or Redis down",
            },
        ),
    },
)
async def receive_prices(
    request: Request,
    st: Annotated[ServiceState, Depends(get_state)],
    x_arbx_signature: Annotated[str | None, Header(description=SIGNATURE_DOC)] = None,
    idempotency_key: Annotated[
        str | None,
        Header(max_length=200, pattern=webhooks.IDEMPOTENCY_KEY.pattern, description=KEY_DOC),
    ] = None,
) -> JSONResponse:
    """Price observations from an external scraper, landed for the file-drop sensor."""
    raw = await request.body()
    answer, replayed = await to_thread.run_sync(
        handle_delivery,
        st,
        x_arbx_signature,
        idempotency_key,
        raw,
        request.headers.get("content-type"),
    )
    headers = {"Idempotent-Replayed": "true" if replayed else "false"}
    return JSONResponse(answer, status_code=202, headers=headers)
