"""Stage 5: spreads and glitches, confirmed, merged into the opportunities' lifecycle.

A pass evaluates every product, or (``mode="auto"``, the default) only the products whose
inputs changed since the last pass and carries the other open opportunities over as a full
pass would find them (``opportunity_scope.py``, ``opportunity_context.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitch_confirmation import confirm_glitches, needs_confirmation
from arbx_dagster.domain.glitches import market_glitches
from arbx_dagster.domain.lifecycle import (
    OPPORTUNITY_STATE_SCHEMA,
    apply_lifecycle,
    carry_over,
    summarize_transitions,
)
from arbx_dagster.domain.market_events import DEFAULT_CALENDAR, EventCalendar
from arbx_dagster.domain.opportunities import drop_glitching_buys, spread_details
from arbx_dagster.domain.review import hold_for_review, product_gaps
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, conform
from arbx_dagster.pipeline.opportunity_context import (
    Evaluation,
    full_evaluation,
    partial_evaluation,
)
from arbx_dagster.pipeline.opportunity_scope import (
    KEY,
    Scope,
    context_fingerprint,
    log_pass,
    plan_scope,
    record_inputs,
    replace_rows,
)
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.labels import read_labels
from arbx_dagster.storage.settings_store import read_thresholds
from arbx_dagster.storage.warehouse import Warehouse

# Re-fetch listings (retailer, sku, url, name) -> fresh observations (RAW_PRICE_SCHEMA).
Refetch = Callable[[pl.DataFrame], pl.DataFrame]

_PREVIEW = (
    "kind, product_name, buy_retailer, buy_price, ref_retailer, ref_price, margin_clp, "
    "roi_pct, confidence, severity, status, reason, review"
)


def confirm_severe_glitches(
    glitches: pl.DataFrame,
    previous: pl.DataFrame,
    thresholds: Thresholds,
    refetch: Refetch | None,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """High-severity glitches are re-fetched before anyone is told: a mistaken *scrape* is
    likelier than a 90 % price cut. Confirmed ones stay (prices from the re-fetch), the
    ones the store already fixed are dropped, the rest wait as ``pending``. A glitch
    confirmed in an earlier run at the same price is not fetched again."""
    severe = glitches.filter(needs_confirmation())
    others = glitches.filter(~needs_confirmation())
    known = previous.filter(pl.col("confirmation") == "confirmed").select(
        "opportunity_id", "buy_price"
    )
    still = severe.join(known, on=["opportunity_id", "buy_price"], how="semi")
    unknown = severe.join(known, on=["opportunity_id", "buy_price"], how="anti")
    counts = {"reconfirmed": still.height, "confirmed": 0, "rejected": 0, "pending": 0}
    parts = [others, still.with_columns(confirmation=pl.lit("confirmed"))]
    if not unknown.is_empty():
        if refetch is None:
            parts.append(unknown.with_columns(confirmation=pl.lit("pending")))
            counts["pending"] = unknown.height
        else:
            wanted = unknown.select(retailer="buy_retailer", sku="buy_sku", url="buy_url")
            outcome = confirm_glitches(unknown, refetch(wanted), thresholds)
            parts += [
                outcome.confirmed.with_columns(confirmation=pl.lit("confirmed")),
                outcome.pending.with_columns(confirmation=pl.lit("pending")),
            ]
            counts.update(
                confirmed=outcome.confirmed.height,
                rejected=outcome.rejected.height,
                pending=outcome.pending.height,
            )
    schema = {**OPPORTUNITY_SCHEMA}
    return pl.concat([conform(p, schema) for p in parts]), counts


def detect_opportunities(
    warehouse: Warehouse,
    evaluation: Evaluation,
    *,
    now: datetime,
    previous: pl.DataFrame,
    thresholds: Thresholds,
    refetch: Refetch | None = None,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, object]]:
    """This pass's opportunities among the evaluated products (``OPPORTUNITY_SCHEMA``), the
    listings' segment changes, and counts for metadata; ``calendar`` says which days are
    the market's sale events."""
    market = evaluation.market
    scan = market_glitches(evaluation.history, market, thresholds, now, calendar, evaluation.moves)
    # A listing caught glitching is reported as a glitch, not also as a spread.
    spreads = drop_glitching_buys(spread_details(market, thresholds, now), scan.glitches)
    # Too good to be true is verified by a person, not alerted.
    confirmed = read_labels(warehouse).filter(pl.col("is_match"))
    spreads = hold_for_review(spreads, market, confirmed, evaluation.fences)
    glitches, confirmation = confirm_severe_glitches(scan.glitches, previous, thresholds, refetch)
    detected = pl.concat([conform(spreads, OPPORTUNITY_SCHEMA), glitches])
    counts: dict[str, object] = {
        "detected": detected.height,
        "spreads": spreads.height,
        "spreads_held_for_review": int(spreads["review"].is_not_null().sum()),
        "glitches": glitches.height,
        "glitch_confirmation": confirmation,
        "glitch_types": dict(glitches.group_by("glitch_type").len().sort("glitch_type").rows()),
        "thresholds": {
            "min_margin_clp": thresholds.min_margin_clp,
            "min_roi_pct": thresholds.min_roi_pct,
        },
    }
    return detected, scan.changes, counts


def read_opportunity_state(warehouse: Warehouse, *, open_only: bool = False) -> pl.DataFrame:
    """Every opportunity ever found, or only the open ones (new / active): a pass needs
    the expired ones only when it finds them again, and they accumulate."""
    where = " WHERE status <> 'expired'" if open_only else ""
    return conform(warehouse.query(f"SELECT * FROM opportunities{where}"), OPPORTUNITY_STATE_SCHEMA)


