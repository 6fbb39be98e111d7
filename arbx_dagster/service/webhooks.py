r"""Price observations pushed by scrapers running elsewhere: verified, validated, landed once.

Contract: ``X-Arbx-Signature: t=<unix seconds>,v2=<hex>`` where ``<hex>`` is
HMAC-SHA256(``ARBX_WEBHOOK_SECRET``, ``"v2\n<t>\n<Idempotency-Key or nothing>\n" + raw
body``): the timestamp, the key and the body are all signed, so none of them can be changed
by whoever captured a request. A wrong signature or a timestamp more than 300 s away is
refused. The older ``v1=`` scheme (``"<t>." + body``, the key not covered) is still taken
from a sender that sends no ``Idempotency-Key``. The body must be UTF-8 JSON.

An accepted batch is written as JSON lines into the landing folder of a ``file_drop``
source (``<folder>/<retailer>/webhook-<day>-<id>.jsonl``, written as ``.part`` then renamed,
so the file-drop sensor only ever sees complete files) and answered 202; the sensor then
ingests it like any other export.

Idempotency: a delivery is named by its ``Idempotency-Key`` (when sent) *and* by the SHA-256
of its body. Its first answer is kept under both names (in Redis and as receipt files next
to the data); a delivery matching either gets that answer back and lands nothing, so a body
lands once whatever key it comes with. File names derive from the body, so even a crash
between landing and the receipt cannot land a batch under two names.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import hmac
import json
import os
import re
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from arbx_dagster.domain.history import day_of
from arbx_dagster.ingestion.sources import FileDropSource, SourcesConfig
from arbx_dagster.ingestion.webhook_files import webhook_file_name
from arbx_dagster.ingestion.webhook_signature import mac as _mac
from arbx_dagster.ingestion.webhook_signature import signed_string
from arbx_dagster.service.config import SIGNATURE_TOLERANCE_SECONDS
from arbx_dagster.storage.cache import Cache, CacheError

_HEADER = re.compile(r"^\s*t=(\d{1,12})\s*((?:,\s*v[12]=[0-9a-fA-F]{64}\s*)+)$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")
RECEIPT_TTL_SECONDS = 7 * 24 * 3600
MAX_AGE = timedelta(days=90)
MAX_FUTURE = timedelta(minutes=5)

SAFE_TEXT = r"^[^\x00-\x1f\x7f]*$"  # no control characters (PostgreSQL refuses NUL)
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1, max_length=1000, pattern=SAFE_TEXT)]
Url = Annotated[str, Field(max_length=2000, pattern=r"^https?://[^\x00-\x20\x7f]+$")]


def _whole_pesos(value: Any) -> Any:
    """JSON calls 299990.0 an integer too; "299990", true and 299990.5 stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Clp = Annotated[int, Field(ge=0, le=10_000_000_000, strict=True), BeforeValidator(_whole_pesos)]


class SignatureError(ValueError):
    """The delivery is not signed with the shared secret (or the signature is stale)."""


class WebhookRejected(ValueError):
    """A well-signed delivery that cannot be accepted (4xx, with the reason)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WebhookObservation(BaseModel):
    """One price observation, with the record fields of ``sources.yaml`` mappings."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    retailer: Name
    sku: Annotated[str, Field(min_length=1, max_length=128, pattern=SAFE_TEXT)]
    observed_at: AwareDatetime
    name: Text | None = None
    price_list: Clp | None = None
    price_offer: Clp | None = None
    price_card: Clp | None = None
    currency: Annotated[str, Field(pattern=r"^CLP$")] = "CLP"
    in_stock: bool | None = None
    stock_qty: Annotated[int, Field(ge=0, le=10_000_000)] | None = None
    url: Url | None = None
    image_urls: Annotated[list[Url], Field(max_length=50)] | None = None
    product_id: Text | None = None
    variant: Text | None = None
    brand: Text | None = None
    model: Text | None = None
    ean: Annotated[str, Field(pattern=r"^\d{8,14}$")] | None = None
    category: Text | None = None
    card_program: Text | None = None
    seller: Text | None = None
    seller_id: Text | None = None
    is_first_party: bool | None = None
    condition: Text | None = None
    listing_rank: Annotated[int, Field(ge=1, le=100_000)] | None = None

    @field_validator("observed_at")
    @classmethod
    def _recent(cls, value: datetime) -> datetime:
        now = datetime.now(UTC)
        if value > now + MAX_FUTURE:
            raise ValueError("observed_at is in the future")
        if value < now - MAX_AGE:
            raise ValueError("observed_at is more than 90 days old (backfill from exports)")
        return value.astimezone(UTC)


class PriceWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Name | None = Field(None, description="The scraper that sent the batch")
    observations: list[WebhookObservation] = Field(min_length=1)


class WebhookAnswer(BaseModel):
    """The 202 answer, the same to a delivery and to every replay of it."""

    status: Literal["accepted"]
    idempotency_key: str = Field(description="The first delivery's key, else sha256:<body>")
    observations: int
    files: list[str] = Field(description="Landed files, relative to the landing folder")
    source: str | None
    landing: str = Field(description="The file_drop source that received the batch")
    received_at: str


