"""Which canonical products an opportunities pass must evaluate again, and what it keeps.

A product's spreads and glitches depend on its own listings (their rows, their matches,
their price history) and on a few things shared by the whole market: the thresholds, the
event calendar, the labels people gave, the past days' prices, the segments' market moves
(``glitch_references.market_move``) and the review fences (``review.py``). With
``mode="auto"`` a pass evaluates only the products whose own inputs changed since the last
pass; every other open opportunity is carried over as a full pass would find it again, its
confidence aged by the time since (``carry_over``). A full pass runs instead when there is
no earlier pass to compare with, on a new market day, when a shared input changed, when
more than ``MAX_CHANGED_SHARE`` of the listings changed, or when asked (``mode="full"``).

What each pass records for the next one to compare with:

* ``opportunity_inputs``: per listing, a hash of everything the detectors read of it (its
  row and its match) — computed in the database, and only for the rows normalisation and
  matching wrote since the last pass, so unchanged listings are neither read nor hashed;
* ``opportunity_segment_changes``: per listing and price series, log(price / own
  reference), whose median per retailer x category x day is the segment's market move;
* ``opportunity_product_gaps``: per product at two stores or more, its gap across stores,
  which the review fences are drawn from;
* ``opportunity_runs``: when, which mode and why, and the shared inputs' fingerprint.

The last two let a pass know when a changed listing moves its segment or a fence, and then
evaluate again the products the move or the fence affects (``opportunity_context.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.history import day_of
from arbx_dagster.domain.market_events import EventCalendar
from arbx_dagster.domain.opportunities import max_price_age_hours
from arbx_dagster.domain.schema import UTC_DATETIME
from arbx_dagster.storage.labels import read_labels
from arbx_dagster.storage.warehouse import Warehouse

KEY = ["retailer", "sku"]
MODES = ("auto", "full")
MAX_CHANGED_SHARE = 0.2  # beyond this, evaluating everything costs little more
PRODUCTS = {"canonical_id": pl.String()}

# Everything the detectors read of a listing: its row and its match.
_INPUT_COLUMNS = (
    "l.name", "l.name_norm", "l.model_codes", "l.category", "l.url", "l.price_list",
    "l.price_offer", "l.price_card", "l.in_stock", "l.is_first_party", "l.condition",
    "l.last_seen", "m.canonical_id", "m.match_probability",
)  # fmt: skip


def _inputs_sql(
    warehouse: Warehouse, listings: str = "listings", matches: str = "product_matches"
) -> str:
    """Every matched listing's inputs (or those of the ``listings`` and ``matches`` given as
    subqueries) with their fingerprint."""
    return (
        "SELECT l.retailer, l.sku, m.canonical_id, "
        f"{warehouse.fingerprint_sql(_INPUT_COLUMNS)} AS fingerprint "
        f"FROM {listings} AS l JOIN {matches} AS m ON m.retailer = l.retailer AND m.sku = l.sku"
    )


# Only rows written after the last pass ($1) can have other inputs: normalisation and
# matching stamp every row they write (``updated_at``, ``matched_at``) with their run's
# clock, earlier than the pass of the same run ({op}: ``>=`` when the clock stands still).
_TOUCHED_SQL = """
SELECT retailer, sku FROM listings WHERE updated_at {op} $1
UNION
SELECT retailer, sku FROM product_matches WHERE matched_at {op} $1
"""

# Of the listings staged as {staged}: those whose inputs differ from the recorded ones
# (``current``: they have a listing and a match now; ``recorded``: the last pass saw them).
_CHANGED_AMONG_SQL = """
WITH current_inputs AS ({inputs}),
recorded_inputs AS (SELECT * FROM {recorded} AS o)
SELECT coalesce(c.retailer, o.retailer) AS retailer, coalesce(c.sku, o.sku) AS sku,
       c.canonical_id, o.canonical_id AS canonical_before, c.fingerprint,
       c.retailer IS NOT NULL AS current, o.retailer IS NOT NULL AS recorded
FROM current_inputs AS c FULL JOIN recorded_inputs AS o
    ON c.retailer = o.retailer AND c.sku = o.sku
WHERE c.fingerprint IS DISTINCT FROM o.fingerprint
"""

# Recorded listings without inputs now (their match is gone), wherever they are.
_VANISHED_SQL = """
SELECT o.retailer, o.sku, CAST(NULL AS TEXT) AS canonical_id,
       o.canonical_id AS canonical_before, CAST(NULL AS TEXT) AS fingerprint