def read_opportunities_by_id(warehouse: Warehouse, ids: pl.Series) -> pl.DataFrame:
    """The stored rows of the opportunities ``ids`` (any status)."""
    keys = pl.DataFrame({"opportunity_id": ids}).unique()
    rows = warehouse.query_with(
        "SELECT o.* FROM opportunities AS o JOIN {staged} AS k "
        "ON o.opportunity_id = k.opportunity_id",
        keys,
    )
    return conform(rows, OPPORTUNITY_STATE_SCHEMA)


def read_state_after(warehouse: Warehouse, before: pl.DataFrame) -> pl.DataFrame:
    """What a pass's events compare ``before`` (the open opportunities before it) with: the
    open ones now and what became of the ones open before (expired ones among them)."""
    now_open = read_opportunity_state(warehouse, open_only=True)
    gone = before.join(now_open, on="opportunity_id", how="anti")["opportunity_id"]
    return pl.concat([now_open, read_opportunities_by_id(warehouse, gone)])


def _evaluate(
    warehouse: Warehouse, scope: Scope, now: datetime, previous: pl.DataFrame, **context: object
) -> Evaluation:
    if scope.products is None:
        return full_evaluation(warehouse, now)
    return partial_evaluation(
        warehouse,
        now=now,
        products=scope.products,
        previous=previous,
        **context,  # type: ignore[arg-type]
    )


def _record(
    warehouse: Warehouse, scope: Scope, evaluation: Evaluation, changes: pl.DataFrame
) -> None:
    """What the next pass compares with (``opportunity_scope.py``)."""
    listings = evaluation.market.select(KEY)
    if scope.products is not None:
        listings = pl.concat([listings, scope.changed.select(KEY)]).unique()
    record_inputs(warehouse, scope)
    replace_rows(
        warehouse,
        "opportunity_segment_changes",
        changes.drop("panel", strict=False),
        None if scope.products is None else listings,
    )
    replace_rows(
        warehouse,
        "opportunity_product_gaps",
        product_gaps(evaluation.market),
        evaluation.products,
    )


def _advance(
    warehouse: Warehouse,
    previous: pl.DataFrame,
    detected: pl.DataFrame,
    evaluated: pl.DataFrame | None,
    now: datetime,
) -> tuple[pl.DataFrame, pl.DataFrame, int | None]:
    """``(the rows before, the rows after, how many were carried over)``: the lifecycle
    advanced over the evaluated products' rows (all of them when ``evaluated`` is None)
    and the carried-over ones, and over the expired rows found again, which carry on
    (first seen, times seen)."""
    before, carried = previous, None
    if evaluated is not None:
        kept = carry_over(previous, evaluated, now)
        before = previous.filter(
            pl.col("canonical_id").is_in(evaluated["canonical_id"].implode())
            | pl.col("opportunity_id").is_in(kept["opportunity_id"].implode())
        )
        detected, carried = pl.concat([detected, kept]), kept.height
    found_again = read_opportunities_by_id(warehouse, detected["opportunity_id"])
    before = pl.concat([before, found_again.filter(pl.col("status") == "expired")])
    return before, apply_lifecycle(before, detected, now), carried


def refresh_opportunities(
    warehouse: Warehouse,
    *,
    now: datetime,
    refetch: Refetch | None = None,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    mode: str = "auto",
) -> StageReport:
    """Detect, confirm and merge into the lifecycle: every product (``mode="full"``) or
    the changed ones (``"auto"``, module docstring)."""
    started = time.perf_counter()
    thresholds = read_thresholds(warehouse)
    previous = read_opportunity_state(warehouse, open_only=True)
    context = context_fingerprint(warehouse, thresholds, calendar, now)
    scope = plan_scope(
        warehouse, now=now, context=context, mode=mode, thresholds=thresholds, previous=previous
    )
    evaluation = _evaluate(
        warehouse, scope, now, previous, thresholds=thresholds, calendar=calendar
    )
    detected, changes, counts = detect_opportunities(
        warehouse,
        evaluation,
        now=now,
        previous=previous,
        thresholds=thresholds,
        refetch=refetch,
        calendar=calendar,
    )
    before, state, carried = _advance(warehouse, previous, detected, evaluation.products, now)
    if carried is not None:
        counts["carried_over"] = carried
    products = evaluation.products
    counts.update(
        mode=scope.mode,
        why_full=scope.why_full,
        changed_listings=scope.changed.height,
        evaluated_products=evaluation.market["canonical_id"].n_unique()
        if products is None
        else products.height,
        transitions=summarize_transitions(before, state),
    )
    with warehouse.transaction():
        warehouse.upsert("opportunities", state, ["opportunity_id"])
        _record(warehouse, scope, evaluation, changes)
        counts["seconds"] = round(time.perf_counter() - started, 3)
        log_pass(
            warehouse,
            scope,
            now=now,
            changed_listings=scope.changed.height,
            touched_products=counts["evaluated_products"],
            seconds=counts["seconds"],
        )
    return _report(warehouse, state, counts)


def _report(warehouse: Warehouse, state: pl.DataFrame, counts: dict[str, object]) -> StageReport:
    """The live opportunities of the whole table, whatever this pass evaluated."""
    totals = warehouse.query(
        "SELECT count(*) AS live, coalesce(sum(margin_clp), 0) AS margin FROM opportunities "
        "WHERE status <> 'expired'"
    ).row(0, named=True)
    counts.update(live=int(totals["live"]), total_margin_clp=int(totals["margin"]))
    preview = warehouse.query(
        f"SELECT {_PREVIEW} FROM opportunities WHERE status <> 'expired' "
        "ORDER BY margin_clp DESC, opportunity_id LIMIT 15"
    )
    return StageReport(rows=state.height, counts=counts, preview=preview)
