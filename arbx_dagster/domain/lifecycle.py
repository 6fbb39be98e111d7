"""Opportunity lifecycle: one warehouse row per opportunity, however many runs see it.

States::

    (detected for the first time)     -> new
    new / active, detected again      -> active   (last_seen = now, times_seen + 1)
    new / active, not detected now    -> expired  (expired_at = now: price recovered or stock gone)
    expired, detected again           -> active   (same opportunity coming back: first_seen and
                                                    times_seen carry on, expired_at is cleared)
    expired, not detected             -> expired  (unchanged)

A run is identified by its ``now``. Applying the same detection twice with the same ``now``
(a retried run) changes nothing; a row whose ``last_seen`` is at or after ``now`` has already
been processed by this or a later run, so it neither advances nor expires (a retry of the
same run refreshes its prices; an older run arriving late changes nothing). The result holds
every id of both inputs and is ready for an idempotent upsert keyed by ``opportunity_id``.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.history import as_utc
from arbx_dagster.domain.opportunities import FRESHNESS_HALF_LIFE_HOURS
from arbx_dagster.domain.schema import OPPORTUNITY_SCHEMA, UTC_DATETIME, conform, empty

OPPORTUNITY_STATE_SCHEMA: dict[str, pl.DataType] = {
    **OPPORTUNITY_SCHEMA,
    "status": pl.String(),  # new / active / expired
    "first_seen": UTC_DATETIME,
    "last_seen": UTC_DATETIME,
    "expired_at": UTC_DATETIME,  # null unless expired
    "times_seen": pl.Int32(),  # runs that detected it
}

STATUSES: tuple[str, ...] = ("new", "active", "expired")

_DETECTION_COLUMNS = [c for c in OPPORTUNITY_SCHEMA if c != "opportunity_id"]


def _rows(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``frame`` cast to ``schema`` (an empty frame without columns stays empty)."""
    if frame.is_empty():
        return empty(schema)
    return conform(frame, schema).filter(pl.col("opportunity_id").is_not_null())


def apply_lifecycle(previous: pl.DataFrame, detected: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """Advance the stored state by one run's detections (transitions in the module docstring)."""
    now_lit = pl.lit(as_utc(now)).cast(UTC_DATETIME)
    prev = _rows(previous, OPPORTUNITY_STATE_SCHEMA).unique("opportunity_id", keep="last")
    det = (
        _rows(detected, OPPORTUNITY_SCHEMA)
        .unique("opportunity_id", keep="last", maintain_order=True)
        .with_columns(detected=pl.lit(True))
    )
    merged = prev.rename({c: f"prev_{c}" for c in _DETECTION_COLUMNS}).join(
        det, on="opportunity_id", how="full", coalesce=True
    )

    was_seen = pl.col("status").is_not_null()
    is_detected = pl.col("detected").fill_null(False)
    is_open = pl.col("status").is_in(["new", "active"])
    # Already processed by this run (a retry) or a later one: do not advance the state.
    replay = was_seen & (pl.col("last_seen") >= now_lit)
    advance = is_detected & was_seen & ~replay
    expire = ~is_detected & is_open & ~replay

    # Latest prices and margins when detected now (unless a later run already wrote newer
    # ones); the last known ones otherwise.
    take_detected = is_detected & ~(was_seen & (pl.col("last_seen") > now_lit))
    detection = [
        pl.when(take_detected).then(pl.col(c)).otherwise(pl.col(f"prev_{c}")).alias(c)
        for c in _DETECTION_COLUMNS
    ]
    state = merged.with_columns(
        *detection,
        status=pl.when(~was_seen)
        .then(pl.lit("new"))
        .when(advance)
        .then(pl.lit("active"))
        .when(expire)
        .then(pl.lit("expired"))
        .otherwise(pl.col("status")),
        first_seen=pl.when(~was_seen).then(now_lit).otherwise(pl.col("first_seen")),
        last_seen=pl.when(~was_seen | advance).then(now_lit).otherwise(pl.col("last_seen")),
        expired_at=pl.when(~was_seen | advance)
        .then(pl.lit(None, dtype=UTC_DATETIME))
        .when(expire)
        .then(now_lit)
        .otherwise(pl.col("expired_at")),
        times_seen=pl.when(~was_seen)
        .then(pl.lit(1))
        .when(advance)
        .then(pl.col("times_seen") + 1)
        .otherwise(pl.col("times_seen")),
    )
    return conform(state, OPPORTUNITY_STATE_SCHEMA).sort("opportunity_id")


def summarize_transitions(previous: pl.DataFrame, state: pl.DataFrame) -> dict[str, int]:
    """Counts for run metadata: what happened to each opportunity between two states.

    ``new``: first seen; ``still_open``: open before and after; ``reactivated``: expired
    before, active now; ``expired``: open before, expired now; plus totals per status.
    """
    before = _rows(previous, OPPORTUNITY_STATE_SCHEMA).select(
        "opportunity_id", before=pl.col("status")
    )
    joined = state.select("opportunity_id", "status").join(before, on="opportunity_id", how="left")
    open_now = pl.col("status").is_in(["new", "active"])
    open_before = pl.col("before").is_in(["new", "active"]).fill_null(False)
    counts = joined.select(
        new=(pl.col("before").is_null() & (pl.col("status") == "new")).sum(),
        still_open=(open_before & open_now).sum(),
        reactivated=((pl.col("before") == "expired") & (pl.col("status") == "active")).sum(),
        expired=(open_before & (pl.col("status") == "expired")).sum(),
        **{f"total_{s}": (pl.col("status") == s).sum() for s in STATUSES},
    )
    return {k: int(v) for k, v in counts.row(0, named=True).items()}


def carry_over(previous: pl.DataFrame, evaluated: pl.DataFrame, now: datetime) -> pl.DataFrame:
    """The open opportunities of the products a pass did not evaluate (``evaluated``:
    ``canonical_id``), as a full pass would detect them at ``now``: the same prices, the
    confidence's freshness aged by the hours since they were last seen."""
    hours = (pl.lit(as_utc(now)).cast(UTC_DATETIME) - pl.col("last_seen")).dt.total_seconds()
    aged = 0.5 ** ((hours / 3600.0).clip(0.0) / FRESHNESS_HALF_LIFE_HOURS)
    return (
        _rows(previous, OPPORTUNITY_STATE_SCHEMA)
        .filter(pl.col("status").is_in(["new", "active"]))
        .join(evaluated.select("canonical_id"), on="canonical_id", how="anti")
        .with_columns(confidence=pl.col("confidence") * aged)
        .select(list(OPPORTUNITY_SCHEMA))
    )
