"""Signed price webhooks against real Redis: valid, wrong, stale, tampered and replayed
signatures, idempotency across workers (a body lands once, whatever its key), UTF-8 only,
strict validation, and durable landing for the sensor."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from service_harness import (
    TEST_SECRET,
    StubDagster,
    metric_value,
    module_redis_cache,
    service_settings,
    write_sources,
)

from arbx_dagster.ingestion.connectors import FileDropConnector
from arbx_dagster.ingestion.webhook_signature import sign
from arbx_dagster.resources.sources import resolve_sources
from arbx_dagster.service.app import create_app
from arbx_dagster.service.webhooks import SignatureError, verify_signature
from arbx_dagster.storage.cache import Cache, RedisCache

pytestmark = pytest.mark.services

NOW = datetime.now(UTC).replace(microsecond=0)


def observations(n: int = 2, retailer: str = "ripley", **overrides: Any) -> list[dict[str, Any]]:
    return [
        {
            "retailer": retailer,
            "sku": f"{retailer}-{i}",
            "name": f"Smart TV Samsung {50 + i} pulgadas",
            "brand": "Samsung",
            "price_list": 499_990,
            "price_offer": 399_990 + i,
            "in_stock": True,
            "image_urls": [f"https://img.cl/{i}_1.jpg", f"https://img.cl/{i}_2.jpg"],
            # Seconds apart: a batch spanning midnight in Santiago lands as two days' files.
            "observed_at": (NOW - timedelta(seconds=i)).isoformat(),
            **overrides,
        }
        for i in range(n)
    ]


def body_of(payload: Any) -> bytes:
    return json.dumps(payload).encode()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return write_sources(tmp_path / "sources").parent / "landing"


@pytest.fixture
def apps(tmp_path: Path, redis_cache: Cache, landing: Path) -> Iterator[Any]:
    """Workers sharing one Redis and one landing folder."""
    sources = resolve_sources(landing.parent / "sources.yaml")
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = service_settings(tmp_path / "home", **overrides)
        cache = RedisCache(redis_cache.url, prefix=redis_cache.prefix)  # type: ignore[attr-defined]
        client = TestClient(
            create_app(settings, cache=cache, dagster=StubDagster(), sources=sources)  # type: ignore[arg-type]
        )
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    """One worker for the cases that must all be refused (nothing may land)."""
    tmp = tmp_path_factory.mktemp("webhooks")
    sources_path = write_sources(tmp / "sources")
    cache = module_redis_cache("webhooks")
    app = create_app(
        service_settings(tmp / "home"),
        cache=cache,
        dagster=StubDagster(),  # type: ignore[arg-type]
        sources=resolve_sources(sources_path),
    )
    with TestClient(app) as client:
        yield client, sources_path.parent / "landing"
    cache.delete_matching("*")
    cache.close()


def post(
    client: TestClient,
    body: bytes,
    *,
    secret: str = TEST_SECRET,
    timestamp: int | None = None,
    key: str | None = None,
    signature: str | None = None,
) -> Any:
    headers = {
        "Content-Type": "application/json",
        "X-Arbx-Signature": signature or sign(secret, body, timestamp, key),
    }
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/api/webhooks/prices", content=body, headers=headers)


def landed(landing: Path) -> list[Path]:
    return sorted(p for p in landing.rglob("*.jsonl"))


def landed_rows(landing: Path) -> int:
    """Observations waiting for the file-drop sensor: what would reach the warehouse."""
    return sum(len(path.read_text().splitlines()) for path in landed(landing))


def test_the_v2_signature_is_hmac_sha256_over_timestamp_key_and_body() -> None:
    body, t = b'{"observations": []}', 1_700_000_000
    keyed = hmac.new(b"s3cret", b"v2\n1700000000\nbatch-42\n" + body, hashlib.sha256)
    assert sign("s3cret", body, t, "batch-42") == f"t={t},v2={keyed.hexdigest()}"
    unkeyed = hmac.new(b"s3cret", b"v2\n1700000000\n\n" + body, hashlib.sha256)
    assert sign("s3cret", body, t) == f"t={t},v2={unkeyed.hexdigest()}"
    header = sign("s3cret", body, t, "batch-42")
    assert verify_signature("s3cret", header, body, now=t + 300, idempotency_key="batch-42") == t
    # A sender rotating secrets may send two signatures; one matching is enough.
    rotated = f"t={t}, v2={'0' * 64}, v2={keyed.hexdigest()}"
    assert verify_signature("s3cret", rotated, body, now=t, idempotency_key="batch-42") == t
    # Every signed part is bound: another key, no key, another body or time is refused.
    for key, signed_body, stamp in [
        ("batch-43", body, t),
        (None, body, t),
        ("batch-42", body + b" ", t),
        ("batch-42", body, t + 1),
    ]:
        forged = header.replace(f"t={t}", f"t={stamp}")
        with pytest.raises(SignatureError, match="does not match"):
            verify_signature("s3cret", forged, signed_body, now=t, idempotency_key=key)


def test_a_legacy_v1_signature_is_taken_only_without_an_idempotency_key() -> None:
    body, t = b'{"observations": []}', 1_700_000_000
    v1 = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body, t, scheme="v1") == f"t={t},v1={v1}"
    assert verify_signature("s3cret", f"t={t},v1={v1}", body, now=t) == t
    # v1 does not cover the key: with one, a captured request could pass for a new delivery.
    with pytest.raises(SignatureError, match="does not cover the Idempotency-Key"):
        verify_signature("s3cret", f"t={t},v1={v1}", body, now=t, idempotency_key="batch-42")
    with pytest.raises(ValueError, match="use v2"):
        sign("s3cret", body, t, "batch-42", scheme="v1")


def test_a_signed_batch_is_landed_for_the_sensor_and_answered_202(apps: Any, landing: Path) -> None:
    api = apps()
    payload = {"source": "scraper-santiago", "observations": observations(3)}
    response = post(api, body_of(payload))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "accepted" and answer["observations"] == 3
    assert response.headers["idempotent-replayed"] == "false"
    [path] = landed(landing)
    assert answer["files"] == [path.relative_to(landing).as_posix()]
    assert path.parent.name == "ripley"  # the retailer folder the sensor reads
    assert not list(landing.rglob("*.part"))
    # What the file-drop connector will make of it.
    source = resolve_sources(landing.parent / "sources.yaml").get("exports")
    batch = FileDropConnector(source).read(path)  # type: ignore[arg-type]
    assert batch.frame["sku"].to_list() == ["ripley-0", "ripley-1", "ripley-2"]
    assert batch.frame["price_offer"].to_list() == [399_990, 399_991, 399_992]
    assert batch.frame["retailer"].unique().to_list() == ["ripley"]
    assert batch.frame["parse_error"].null_count() == 3
    assert json.loads(batch.frame["image_urls"][0]) == [
        "https://img.cl/0_1.jpg",
        "https://img.cl/0_2.jpg",
    ]


@pytest.mark.parametrize(
    ("case", "make_header"),
    [
        ("wrong secret", lambda body: sign("not-the-secret", body)),
        ("tampered body", lambda body: sign(TEST_SECRET, body + b" ")),
        ("stale", lambda body: sign(TEST_SECRET, body, int(time.time()) - 360)),
        ("from the future", lambda body: sign(TEST_SECRET, body, int(time.time()) + 360)),
        ("malformed", lambda body: "sha256=" + "0" * 64),
        ("missing v1", lambda body: f"t={int(time.time())}"),
    ],
)
def test_a_bad_or_stale_signature_is_refused_and_lands_nothing(
    shared: tuple[TestClient, Path], case: str, make_header: Any
) -> None:
    api, landing = shared
    counted = "arbx_webhook_deliveries_total"
    before = metric_value(api.get("/metrics").text, counted, outcome="bad_signature") or 0
    body = body_of({"observations": observations()})
    response = post(api, body, signature=make_header(body))
    assert response.status_code == 401, (case, response.text)
    assert response.json()["error"] == "unauthorized"
    assert landed(landing) == []
    unsigned = api.post("/api/webhooks/prices", content=body)
    assert unsigned.status_code == 401
    assert "missing X-Arbx-Signature" in unsigned.json()["message"]
    after = metric_value(api.get("/metrics").text, counted, outcome="bad_signature")
    assert after == before + 2  # the badly signed and the unsigned delivery


def test_a_replay_returns_the_first_answer_and_lands_nothing_twice(
    apps: Any, landing: Path, redis_cache: Cache
) -> None:
    first_worker, second_worker = apps(), apps()
    body = body_of({"observations": observations(2) + observations(1, retailer="paris")})
    first = post(first_worker, body)
    assert first.status_code == 202
    assert len(landed(landing)) == 2  # one file per retailer (and market day)
    mtimes = [p.stat().st_mtime_ns for p in landed(landing)]

    again = post(first_worker, body)  # the same signed request, replayed
    other = post(second_worker, body, timestamp=int(time.time()))  # re-signed, other worker
    for replay in (again, other):
        assert replay.status_code == 202
        assert replay.json() == first.json()
        assert replay.headers["idempotent-replayed"] == "true"
    # Redis forgot (flush, failover): the receipt next to the data still answers.
    redis_cache.delete_matching("webhook:*")
    assert post(second_worker, body).json() == first.json()
    assert [p.stat().st_mtime_ns for p in landed(landing)] == mtimes

    # An Idempotency-Key names the delivery; reusing it for other data is an error.
    keyed = post(first_worker, body_of({"observations": observations(1)}), key="batch-42")
    assert keyed.status_code == 202 and keyed.json()["idempotency_key"] == "batch-42"
    reused = post(first_worker, body_of({"observations": observations(2)}), key="batch-42")
    assert reused.status_code == 422
    assert "different payload" in reused.json()["message"]
    malformed = post(first_worker, body, key="bad key!")  # the documented header pattern
    assert malformed.status_code == 422
    assert "idempotency-key" in malformed.json()["message"]
    metrics = first_worker.get("/metrics").text
    assert metric_value(metrics, "arbx_webhook_deliveries_total", outcome="replayed") == 1


def test_a_captured_request_resent_under_a_new_key_is_refused_and_lands_nothing(
    apps: Any, landing: Path
) -> None:
    api = apps()
    body = body_of({"observations": observations(3)})
    captured = sign(TEST_SECRET, body, idempotency_key="batch-1")
    assert post(api, body, key="batch-1", signature=captured).status_code == 202
    files, rows = landed(landing), landed_rows(landing)
    assert rows == 3

    # The attacker holds the signed request, not the secret: whatever key it puts on it
    # (a new one, none), the signature no longer matches.
    for key in ("batch-2", "batch-1-again", None):
        replay = post(api, body, key=key, signature=captured)
        assert replay.status_code == 401, (key, replay.text)
        assert "does not match" in replay.json()["message"]
    # A legacy v1 request (no key) captured and re-sent with a key is refused as well.
    legacy_body = body_of({"observations": observations(1, retailer="paris")})
    legacy = sign(TEST_SECRET, legacy_body, scheme="v1")
    assert post(api, legacy_body, signature=legacy).status_code == 202
    resent = post(api, legacy_body, key="batch-3", signature=legacy)
    assert resent.status_code == 401
    assert "does not cover the Idempotency-Key" in resent.json()["message"]
    assert len(landed(landing)) == len(files) + 1 and landed_rows(landing) == rows + 1
    metrics = api.get("/metrics").text
    assert 'arbx_webhook_deliveries_total{outcome="bad_signature"} 4' in metrics


def test_headers_tampered_after_signing_are_refused(shared: tuple[TestClient, Path]) -> None:
    api, landing = shared
    body = body_of({"observations": observations(1)})
    t = int(time.time())
    signed = sign(TEST_SECRET, body, t, "batch-7")
    for key, header in [
        ("batch-8", signed),  # the key changed
        ("batch-7", signed.replace(f"t={t}", f"t={t - 60}")),  # the timestamp changed
        ("batch-7", signed.replace("v2=", "v1=")),  # passed off as the other scheme
    ]:
        response = post(api, body, key=key, signature=header)
        assert response.status_code == 401, (key, header, response.text)
    assert landed(landing) == []


def test_a_body_lands_once_whatever_key_it_comes_with(apps: Any, landing: Path) -> None:
    """A sender that retries under a fresh key (or without one) gets the first answer."""
    first_worker, second_worker = apps(), apps()
    body = body_of({"observations": observations(2)})
    first = post(first_worker, body, key="run-1")
    assert first.status_code == 202 and first.json()["idempotency_key"] == "run-1"
    files = landed(landing)
    for worker, key in [(second_worker, "run-2"), (first_worker, None), (second_worker, "run-1")]:
        again = post(worker, body, key=key, timestamp=int(time.time()))  # re-signed
        assert again.status_code == 202, (key, again.text)
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
    assert landed(landing) == files and landed_rows(landing) == 2


@pytest.mark.parametrize("keys", ["none", "one each"])
def test_concurrent_duplicates_land_once(apps: Any, landing: Path, keys: str) -> None:
    """Eight copies at once on two workers, without a key or each under its own."""
    workers = [apps(), apps()]
    body = body_of({"observations": observations(50)})

    def send(i: int) -> Any:
        return post(workers[i % 2], body, key=f"copy-{i}" if keys == "one each" else None)

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(send, range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {202, 409} and 202 in statuses
    accepted = {json.dumps(r.json(), sort_keys=True) for r in responses if r.status_code == 202}
    assert len(accepted) == 1  # every 202 carries the first answer
    assert all(r.headers.get("retry-after") == "1" for r in responses if r.status_code == 409)
    assert len(landed(landing)) == 1


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        (b"not json", 400, "not JSON"),
        (b'{"observations": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", 400, "nested too deeply"),
        ({"observations": []}, 422, "observations"),
        ({"observations": observations(1, unknown_field=1)}, 422, "unknown_field"),
        ({"observations": observations(1, price_offer=-5)}, 422, "price_offer"),
        ({"observations": observations(1, price_offer=1.5)}, 422, "price_offer"),
        ({"observations": observations(1, price_offer="$1.990")}, 422, "price_offer"),
        ({"observations": observations(1, observed_at="2026-11-23T12:00:00")}, 422, "timezone"),
        ({"observations": observations(1, observed_at="2099-01-01T00:00:00Z")}, 422, "future"),
        ({"observations": observations(1, name="TV\x00")}, 422, "name"),
        ({"observations": observations(1, currency="USD")}, 422, "currency"),
        ({"observations": observations(1, image_urls="https://img.cl/a.jpg")}, 422, "image_urls"),
        ({"observations": observations(1, image_urls=["ftp://img.cl/a.jpg"])}, 422, "image_urls"),
        ({"observations": observations(1, retailer="lider")}, 422, "lider"),
        ({"observations": observations(1, retailer="Ripley!")}, 422, "retailer"),
        ([1, 2, 3], 422, "PriceWebhook"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_lands_nothing(
    shared: tuple[TestClient, Path], payload: Any, status: int, needle: str
) -> None:
    api, landing = shared
    body = payload if isinstance(payload, bytes) else body_of(payload)
    response = post(api, body)
    assert response.status_code == status, response.text
    assert needle.lower() in response.text.lower(), response.text
    assert landed(landing) == []


UTF8_BATCH = {"observations": observations(1, name="Televisión Samsung 55 pulgadas")}


@pytest.mark.parametrize(
    ("case", "body", "content_type", "needle"),
    [
        ("UTF-16 with a BOM", json.dumps(UTF8_BATCH).encode("utf-16"), None, "UTF-16"),
        ("UTF-16 without a BOM", json.dumps(UTF8_BATCH).encode("utf-16-le"), None, "NUL"),
        ("UTF-32 with a BOM", json.dumps(UTF8_BATCH).encode("utf-32"), None, "UTF-32"),
        (
            "Latin-1",
            json.dumps(UTF8_BATCH, ensure_ascii=False).encode("latin-1"),
            None,
            "not valid UTF-8",
        ),
        ("another charset", body_of(UTF8_BATCH), "application/json; charset=iso-8859-1", "8859"),
    ],
)
def test_a_body_that_is_not_utf8_is_a_415_and_lands_nothing(
    shared: tuple[TestClient, Path], case: str, body: bytes, content_type: str | None, needle: str
) -> None:
    api, landing = shared
    headers = {"X-Arbx-Signature": sign(TEST_SECRET, body)}
    if content_type:
        headers["Content-Type"] = content_type
    response = api.post("/api/webhooks/prices", content=body, headers=headers)
    assert response.status_code == 415, (case, response.text)
    assert response.json()["error"] == "unsupported_media_type"
    assert "send UTF-8 JSON" in response.json()["message"]
    assert needle in response.json()["message"], response.text
    assert landed(landing) == []


def test_utf8_is_accepted_with_its_charset_or_byte_order_mark(apps: Any, landing: Path) -> None:
    api = apps()
    text = json.dumps(UTF8_BATCH, ensure_ascii=False)
    # Another title (not a text replace: "55" may be in the observation's time too).
    other = json.dumps(
        {"observations": observations(1, name="Televisión Samsung 65 pulgadas")},
        ensure_ascii=False,
    )
    for body, content_type in [
        (text.encode(), "application/json; charset=UTF-8"),
        (other.encode("utf-8-sig"), "application/json"),
    ]:
        response = api.post(
            "/api/webhooks/prices",
            content=body,
            headers={"X-Arbx-Signature": sign(TEST_SECRET, body), "Content-Type": content_type},
        )
        assert response.status_code == 202, response.text
    names = [
        json.loads(line)["name"] for p in landed(landing) for line in p.read_text().splitlines()
    ]
    assert sorted(names) == ["Televisión Samsung 55 pulgadas", "Televisión Samsung 65 pulgadas"]


def test_size_limits_and_disabled_webhooks(apps: Any, landing: Path) -> None:
    small = apps(max_webhook_observations=3)
    too_many = post(small, body_of({"observations": observations(4)}))
    assert too_many.status_code == 413
    tiny = apps(max_body_bytes=1024)
    big = post(tiny, body_of({"observations": observations(40)}))
    assert big.status_code == 413
    disabled = apps(webhook_secret=None)
    assert post(disabled, body_of({"observations": observations(1)})).status_code == 503
    assert landed(landing) == []
