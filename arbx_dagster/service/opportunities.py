"""``/api/opportunities``: filtered, sorted, cursor-paginated, cached.

Pages are keyset-paginated (``WHERE (sort, id) > cursor``), so a page stays cheap however
deep it is and rows do not shift between pages as new ones land. Each page's JSON is
cached under a key carrying the opportunities *version*, which the pipeline bumps when it
publishes changes: invalidation is one ``INCR``, and stale pages simply stop being read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from arbx_dagster.domain.glitch_kinds import as_shown
from arbx_dagster.pipeline.announcements import OPPORTUNITIES_VERSION_KEY
from arbx_dagster.service.db import WarehouseBusy
from arbx_dagster.storage.cache import Cache, CacheError
from arbx_dagster.storage.event_log import jsonable
from arbx_dagster.storage.warehouse import Warehouse

SORT_COLUMNS: dict[str, str] = {
    "margin": "margin_clp",
    "roi": "roi_pct",
    "confidence": "confidence",
    "last_seen": "last_seen",
    "first_seen": "first_seen",
    "buy_price": "buy_price",
}
STATUS_FILTERS: dict[str, tuple[str, ...]] = {
    "live": ("new", "active"),
    "new": ("new",),
    "active": ("active",),
    "expired": ("expired",),
    "all": ("new", "active", "expired"),
}


LAST_GOOD_SECONDS = 24 * 3600


class BadCursor(ValueError):
    """The cursor was not produced by this endpoint for this sort order."""


@dataclass(frozen=True)
class OpportunityQuery:
    kind: str | None = None
    retailer: str | None = None
    sku: tuple[str, ...] | None = None
    category: str | None = None
    min_margin: int | None = None
    min_roi: float | None = None
    severity: str | None = None
    review: str | None = None
    status: str = "live"
    sort: str = "margin"
    order: str = "desc"
    limit: int = 50
    cursor: str | None = None

    def cache_key(self, version: str) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return f"api:opportunities:v{version}:{hashlib.sha1(text.encode()).hexdigest()}"


def encode_cursor(sort: str, value: Any, opportunity_id: str) -> str:
    if isinstance(value, datetime):
        value = {"t": value.isoformat()}
    raw = json.dumps([sort, value, opportunity_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        got_sort, value, opportunity_id = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError) as exc:
        raise BadCursor("cursor is not valid; use next_cursor from a previous page") from exc
    if got_sort != sort or not isinstance(opportunity_id, str):
        raise BadCursor("cursor belongs to another sort order; start again without cursor")
    if isinstance(value, dict) and isinstance(value.get("t"), str):
        try:
            value = datetime.fromisoformat(value["t"])
        except ValueError as exc:
            raise BadCursor("cursor is not valid") from exc
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    elif isinstance(value, bool) or not isinstance(value, int | float) or not _storable(value):
        raise BadCursor("cursor is not valid")
    if len(opportunity_id) > MAX_ID_CHARS:
        raise BadCursor("cursor is not valid")
    return value, opportunity_id


# What a cursor may carry: values the warehouse's columns can hold (BIGINT, finite DOUBLE)
# and an id no longer than a sha256 hex: anything else is refused before any query.
_BIGINT = 2**63
MAX_ID_CHARS = 64


def _storable(value: float) -> bool:
    if isinstance(value, int):
        return -_BIGINT <= value < _BIGINT
    return math.isfinite(value)


def build_sql(q: OpportunityQuery) -> tuple[str, list[Any]]:
    """The page's SQL and parameters (every value bound, never interpolated)."""
    where, params = [], []

    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    statuses = STATUS_FILTERS[q.status]
    where.append(f"status IN ({', '.join(bind(s) for s in statuses)})")
    if q.kind:
        where.append(f"kind = {bind(q.kind)}")
    if q.retailer:
        where.append(f"buy_retailer = {bind(q.retailer)}")
    if q.sku:
        where.append(f"buy_sku IN ({', '.join(bind(sku) for sku in sorted(set(q.sku)))})")
    if q.category:
        where.append(f"strpos(lower(coalesce(category, '')), {bind(q.category.lower())}) > 0")
    if q.min_margin is not None:
        where.append(f"margin_clp >= {bind(q.min_margin)}")
    if q.min_roi is not None:
        where.append(f"roi_pct >= {bind(q.min_roi)}")
    if q.severity:
        where.append(f"severity = {bind(q.severity)}")
    if q.review == "held":
        where.append("review IS NOT NULL")
    elif q.review == "clear":
        where.append("review IS NULL")
    column = SORT_COLUMNS[q.sort]
    if q.cursor:
        value, last_id = decode_cursor(q.cursor, q.sort)
        op = "<" if q.order == "desc" else ">"
        v1, v2, v3 = bind(value), bind(value), bind(last_id)
        where.append(f"({column} {op} {v1} OR ({column} = {v2} AND opportunity_id > {v3}))")
    direction = "DESC" if q.order == "desc" else "ASC"
    sql = (
        f"SELECT * FROM opportunities WHERE {' AND '.join(where)} "
        f"ORDER BY {column} {direction}, opportunity_id ASC LIMIT {bind(q.limit + 1)}"
    )
    return sql, params


def fetch_page(warehouse: Warehouse, q: OpportunityQuery) -> dict[str, Any]:
    sql, params = build_sql(q)
    found = warehouse.query(sql, params)
    more = found.height > q.limit
    found = found.head(q.limit)
    next_cursor = None
    if more and found.height:  # from the stored values the keyset compares with
        last = found.row(-1, named=True)
        next_cursor = encode_cursor(q.sort, last[SORT_COLUMNS[q.sort]], last["opportunity_id"])
    rows = as_shown(found).to_dicts() if found.height else []
    return {
        "items": jsonable(rows),
        "count": len(rows),
        "next_cursor": next_cursor,
        "sort": q.sort,
        "order": q.order,
        "generated_at": datetime.now(UTC).isoformat(),
    }


def cached(cache: Cache, q: OpportunityQuery) -> tuple[str | None, str | None]:
    """The cached page for ``q`` (or None) and the key it lives under (None: no cache)."""
    try:
        key = q.cache_key(cache.get(OPPORTUNITIES_VERSION_KEY) or "0")
        return cache.get(key), key
    except CacheError:
        return None, None


def fill(
    cache: Cache,
    ttl_seconds: int,
    q: OpportunityQuery,
    key: str | None,
    load: Callable[[], dict[str, Any]],
) -> tuple[str, str]:
    """Load the page and cache it; returns its JSON and ``miss`` — or, when the warehouse
    is busy (a pipeline run holding the embedded DuckDB file), the query's last good
    answer and ``stale`` instead of a 503, so the dashboard keeps working through a run."""
    last_good = q.cache_key("last")
    try:
        text = json.dumps(load(), separators=(",", ":"))
    except WarehouseBusy:
        try:
            stale = cache.get(last_good)
        except CacheError:
            stale = None
        if stale is None:
            raise
        return stale, "stale"
    if key is not None:
        with contextlib.suppress(CacheError):
            if ttl_seconds > 0:
                cache.set(key, text, ttl_seconds)
            cache.set(last_good, text, LAST_GOOD_SECONDS)
    return text, "miss"
