"""Labelled pairs: users confirming or rejecting that two listings are the same product.

Stored in ``match_labels`` (``sql/0002_labelled_pairs.sql``), one row per pair with the
alphabetically smaller retailer on the left (the orientation of ``match_pairs``); a new
decision on a pair replaces the old one and every decision, accepted or refused, is
written to ``audit_log``. ``read_labels`` returns them in the shape the matcher's trainer
reads (``training_pairs.LABEL_SCHEMA`` plus who and when).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from arbx_dagster.domain.schema import UTC_DATETIME
from arbx_dagster.storage.settings_store import audit
from arbx_dagster.storage.warehouse import Warehouse

TABLE = "match_labels"
PAIR_KEY = ("left_retailer", "left_sku", "right_retailer", "right_sku")
LABELLED_PAIR_SCHEMA: dict[str, pl.DataType] = {
    "left_retailer": pl.String(),
    "left_sku": pl.String(),
    "right_retailer": pl.String(),
    "right_sku": pl.String(),
    "is_match": pl.Boolean(),
    "labelled_by": pl.String(),
    "labelled_at": UTC_DATETIME,
    "note": pl.String(),
}


class LabelError(ValueError):
    """The pair cannot be labelled (same retailer, unknown listing, malformed key)."""


@dataclass(frozen=True)
class ListingKey:
    retailer: str
    sku: str

    def __str__(self) -> str:
        return f"{self.retailer}:{self.sku}"


def parse_listing_key(text: str) -> ListingKey:
    """``'falabella:12345'`` -> ``ListingKey('falabella', '12345')`` (the sku may hold ':')."""
    retailer, sep, sku = text.strip().partition(":")
    if not sep or not retailer.strip() or not sku.strip():
        raise LabelError(f"expected RETAILER:SKU, got {text!r}")
    return ListingKey(retailer.strip().lower(), sku.strip())


def _oriented(a: ListingKey, b: ListingKey) -> tuple[ListingKey, ListingKey]:
    if a.retailer == b.retailer:
        raise LabelError(f"{a} and {b} are at the same retailer: only cross-retailer pairs match")
    return (a, b) if a.retailer < b.retailer else (b, a)


def _missing_listings(warehouse: Warehouse, keys: list[ListingKey]) -> list[ListingKey]:
    missing = []
    for key in keys:
        found = warehouse.scalar(
            "SELECT count(*) FROM listings WHERE retailer = $1 AND sku = $2",
            [key.retailer, key.sku],
        )
        if not found:
            missing.append(key)
    return missing


def label_pair(
    warehouse: Warehouse,
    left: ListingKey,
    right: ListingKey,
    *,
    is_match: bool,
    actor: str,
    note: str | None = None,
    require_listings: bool = True,
    now: datetime | None = None,
) -> dict[str, object]:
    """Record that ``left`` and ``right`` are (``is_match``) or are not the same product.

    The pair is stored with the smaller retailer on the left whatever order it is given
    in. With ``require_listings`` both listings must exist in ``listings`` (catches typos).
    Returns the stored row plus ``previous`` (the earlier decision, or None).
    """
    target = f"{left}|{right}"
    try:
        first, second = _oriented(left, right)
        if require_listings:
            missing = _missing_listings(warehouse, [first, second])
            if missing:
                raise LabelError("unknown listing " + ", ".join(str(m) for m in missing))
    except LabelError as exc:
        audit(
            warehouse,
            actor,
            "matches.label",
            target,
            {"is_match": is_match},
            outcome=f"rejected: {exc}",
        )
        raise
    row = {
        "left_retailer": first.retailer,
        "left_sku": first.sku,
        "right_retailer": second.retailer,
        "right_sku": second.sku,
        "is_match": bool(is_match),
        "labelled_by": actor,
        "labelled_at": now or datetime.now(UTC),
        "note": note,
    }
    with warehouse.transaction():
        previous = warehouse.scalar(
            f"SELECT is_match FROM {TABLE} WHERE left_retailer = $1 AND left_sku = $2 "
            "AND right_retailer = $3 AND right_sku = $4",
            [first.retailer, first.sku, second.retailer, second.sku],
        )
        frame = pl.DataFrame([row], schema=LABELLED_PAIR_SCHEMA)
        warehouse.upsert(TABLE, frame, PAIR_KEY)
        audit(
            warehouse,
            actor,
            "matches.label",
            f"{first}|{second}",
            {"is_match": bool(is_match), "previous": previous, "note": note},
        )
    return row | {"previous": previous}


def read_labels(warehouse: Warehouse) -> pl.DataFrame:
    """Every labelled pair (``LABELLED_PAIR_SCHEMA``), newest first."""
    if not warehouse.table_exists(TABLE):
        return pl.DataFrame(schema=LABELLED_PAIR_SCHEMA)
    frame = warehouse.query(
        f"SELECT {', '.join(LABELLED_PAIR_SCHEMA)} FROM {TABLE} "
        "ORDER BY labelled_at DESC, left_retailer, left_sku, right_retailer, right_sku"
    )
    if frame.height == 0:
        return pl.DataFrame(schema=LABELLED_PAIR_SCHEMA)
    return frame.select(pl.col(name).cast(dtype) for name, dtype in LABELLED_PAIR_SCHEMA.items())
