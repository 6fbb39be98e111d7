"""Read models over the warehouse shared by the CLI (and, later, the API)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.storage.warehouse import Warehouse


def expiry_note(warehouse: Warehouse, thresholds: Thresholds) -> str:
    """Why no opportunity is live though some were found: their prices got too old (a
    day's export goes stale after ``max_price_age_hours``) — never a silent empty table."""
    live = warehouse.scalar("SELECT count(*) FROM opportunities WHERE status <> 'expired'")
    expired = warehouse.scalar("SELECT count(*) FROM opportunities WHERE status = 'expired'")
    if live or not expired:
        return ""
    newest = warehouse.scalar("SELECT max(observed_at) FROM raw_prices")
    seen = f"; newest price {newest:%Y-%m-%d %H:%M} UTC" if newest is not None else ""
    return (
        f"No live opportunity: all {expired:,} found have expired, their prices being older "
        f"than max_price_age_hours ({thresholds.max_price_age_hours:g} h{seen}). Drop fresh "
        "exports (or scrape), or `arbx config set max_price_age_hours N` for sources "
        "refreshed less often."
    )


def live_opportunities(warehouse: Warehouse, limit: int = 20) -> pl.DataFrame:
    """Open opportunities, most money first."""
    return warehouse.query(
        "SELECT * FROM opportunities WHERE status <> 'expired' "
        "ORDER BY margin_clp DESC, opportunity_id LIMIT $1",
        [limit],
    )


def activity_since(warehouse: Warehouse, since: datetime) -> dict[str, int]:
    """What the pipeline produced since ``since``."""
    counts = warehouse.query(
        """
        SELECT
          (SELECT count(*) FROM raw_prices WHERE ingested_at >= $1) AS observations_ingested,
          (SELECT count(DISTINCT retailer || '|' || sku) FROM raw_prices
             WHERE ingested_at >= $1) AS listings_ingested,
          (SELECT count(*) FROM quarantine WHERE quarantined_at >= $1) AS quarantined,
          (SELECT count(*) FROM match_pairs WHERE matched_at >= $1) AS matches,
          (SELECT count(*) FROM opportunities WHERE last_seen >= $1) AS opportunities,
          (SELECT count(*) FROM opportunities WHERE status <> 'expired') AS live_opportunities
        """,
        [since],
    )
    return {k: int(v or 0) for k, v in counts.row(0, named=True).items()}
