"""The match state in the warehouse: what an incremental match starts from and writes.

A full match replaces ``product_matches``, ``match_pairs``, ``canonical_products``,
``match_identities``, ``match_blocks`` and ``match_stop_keys`` whole; an incremental one
replaces only the rows of the listings it matched again (``IncrementalMatch.replaced``) and
of the products they had, and reads only those (``StoredMatchState``). Every match run is
logged in ``match_runs`` (mode, scorer version, counts, seconds): the log says when the last
full match ran and with which model.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.matching.blocks import BLOCK_MAP_SCHEMA
from arbx_dagster.domain.matching.incremental import (
    IDENTITY_SCHEMA,
    PAIR_SIDES,
    IncrementalMatch,
    MatchState,
    listing_identities,
)
from arbx_dagster.domain.matching.retrieval import STOP_KEY_SCHEMA, stop_keys
from arbx_dagster.domain.schema import (
    LISTING_KEY_SCHEMA,
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
    """The whole state, in frames (what a test compares; a match reads ``StoredMatchState``)."""
    return MatchState(
        product_matches=_table(warehouse, "product_matches", PRODUCT_MATCH_SCHEMA),
        pairs=_table(warehouse, "match_pairs", MATCH_PAIR_SCHEMA),
        identities=_table(warehouse, "match_identities", IDENTITY_SCHEMA),
        blocks=_table(warehouse, "match_blocks", BLOCK_MAP_SCHEMA),
        stop_keys=_table(warehouse, "match_stop_keys", STOP_KEY_SCHEMA),
    )


def pairs_touching(warehouse: Warehouse, keys: pl.DataFrame) -> pl.DataFrame:
    """The stored matched pairs with either side among ``keys`` (``retailer, sku``)."""
    parts = [conform(pl.DataFrame(), MATCH_PAIR_SCHEMA)]
    columns = ", ".join(MATCH_PAIR_SCHEMA)
    for side in PAIR_SIDES if keys.height else ():
        pairs = warehouse.keyed_rows_sql("match_pairs", "{staged}", side)
        rows = warehouse.query_with(
            f"SELECT {columns} FROM {pairs} AS p",
            keys.select(KEY).unique().rename(dict(zip(KEY, side, strict=True))),
        )
        parts.append(conform(rows, MATCH_PAIR_SCHEMA))
    return pl.concat(parts).unique(maintain_order=True)


class StoredMatchState:
    """The last match's state as the warehouse holds it (a ``StateReader``): each question
    an incremental match asks is one query over the keys it is about, so a change of a few
    listings reads a few rows of million-row tables, not the tables.

    Its current listings are the ``listings`` table's: ``delisted`` and ``changed`` compare
    the state with that table (the frames they are passed are its rows); ``now``: the
    clock of the match that asks.
    """

    def __init__(self, warehouse: Warehouse, now: datetime) -> None:
        self.warehouse, self.now = warehouse, now
        self.blocks = _table(warehouse, "match_blocks", BLOCK_MAP_SCHEMA)
        self.stop_keys = _table(warehouse, "match_stop_keys", STOP_KEY_SCHEMA)
        # The listings written since the last match, as ``delisted`` and ``changed`` ask.
        self._written = self._written_since_match()

    def _keyed(self, table: str, key: list[str]) -> str:
        return self.warehouse.keyed_rows_sql(table, "{staged}", key)

    def _written_since_match(self) -> tuple[str, list[object]]:
        """A condition on listings ``l``: written since the last match that recorded
        identities (normalisation stamps what it writes with its run's clock, as the
        opportunities' scope relies on too), or without an identity; with its parameters.
        Every listing written before that match was matched as it is."""
        since = self.warehouse.scalar(
            "SELECT max(matched_at) FROM match_runs WHERE mode IN ('full', 'incremental')"
        )
        if since is None:
            return "TRUE", []
        # At that match too when the clock stands still (pinned for a test or a replay).
        after = ">" if self.now > since else ">="
        return f"(l.identity IS NULL OR l.updated_at {after} $1)", [since]

    def delisted(self, current: pl.DataFrame) -> pl.DataFrame:
        # Listings are rarely delisted: the counts say whether any was (product matches =
        # listings - new ones + delisted ones; a new one is written since the last match),
        # and only then is every product match looked for in the listings.
        written, params = self._written
        new = self.warehouse.scalar(
            f"SELECT count(*) FROM listings AS l WHERE {written} AND NOT EXISTS "
            "(SELECT 1 FROM product_matches AS m WHERE m.retailer = l.retailer AND m.sku = l.sku)",
            params,
        )
        listed = self.warehouse.scalar("SELECT count(*) FROM listings")
        matched = self.warehouse.scalar("SELECT count(*) FROM product_matches")
        if matched == listed - new:
            return conform(pl.DataFrame(), LISTING_KEY_SCHEMA)
        rows = self.warehouse.query(
            "SELECT m.retailer, m.sku FROM product_matches AS m WHERE NOT EXISTS "
            "(SELECT 1 FROM listings AS l WHERE l.retailer = m.retailer AND l.sku = m.sku)"
        )
        return conform(rows, LISTING_KEY_SCHEMA)

    def changed(self, listings: pl.DataFrame) -> pl.DataFrame:
        # The identity normalisation wrote with each listing, against the last match's, for
        # the listings written since: only the keys of the few that differ leave the
        # database. No identity (a listing not normalised since it gained the column):
        # changed.
        written, params = self._written
        rows = self.warehouse.query(
            "SELECT l.retailer, l.sku FROM listings AS l LEFT JOIN match_identities AS m "
            f"ON m.retailer = l.retailer AND m.sku = l.sku WHERE {written} "
            "AND (m.identity IS NULL OR l.identity IS NULL OR l.identity <> m.identity)",
            params,
        )
        return conform(rows, LISTING_KEY_SCHEMA)

    def matches_of(self, keys: pl.DataFrame) -> pl.DataFrame:
        if keys.is_empty():
            return conform(pl.DataFrame(), PRODUCT_MATCH_SCHEMA)
        columns = ", ".join(PRODUCT_MATCH_SCHEMA)
        rows = self.warehouse.query_with(
            f"SELECT {columns} FROM {self._keyed('product_matches', KEY)} AS m",
            keys.select(KEY).unique(),
        )
        return conform(rows, PRODUCT_MATCH_SCHEMA)

    def members_of(self, keys: pl.DataFrame) -> pl.DataFrame:
        if keys.is_empty():
            return conform(pl.DataFrame(), LISTING_KEY_SCHEMA)
        rows = self.warehouse.query_with(
            "SELECT m.retailer, m.sku FROM product_matches AS m WHERE m.canonical_id IN "
            f"(SELECT p.canonical_id FROM {self._keyed('product_matches', KEY)} AS p)",
            keys.select(KEY).unique(),
        )
        return conform(rows, LISTING_KEY_SCHEMA)

    def pairs_touching(self, keys: pl.DataFrame) -> pl.DataFrame:
        return pairs_touching(self.warehouse, keys)

    def ids_held_outside(self, ids: pl.Series, keys: pl.DataFrame) -> pl.Series:
        if ids.is_empty():
            return pl.Series("canonical_id", [], dtype=pl.String)
        holders = self.warehouse.query_with(
            "SELECT m.retailer, m.sku, m.canonical_id FROM product_matches AS m "
            "WHERE m.canonical_id IN (SELECT s.canonical_id FROM {staged} AS s)",
            pl.DataFrame({"canonical_id": ids.unique()}),
        )
        outside = conform(holders, {**LISTING_KEY_SCHEMA, "canonical_id": pl.String()})
        return outside.join(keys.select(KEY), on=KEY, how="anti")["canonical_id"].unique()


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
    # Listings without the identity normalisation writes (normalised before it existed) get
    # the one just matched, or every later match would see them changed.
    warehouse.execute(
        "UPDATE listings AS l SET identity = m.identity FROM match_identities AS m "
        "WHERE m.retailer = l.retailer AND m.sku = l.sku AND l.identity IS NULL"
    )


def write_incremental(warehouse: Warehouse, change: IncrementalMatch, now: datetime) -> None:
    """Swap the rows ``change`` replaces for its own, in one transaction: stale rows are
    deleted and the new ones upserted, so no key is deleted and inserted again (which
    DuckDB commits very slowly; see ``DuckDBWarehouse.replace``)."""
    stamp = pl.lit(now).cast(UTC_DATETIME)
    keys = change.replaced
    pair_keys = ["left_retailer", "left_sku", "right_retailer", "right_sku"]
    with warehouse.transaction():
        touching = pairs_touching(warehouse, keys).select(pair_keys)
        warehouse.delete_keys("match_pairs", touching.join(change.pairs, on=pair_keys, how="anti"))
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
