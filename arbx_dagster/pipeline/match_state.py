"""The match state in the warehouse: what an incremental match starts from and writes.

A full match replaces ``product_matches``, ``match_pairs``, ``canonical_products``,
``match_identities``, ``match_blocks`` and ``match_stop_keys`` whole; an incremental one
replaces only the rows of the listings it matched again (``IncrementalMatch.replaced``) and
of the products they had. Every match run is logged in ``match_runs`` (mode, scorer
version, counts, seconds): the log says when the last full match ran and with which model.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.matching.blocks import BLOCK_MAP_SCHEMA
from arbx_dagster.domain.matching.incremental import (
    IDENTITY_SCHEMA,
    IncrementalMatch,
    MatchState,
    listing_identities,
)
from arbx_dagster.domain.matching.retrieval import STOP_KEY_SCHEMA, stop_keys
from arbx_dagster.domain.schema import (
    MATCH_PAIR_SCHEMA,
    PRODUCT_MATCH_SCHEMA,
    UTC_DATETIME,
    conform,
)
from arbx_dagster.storage.warehouse import Warehouse

KEY = ["retailer", "sku"]
MATCH_RUN_SCHEMA: dict[str, pl.DataType] = {
    "matched_at": UTC_DATETIME,
    "mode": pl.String(),
    "scorer": pl.String(),
    "listings": pl.Int64(),
    "changed": pl.Int64(),
    "touched_products": pl.Int64(),
    "seconds": pl.Float64(),
}


def _table(warehouse: Warehouse, table: str, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    columns = ", ".join(schema)
    return conform(warehouse.query(f"SELECT {columns} FROM {table}"), schema)


def read_match_state(warehouse: Warehouse) -> MatchState:
    return MatchState(
        product_matches=_table(warehouse, "product_matches", PRODUCT_MATCH_SCHEMA),
        pairs=_table(warehouse, "match_pairs", MATCH_PAIR_SCHEMA),
        identities=_table(warehouse, "match_identities", IDENTITY_SCHEMA),
        blocks=_table(warehouse, "match_blocks", BLOCK_MAP_SCHEMA),
        stop_keys=_table(warehouse, "match_stop_keys", STOP_KEY_SCHEMA),
    )


def last_full_match(warehouse: Warehouse) -> dict | None:
    """``matched_at`` and ``scorer`` of the newest full match run, or None."""
    rows = warehouse.query(
        "SELECT matched_at, scorer FROM match_runs WHERE mode = 'full' "
        "ORDER BY matched_at DESC LIMIT 1"
    )
    return rows.row(0, named=True) if rows.height else None


def last_match_at(warehouse: Warehouse) -> datetime | None:
    return warehouse.scalar("SELECT max(matched_at) FROM match_runs")


def write_full_state(warehouse: Warehouse, listings: pl.DataFrame, blocks: pl.DataFrame) -> None:
    """The identities, blocks and stop keys of a full match of ``listings`` (inside the
    caller's transaction)."""
    warehouse.replace("match_identities", listing_identities(listings))
    warehouse.replace("match_blocks", blocks)
    warehouse.replace("match_stop_keys", stop_keys(listings))


def write_incremental(warehouse: Warehouse, change: IncrementalMatch, now: datetime) -> None:
    """Swap the rows ``change`` replaces for its own, in one transaction: stale rows are
    deleted and the new ones upserted, so no key is deleted and inserted again (which
    DuckDB commits very slowly; see ``DuckDBWarehouse.replace``)."""
    stamp = pl.lit(now).cast(UTC_DATETIME)
    keys = change.replaced
    pair_keys = ["left_retailer", "left_sku", "right_retailer", "right_sku"]
    with warehouse.transaction():
        for side in ("left", "right"):
            side_key = [f"{side}_retailer", f"{side}_sku"]
            pairs = warehouse.keyed_rows_sql("match_pairs", "{staged}", side_key)
            touching = warehouse.query_with(
                f"SELECT {', '.join(pair_keys)} FROM {pairs} AS p",
                keys.rename(dict(zip(KEY, side_key, strict=True))),
            )
            warehouse.delete_keys(
                "match_pairs", touching.join(change.pairs, on=pair_keys, how="anti")
            )
        for table, rows in (
            ("product_matches", change.product_matches),
            ("match_identities", change.identities),
        ):
            warehouse.delete_keys(table, keys.join(rows, on=["retailer", "sku"], how="anti"))
        retired = pl.DataFrame({"canonical_id": change.retired}, schema={"canonical_id": pl.String})
        warehouse.delete_keys(
            "canonical_products",
            retired.join(change.canonical_products, on="canonical_id", how="anti"),
        )
        warehouse.upsert(
            "product_matches", change.product_matches.with_columns(matched_at=stamp), KEY
        )
        warehouse.upsert("match_pairs", change.pairs.with_columns(matched_at=stamp), pair_keys)
        warehouse.upsert(
            "canonical_products",
            change.canonical_products.with_columns(updated_at=stamp),
            ["canonical_id"],
        )
        warehouse.upsert("match_identities", change.identities, KEY)


def log_match_run(warehouse: Warehouse, **run: object) -> None:
    warehouse.insert("match_runs", pl.DataFrame([run], schema=MATCH_RUN_SCHEMA))
