"""What the pipeline announces on the event log: opportunities that opened, changed or
expired in a run, and run status changes. Announcing never raises: an event bus outage
must not fail a run.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import polars as pl

from arbx_dagster.storage.cache import Cache, CacheError
from arbx_dagster.storage.event_log import EventLog

log = logging.getLogger(__name__)

# The API's cached opportunity pages carry this version: bumping it retires them all.
OPPORTUNITIES_VERSION_KEY = "opportunities:version"
# Fields whose change makes an open opportunity worth re-announcing.
TRACKED_FIELDS = (
    "buy_price",
    "buy_price_type",
    "ref_retailer",
    "ref_price",
    "margin_clp",
    "severity",
)
OPEN_STATUSES = ("new", "active")


def _open(status: str = "status") -> pl.Expr:
    return pl.col(status).is_in(list(OPEN_STATUSES)).fill_null(False)


def opportunity_events(
    previous_state: pl.DataFrame, new_state: pl.DataFrame
) -> list[tuple[str, dict[str, Any]]]:
    """What changed between two states of the ``opportunities`` table, as events.

    * ``opportunity.new``: open now, and unknown or expired before (``reactivated`` says
      which; ``previous_state`` may hold only the open rows);
    * ``opportunity.changed``: open before and now, with a different price, reference or
      margin (``changes`` lists ``field: [before, after]``);
    * ``opportunity.expired``: open before, expired now.
    """
    if new_state.is_empty():
        return []
    columns = ["opportunity_id", "status", *TRACKED_FIELDS]
    before = (
        previous_state.select([c for c in columns if c in previous_state.columns])
        if not previous_state.is_empty()
        else pl.DataFrame(schema={"opportunity_id": pl.String, "status": pl.String})
    )
    before = before.rename({c: f"{c}__before" for c in before.columns if c != "opportunity_id"})
    joined = new_state.join(before, on="opportunity_id", how="left")
    open_now = _open()
    open_before = _open("status__before")
    tracked = [f for f in TRACKED_FIELDS if f"{f}__before" in joined.columns]
    moved = [pl.col(f).ne_missing(pl.col(f"{f}__before")) for f in tracked]
    # Only rows with something to announce go through Python (most open ones are unchanged).
    worth = (open_now != open_before) | pl.any_horizontal(moved) if moved else pl.lit(True)
    events: list[tuple[str, dict[str, Any]]] = []
    for row in joined.filter((open_now | open_before) & worth).iter_rows(named=True):
        was_open = row["status__before"] in OPEN_STATUSES
        is_open = row["status"] in OPEN_STATUSES
        data = {k: v for k, v in row.items() if "__before" not in k}
        if is_open and not was_open:
            # Back after expiring: the lifecycle makes it active again, never new (the
            # expired row itself may not have been read before the run).
            data["reactivated"] = row["status"] == "active"
            events.append(("opportunity.new", data))
        elif was_open and not is_open:
            events.append(("opportunity.expired", data))
        else:
            changes = {
                f: [row.get(f"{f}__before"), row.get(f)]
                for f in TRACKED_FIELDS
                if f"{f}__before" in row and row.get(f"{f}__before") != row.get(f)
            }
            if changes:
                events.append(("opportunity.changed", {**data, "changes": changes}))
    return events


def publish_opportunity_events(
    cache: Cache,
    previous_state: pl.DataFrame,
    new_state: pl.DataFrame,
    *,
    events: EventLog,
    run_id: str | None = None,
    max_events: int = 500,
) -> int:
    """Announce what an opportunities run changed and invalidate cached API pages.

    ``previous_state`` / ``new_state`` are the ``opportunities`` rows before and after the
    run (``refresh_opportunities``' ``previous`` and ``state``). More than ``max_events``
    changes (a first run, a threshold change) are announced as one
    ``opportunities.refreshed`` event with counts, telling clients to refetch the list.
    Returns the number of events published; never raises.
    """
    try:
        changes = opportunity_events(previous_state, new_state)
        if not changes:
            return 0
        if len(changes) > max_events:
            counts: dict[str, int] = {}
            for type_, _ in changes:
                counts[type_] = counts.get(type_, 0) + 1
            changes = [("opportunities.refreshed", {"counts": counts, "run_id": run_id})]
        elif run_id is not None:
            changes = [(t, {**d, "run_id": run_id}) for t, d in changes]
        events.append_many(changes)
        invalidate_opportunities(cache)
        return len(changes)
    except Exception as exc:  # never fail the run over an announcement
        log.warning("could not publish opportunity events: %s", exc)
        return 0


def publish_run_event(
    run_id: str,
    job_name: str,
    status: str,
    *,
    events: EventLog,
    **details: Any,
) -> str | None:
    """Announce a run's status (QUEUED, STARTED, SUCCESS, FAILURE, CANCELED…); never raises.

    Returns the event id, or None when the event could not be published.
    """
    data = {"run_id": run_id, "job_name": job_name, "status": status, **details}
    try:
        return events.append("run.status", data)
    except Exception as exc:
        log.warning("could not publish run event for %s: %s", run_id, exc)
        return None


def invalidate_opportunities(cache: Cache) -> None:
    """Move every cached ``/api/opportunities`` page out of reach (their keys carry the
    version) — cheaper and safer than scanning for keys."""
    with contextlib.suppress(CacheError):
        cache.incr(OPPORTUNITIES_VERSION_KEY)
