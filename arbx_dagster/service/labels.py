"""Users confirming or rejecting a match: the labelled pairs the matcher trains on next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from arbx_dagster.service.reads import PAIR_ID_SQL
from arbx_dagster.storage.event_log import jsonable
from arbx_dagster.storage.warehouse import Warehouse

PAIR_KEY = ["left_retailer", "left_sku", "right_retailer", "right_sku"]


def find_pair(warehouse: Warehouse, pair_id: str) -> dict[str, Any] | None:
    """The accepted match pair whose public id (``pair_id`` in product details) is given."""
    rows = warehouse.query(
        f"SELECT p.left_retailer, p.left_sku, p.right_retailer, p.right_sku, p.probability "
        f"FROM match_pairs AS p WHERE {PAIR_ID_SQL} = $1 LIMIT 1",
        [pair_id],
    )
    return rows.row(0, named=True) if rows.height else None


def label_pair(
    warehouse: Warehouse, pair: dict[str, Any], is_match: bool, actor: str, note: str | None
) -> dict[str, Any]:
    """Store the decision (replacing an earlier one on the same pair)."""
    row = {k: pair[k] for k in PAIR_KEY} | {
        "is_match": is_match,
        "labelled_by": actor,
        "labelled_at": datetime.now(UTC),
        "note": note,
    }
    warehouse.upsert(
        "match_labels", pl.DataFrame([row], schema_overrides={"note": pl.String}), PAIR_KEY
    )
    return jsonable(row)
