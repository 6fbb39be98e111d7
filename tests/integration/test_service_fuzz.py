"""Fuzzing the OpenAPI document with schemathesis (valid and invalid inputs, on
PostgreSQL + Redis): whatever comes in, the answer is never a 5xx, and it is one the
document promises — a documented status, its content type, headers and body schema (so
every error answer is documented, with the body the service really sends). The webhook is
fuzzed a second time with every generated body validly signed, so what lies behind the
signature (JSON parsing, validation, landing, idempotency) is fuzzed too.

Bounded: a few dozen examples per operation. The event stream never ends, so it is left
to the SSE tests; Dagster is stubbed (the pipeline tests use a real webserver).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NotSet
from schemathesis.errors import FailureGroup
from service_harness import (
    TEST_KEY,
    TEST_SECRET,
    StubDagster,
    module_redis_cache,
    service_settings,
    write_sources,
)

from arbx_dagster.ingestion.webhook_signature import sign
from arbx_dagster.resources.sources import resolve_sources
from arbx_dagster.service.app import create_app
from arbx_dagster.storage.databases import throwaway_database

pytestmark = [pytest.mark.services, pytest.mark.slow]

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
EXAMPLES = 15  # per operation and mode: ~300 requests in all
CONFIG = SchemathesisConfig()
CONFORMANCE = [
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def nonconformance(case: schemathesis.Case, response: Any, headers: dict[str, str]) -> str | None:
    """What in ``response`` the OpenAPI document does not promise, or None."""
    try:
        case.validate_response(response, checks=CONFORMANCE, headers=headers)
    except FailureGroup as group:
        return "; ".join(f"{f.title}: {f.message}" for f in group.exceptions)  # type: ignore[attr-defined]
    return None


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Any]:
    """One app for every case, on a database of its own: fuzzed settings (PUT /api/config)
    must not leak into other tests."""
    tmp = tmp_path_factory.mktemp("fuzz")
    cache = module_redis_cache("fuzz")
    with throwaway_database(postgres_url) as database:
        app = create_app(
            service_settings(
                tmp, postgres_url=database, rate_limit_per_key=0, rate_limit_per_client=0
            ),
            cache=cache,
            dagster=StubDagster(),  # type: ignore[arg-type]
            sources=resolve_sources(write_sources(tmp / "sources")),
        )
        with TestClient(app):  # runs migrations and the background tails
            yield app
    cache.delete_matching("*")
    cache.close()


def operations(app: Any) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    return [result.ok() for result in schema.exclude(path="/api/sse/updates").get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_the_api_fail(fuzzed_app: Any, mode: GenerationMode) -> None:
    failures: list[str] = []
    statuses: dict[int, int] = {}
    tested = []
    for operation in operations(fuzzed_app):
        tested.append(operation.label)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=AUTH)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            broken = nonconformance(case, response, AUTH)
            if response.status_code >= 500 or broken:
                failures.append(
                    f"{case.method} {case.formatted_path} query={case.query} "
                    f"body={str(case.body)[:200]} -> {response.status_code} "
                    f"{response.text[:200]} {broken or ''}"
                )

        try:
            fuzz()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no inputs)
    assert len(tested) >= 11, tested
    assert not failures, "\n".join(failures[:10])
    assert statuses.get(200, 0) + statuses.get(201, 0) > 0 or mode is GenerationMode.NEGATIVE
    print(f"{mode.value}: {sum(statuses.values())} requests, statuses {sorted(statuses.items())}")


def signed_delivery(case: schemathesis.Case, plausible: bool) -> tuple[bytes, dict[str, str]]:
    """The generated body as the bytes that will be sent, and a valid signature for them:
        what a sender holding the secret does (with the generated Idempotency-Key, which
    is signed too), so fuzzing gets past the signature.
        ``plausible`` puts every observation an hour ago at a retailer the landing serves (the
        two checks a schema cannot express), so that the rest of the body is what is fuzzed."""
    if plausible and isinstance(case.body, dict):
        an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        for observation in case.body.get("observations") or []:
            if isinstance(observation, dict):
                observation.update(observed_at=an_hour_ago, retailer="ripley")
    if isinstance(case.body, NotSet):
        raw = b""
    elif isinstance(case.body, bytes):
        raw = case.body
    else:
        raw = json.dumps(case.body).encode()
    case.headers = {
        k: v for k, v in (case.headers or {}).items() if k.lower() != "x-arbx-signature"
    }
    key = next((v for k, v in case.headers.items() if k.lower() == "idempotency-key"), None)
    signature = sign(TEST_SECRET, raw, idempotency_key=key)  # the key is signed too
    return raw, {"X-Arbx-Signature": signature, "Content-Type": "application/json"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_signed_webhook_deliveries_are_validated_without_a_5xx(
    fuzzed_app: Any, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app, config=CONFIG)
    operation = schema["/api/webhooks/prices"]["POST"]
    statuses: dict[int, int] = {}
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=4 * EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        raw, headers = signed_delivery(case, plausible=mode is GenerationMode.POSITIVE)
        response = case.call(headers=headers, data=raw)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        broken = nonconformance(case, response, headers)
        if response.status_code >= 500 or response.status_code == 401 or broken:
            failures.append(
                f"{raw[:300]!r} -> {response.status_code} {response.text[:200]} {broken or ''}"
            )

    fuzz()
    # Never a 5xx, always a documented answer; the signature always holds.
    assert not failures, "\n".join(failures[:10])
    if mode is GenerationMode.POSITIVE:
        assert statuses.get(202, 0) > 0, statuses  # valid deliveries land
    else:
        assert sum(n for code, n in statuses.items() if 400 <= code < 500) > 0, statuses
    print(f"signed webhook, {mode.value}: statuses {sorted(statuses.items())}")