FROM opportunity_inputs AS o
WHERE NOT EXISTS (
    SELECT 1 FROM listings AS l JOIN product_matches AS m
        ON m.retailer = l.retailer AND m.sku = l.sku
    WHERE l.retailer = o.retailer AND l.sku = o.sku
)
"""
_CHANGED_SCHEMA = {
    k: pl.String() for k in ("retailer", "sku", "canonical_id", "canonical_before", "fingerprint")
}


def changed_listings(
    warehouse: Warehouse, since: datetime, now: datetime, recorded: int
) -> pl.DataFrame:
    """``retailer, sku, canonical_id, canonical_before, fingerprint`` of the listings
    whose inputs differ from what the pass at ``since`` recorded (``recorded``: how many rows
    of ``opportunity_inputs`` it left): new ones (no ``canonical_before``), changed ones and
    vanished ones (no ``canonical_id`` nor ``fingerprint``); ``fingerprint`` is what
    :func:`record_inputs` records for them.

    Only the rows written after ``since`` are hashed (at ``since`` too when ``now`` is no
    later: a clock pinned for a test or a replay stamps every run alike). A listing can
    also lose its inputs unstamped (its match deleted with the listing): the counts tell
    whether one did — recorded rows + new ones - current ones = vanished ones (every
    product match has its listing) — and only then are the recorded rows searched."""
    touched = warehouse.query(_TOUCHED_SQL.format(op=">" if now > since else ">="), [since])
    if touched.is_empty():
        changed = pl.DataFrame(
            schema=_CHANGED_SCHEMA | {"current": pl.Boolean(), "recorded": pl.Boolean()}
        )
    else:
        keyed = partial(warehouse.keyed_rows_sql, staged="{staged}", key=KEY)
        inputs = _inputs_sql(warehouse, keyed("listings"), keyed("product_matches"))
        sql = _CHANGED_AMONG_SQL.format(inputs=inputs, recorded=keyed("opportunity_inputs"))
        changed = warehouse.query_with(sql, touched)
    now_current = warehouse.scalar("SELECT count(*) FROM product_matches") or 0
    new = int((changed["current"] & ~changed["recorded"]).sum())
    gone = int((~changed["current"] & changed["recorded"]).sum())
    changed = changed.select(list(_CHANGED_SCHEMA)).cast(_CHANGED_SCHEMA)  # type: ignore[arg-type]
    if recorded + new - now_current == gone:
        return changed
    vanished = warehouse.query(_VANISHED_SQL).cast(_CHANGED_SCHEMA)  # type: ignore[arg-type]
    return pl.concat([changed, vanished]).unique(KEY, keep="first", maintain_order=True)


# Products with a listing whose price went stale between two passes ($1, $2: the cut-offs).
_STALE_SQL = """
SELECT DISTINCT m.canonical_id FROM listings AS l
JOIN product_matches AS m ON m.retailer = l.retailer AND m.sku = l.sku
WHERE l.last_seen >= $1 AND l.last_seen < $2
"""

RUN_SCHEMA: dict[str, pl.DataType] = {
    "evaluated_at": UTC_DATETIME,
    "mode": pl.String(),
    "why_full": pl.String(),
    "market_day": pl.Date(),
    "context": pl.String(),
    "changed_listings": pl.Int64(),
    "touched_products": pl.Int64(),
    "seconds": pl.Float64(),
}


@dataclass(frozen=True)
class Scope:
    """What one pass evaluates: every product (``products`` None) or some."""

    mode: str  # full / incremental
    why_full: str | None
    context: str
    products: pl.DataFrame | None  # canonical_id
    changed: pl.DataFrame  # retailer, sku (and canonical ids) of the listings that changed


def context_fingerprint(
    warehouse: Warehouse, thresholds: Thresholds, calendar: EventCalendar, now: datetime
) -> str:
    """A hash of the inputs every product shares: thresholds, calendar, labels, and the
    price history of the days before today (a backfill or a late observation changes it)."""
    labels = read_labels(warehouse)
    past = warehouse.query(
        "SELECT retailer, day, fingerprint FROM price_history_slices WHERE day < $1 "
        "ORDER BY retailer, day",
        [day_of(now)],
    )
    parts = [repr(thresholds), repr(calendar), labels.sort(labels.columns).write_csv()]
    return hashlib.sha256("\n".join([*parts, past.write_csv()]).encode()).hexdigest()


def last_pass(warehouse: Warehouse) -> dict[str, Any] | None:
    frame = warehouse.query(
        "SELECT evaluated_at, market_day, context FROM opportunity_runs "
        "ORDER BY evaluated_at DESC LIMIT 1"
    )
    return frame.row(0, named=True) if frame.height else None


def _why_full(last: dict[str, Any] | None, now: datetime, context: str, mode: str) -> str | None:
    if mode == "full":
        return "asked for"
    if last is None:
        return "no earlier pass recorded"
    if last["market_day"] != day_of(now):
        return "a new market day"
    if last["context"] != context:
        return "thresholds, labels, the event calendar or past prices changed"
    if now < last["evaluated_at"]:
        return "evaluated before the last pass"
    return None


def plan_scope(
    warehouse: Warehouse,
    *,
    now: datetime,
    context: str,
    mode: str,
    thresholds: Thresholds,
    previous: pl.DataFrame,
) -> Scope:
    """The products this pass evaluates again (module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    last = last_pass(warehouse)
    empty_changes = pl.DataFrame(schema=_CHANGED_SCHEMA)
    why = _why_full(last, now, context, mode)
    if why is not None or last is None:
        return Scope("full", why, context, None, empty_changes)
    listed = warehouse.scalar("SELECT count(*) FROM opportunity_inputs") or 0
    changed = changed_listings(warehouse, last["evaluated_at"], now, listed)
    if changed.height > MAX_CHANGED_SHARE * max(listed, 1):
        why = f"more than {MAX_CHANGED_SHARE:.0%} of the listings changed"
        return Scope("full", why, context, None, empty_changes)
    age = timedelta(hours=max_price_age_hours(thresholds))
    stale = warehouse.query(_STALE_SQL, [last["evaluated_at"] - age, now - age])
    # A pending glitch is re-fetched by every pass until it is settled.
    pending = previous.filter(
        pl.col("status").is_in(["new", "active"]) & (pl.col("confirmation") == "pending")
    )
    products = pl.concat(
        [
            changed.select("canonical_id"),
            changed.select(canonical_id="canonical_before"),
            stale.select("canonical_id"),
            pending.select("canonical_id"),
        ]
    )
    products = products.drop_nulls().unique().sort("canonical_id")
    return Scope("incremental", None, context, products, changed)


def record_inputs(warehouse: Warehouse, scope: Scope) -> None:
    """Remember every listing's inputs (a full pass) or the changed listings' (else).

    Only rows that differ are written: DuckDB commits deleting and re-inserting the same
    keys very slowly (see ``DuckDBWarehouse.replace``)."""
    if scope.products is None:
        inputs = _inputs_sql(warehouse)
        warehouse.execute(
            "DELETE FROM opportunity_inputs AS o WHERE NOT EXISTS (SELECT 1 FROM listings AS l "
            "JOIN product_matches AS m ON m.retailer = l.retailer AND m.sku = l.sku "
            "WHERE l.retailer = o.retailer AND l.sku = o.sku)"
        )
        warehouse.execute(
            "INSERT INTO opportunity_inputs (retailer, sku, canonical_id, fingerprint) "
            f"SELECT c.* FROM ({inputs}) AS c LEFT JOIN opportunity_inputs AS o "
            "ON o.retailer = c.retailer AND o.sku = c.sku "
            "WHERE o.fingerprint IS DISTINCT FROM c.fingerprint "
            "OR o.canonical_id IS DISTINCT FROM c.canonical_id "
            "ON CONFLICT (retailer, sku) DO UPDATE SET canonical_id = excluded.canonical_id, "
            "fingerprint = excluded.fingerprint"
        )
        return
    # The changed listings' inputs as the scope found them (nothing this stage writes
    # changes them): a second hash of listings x product matches would cost a scan of both.
    vanished = pl.col("fingerprint").is_null()
    warehouse.delete_keys("opportunity_inputs", scope.changed.filter(vanished).select(KEY))
    current = scope.changed.filter(~vanished).select(*KEY, "canonical_id", "fingerprint")
    warehouse.upsert("opportunity_inputs", current, KEY)


def replace_rows(
    warehouse: Warehouse, table: str, rows: pl.DataFrame, keys: pl.DataFrame | None
) -> None:
    """Replace ``table``'s rows matching ``keys`` (all of them when None) by ``rows``."""
    if keys is None:
        warehouse.replace(table, rows)
        return
    warehouse.delete_keys(table, keys)
    warehouse.insert(table, rows)


def log_pass(warehouse: Warehouse, scope: Scope, *, now: datetime, **counts: object) -> None:
    row = {
        "evaluated_at": now,
        "mode": scope.mode,
        "why_full": scope.why_full,
        "market_day": day_of(now),
        "context": scope.context,
        **counts,
    }
    warehouse.insert("opportunity_runs", pl.DataFrame([row], schema=RUN_SCHEMA))