# --- signature ------------------------------------------------------------------------------


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    now: float | None = None,
    idempotency_key: str | None = None,
) -> int:
    """Return the signed timestamp, or raise :class:`SignatureError` saying why not.

    Several values are accepted (a sender rotating secrets signs with both). A ``v1`` value
    only counts without an Idempotency-Key: it does not cover the key, so a captured request
    re-sent under another key must not pass for a new delivery.
    """
    if not header:
        raise SignatureError("missing X-Arbx-Signature header")
    match = _HEADER.match(header)
    if not match:
        raise SignatureError("X-Arbx-Signature must look like t=<unix seconds>,v2=<64 hex>")
    timestamp = int(match[1])
    candidates = [v.strip().lower().split("=", 1) for v in match[2].split(",") if v.strip()]
    expected = {
        "v2": _mac(secret, signed_string(timestamp, idempotency_key, body)),
        "v1": _mac(secret, f"{timestamp}.".encode() + body),
    }
    valid = {"v1": False, "v2": False}
    for scheme, candidate in candidates:  # compare every candidate: no early exit
        valid[scheme] |= hmac.compare_digest(expected[scheme], candidate)
    if not valid["v2"]:
        if valid["v1"] and idempotency_key is not None:
            raise SignatureError(
                "a v1 signature does not cover the Idempotency-Key: sign with v2 "
                "(HMAC-SHA256 over 'v2\\n<t>\\n<Idempotency-Key>\\n<body>')"
            )
        if not valid["v1"]:
            raise SignatureError("signature does not match the timestamp, Idempotency-Key and body")
    now = time.time() if now is None else now
    if abs(now - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise SignatureError(
            f"signature timestamp is more than {SIGNATURE_TOLERANCE_SECONDS} s off"
        )
    return timestamp


# --- encoding -------------------------------------------------------------------------------

SEND_UTF8 = "send UTF-8 JSON (Content-Type: application/json; charset=utf-8)"
_FOREIGN_BOMS = (  # UTF-32 first: its little-endian mark starts like UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def utf8_text(body: bytes, content_type: str | None) -> str:
    """The body as text, or a 415 naming what is wrong: JSON parsing would otherwise guess
    UTF-16 or UTF-32 from the bytes and land what the sender did not mean to send."""
    charset = _charset(content_type)
    if charset is not None and charset not in ("utf-8", "utf8"):
        raise WebhookRejected(415, f"charset {charset!r} is not supported: {SEND_UTF8}")
    for bom, name in _FOREIGN_BOMS:
        if body.startswith(bom):
            raise WebhookRejected(415, f"the body is {name} (byte order mark): {SEND_UTF8}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookRejected(
            415, f"the body is not valid UTF-8 (byte {exc.start}): {SEND_UTF8}"
        ) from None
    if "\x00" in text:  # JSON never holds a raw NUL; UTF-16/32 text without a mark does
        raise WebhookRejected(415, f"the body holds NUL bytes (UTF-16 or UTF-32?): {SEND_UTF8}")
    return text.removeprefix("\ufeff")  # a UTF-8 byte order mark is tolerated (RFC 8259)


def _charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None


# --- landing --------------------------------------------------------------------------------


def landing_source(sources: SourcesConfig, name: str | None) -> FileDropSource:
    """The ``file_drop`` source whose landing folder receives webhook batches."""
    candidates = [s for s in sources.enabled() if isinstance(s, FileDropSource)]
    if name:
        candidates = [s for s in candidates if s.name == name]
    if not candidates:
        wanted = f"named {name!r} " if name else ""
        raise WebhookRejected(
            503, f"no enabled file_drop source {wanted}in sources.yaml to land webhook batches"
        )
    return candidates[0]


def refused_retailers(
    sources: SourcesConfig, source: FileDropSource, retailers: set[str]
) -> list[str]:
    """Retailers this landing cannot place: any but its fixed or declared ones; a landing
    whose folders name its retailers takes those and any other retailer sources.yaml
    provides (a new store is configured — a folder, a source — never created by a sender)."""
    if source.retailer is not None or source.known_retailers is not None:
        return sorted(retailers - set(source.retailers))
    return sorted(retailers - {*source.retailers, *sources.provided_retailers()})


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomically(path: Path, data: bytes, partial_suffix: str = ".part") -> None:
    """Write ``path`` durably and make it appear complete at once (rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + partial_suffix)
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def land(source: FileDropSource, delivery: str, batch: PriceWebhook) -> list[str]:
    """Write the batch as one JSONL file per (retailer, market day); returns their paths
    relative to the landing folder."""
    root = Path(source.path).expanduser().resolve()
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for obs in batch.observations:
        record = obs.model_dump(mode="json", exclude_none=True)
        groups[(obs.retailer, day_of(obs.observed_at).isoformat())].append(
            json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        )
    partial = source.partial_suffixes[0] if source.partial_suffixes else ".part"
    written = []
    for (retailer, day), lines in sorted(groups.items()):
        folder = root if source.retailer else root / retailer
        path = folder / webhook_file_name(day, delivery)
        write_atomically(path, ("\n".join(lines) + "\n").encode("utf-8"), partial)
        written.append(path.relative_to(root).as_posix())
    return written


# --- idempotency ----------------------------------------------------------------------------


class Receipts:
    """First answers per delivery: Redis (shared, fast) backed by receipt files (durable)."""

    def __init__(self, cache: Cache, folder: Path) -> None:
        self.cache = cache
        self.folder = folder

    def _file(self, delivery: str) -> Path:
        return self.folder / f"{delivery}.json"

    def get(self, delivery: str) -> dict[str, Any] | None:
        with contextlib.suppress(CacheError):
            cached = self.cache.get(f"webhook:receipt:{delivery}")
            if cached is not None:
                return json.loads(cached)
        try:
            receipt = json.loads(self._file(delivery).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        with contextlib.suppress(CacheError):
            self.cache.set(f"webhook:receipt:{delivery}", json.dumps(receipt), RECEIPT_TTL_SECONDS)
        return receipt

    def claim(self, delivery: str) -> bool:
        return self.cache.add(f"webhook:claim:{delivery}", "1", ttl_seconds=60)

    def release(self, delivery: str) -> None:
        with contextlib.suppress(CacheError):
            self.cache.delete(f"webhook:claim:{delivery}")

    def save(self, delivery: str, receipt: dict[str, Any]) -> None:
        text = json.dumps(receipt, separators=(",", ":"))
        write_atomically(self._file(delivery), text.encode("utf-8"), ".tmp")
        with contextlib.suppress(CacheError):
            self.cache.set(f"webhook:receipt:{delivery}", text, RECEIPT_TTL_SECONDS)


def delivery_id(idempotency_key: str | None, body: bytes) -> tuple[str, str]:
    """(public key, storage id): the client's key, else the body's hash."""
    if idempotency_key is not None:
        if not IDEMPOTENCY_KEY.match(idempotency_key):
            raise WebhookRejected(400, "Idempotency-Key must be 1-200 of A-Z a-z 0-9 . _ : -")
        public = idempotency_key
    else:
        public = "sha256:" + hashlib.sha256(body).hexdigest()
    return public, hashlib.sha256(public.encode()).hexdigest()


def accept(
    cache: Cache,
    sources: SourcesConfig,
    source_name: str | None,
    idempotency_key: str | None,
    body: bytes,
    batch_loader: Any,
) -> tuple[dict[str, Any], bool]:
    """Land a verified delivery once. Returns (answer, replayed).

    The delivery is known by its key and by its body: a key seen before answers its first
    answer (or 422 for other data under it), and so does a body seen before under any key
    or none, so a captured body re-sent under a new key cannot land twice.
    ``batch_loader(source)`` validates the body into a :class:`PriceWebhook` (it raises
    the API's 422 on bad input); it is only called for a first delivery.
    """
    source = landing_source(sources, source_name)
    public, delivery = delivery_id(idempotency_key, body)
    _, by_body = delivery_id(None, body)
    identities = list(dict.fromkeys([delivery, by_body]))  # the key's first: it can conflict
    body_hash = hashlib.sha256(body).hexdigest()
    receipts = Receipts(cache, Path(source.path).expanduser().resolve() / ".receipts")

    def first_answer() -> dict[str, Any] | None:
        for identity in identities:
            receipt = receipts.get(identity)
            if receipt is None:
                continue
            if receipt.get("body_sha256") != body_hash:
                raise WebhookRejected(
                    422, "Idempotency-Key was already used for a different payload"
                )
            return receipt["answer"]
        return None

    known = first_answer()
    if known is not None:
        return known, True
    batch: PriceWebhook = batch_loader(source)
    unknown = refused_retailers(sources, source, {o.retailer for o in batch.observations})
    if unknown:
        raise WebhookRejected(
            422,
            f"unknown retailer(s) {unknown}; sources.yaml provides "
            f"{sources.provided_retailers()} (a new retailer needs its folder or source)",
        )
    claimed: list[str] = []
    try:
        for identity in identities:
            if not receipts.claim(identity):
                raise WebhookRejected(
                    409, "the same delivery is being processed; retry in a second"
                )
            claimed.append(identity)
        known = first_answer()  # finished by another worker since the first look
        if known is not None:
            return known, True
        files = land(source, by_body, batch)
        answer = {
            "status": "accepted",
            "idempotency_key": public,
            "observations": len(batch.observations),
            "files": files,
            "source": batch.source,
            "landing": source.name,
            "received_at": datetime.now(UTC).isoformat(),
        }
        for identity in reversed(identities):  # the body's first: the one no key gets past
            receipts.save(identity, {"answer": answer, "body_sha256": body_hash})
        return answer, False
    finally:
        for identity in claimed:
            receipts.release(identity)
