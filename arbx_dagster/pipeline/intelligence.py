"""Stage 6: market intelligence — volatility, scraping tiers, and headline metrics."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from arbx_dagster.domain.history import day_of
from arbx_dagster.domain.schema import UTC_DATETIME
from arbx_dagster.domain.volatility import listing_volatility, tier_moves, volatility_by
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.cache import CacheStats
from arbx_dagster.storage.warehouse import Warehouse

# Volatility reads the last 30 days; a little more covers the first day-over-day change.
HISTORY_DAYS = 35


def _metric_rows(frame: pl.DataFrame, scope: str, key_column: str) -> pl.DataFrame:
    """Wide per-group measurements -> (scope, scope_key, metric, value) rows."""
    return (
        frame.with_columns(pl.col(key_column).cast(pl.String).fill_null("unknown"))
        .unpivot(index=key_column, variable_name="metric", value_name="value")
        .select(
            scope=pl.lit(scope),
            scope_key=pl.col(key_column),
            metric="metric",
            value=pl.col("value").cast(pl.Float64),
        )
    )


def pipeline_kpis(warehouse: Warehouse, now: datetime) -> dict[str, float]:
    """How much the pipeline did over the 24 hours before ``now``: distinct listings landed
    per minute, opportunities first seen per hour, alerts sent / suppressed / failed."""
    counts = warehouse.query(
        """
        SELECT
          (SELECT count(DISTINCT retailer || '|' || sku) FROM raw_prices
             WHERE ingested_at >= $1) AS listings_refreshed,
          (SELECT count(*) FROM opportunities WHERE first_seen >= $1) AS opportunities_found,
          (SELECT coalesce(sum(n), 0) FROM alert_events
             WHERE sent_at >= $1 AND outcome = 'sent') AS alerts_sent,
          (SELECT coalesce(sum(n), 0) FROM alert_events
             WHERE sent_at >= $1 AND outcome = 'suppressed') AS alerts_suppressed,
          (SELECT coalesce(sum(n), 0) FROM alert_events
             WHERE sent_at >= $1 AND outcome = 'failed') AS alert_failures
        """,
        [now - timedelta(hours=24)],
    ).row(0, named=True)
    return {
        "listings_per_minute": float(counts["listings_refreshed"] or 0) / (24 * 60),
        "opportunities_per_hour": float(counts["opportunities_found"] or 0) / 24,
        **{
            name: float(counts[name] or 0)
            for name in ("listings_refreshed", "alerts_sent", "alerts_suppressed", "alert_failures")
        },
    }


def top_opportunity_series(warehouse: Warehouse, now: datetime, top: int = 4) -> pl.DataFrame:
    """Daily offer prices of the buy and reference listings of the top live opportunities."""
    return warehouse.query(
        """
        WITH top AS (
            SELECT opportunity_id, product_name, kind, buy_retailer, buy_sku, ref_retailer,
                   canonical_id
            FROM opportunities WHERE status <> 'expired'
            ORDER BY margin_clp DESC, opportunity_id LIMIT $2
        )
        SELECT t.opportunity_id, t.product_name, t.kind, h.retailer, h.day, h.price_offer,
               h.retailer = t.buy_retailer AS is_buy
        FROM top AS t
        JOIN product_matches AS m ON m.canonical_id = t.canonical_id
        JOIN price_history AS h ON h.retailer = m.retailer AND h.sku = m.sku
        WHERE h.day >= $1 AND (h.retailer = t.buy_retailer OR h.retailer = t.ref_retailer
                               OR t.ref_retailer IS NULL)
        ORDER BY t.opportunity_id, h.retailer, h.day
        """,
        [(now - timedelta(days=30)).date(), top],
    )


def refresh_intelligence(
    warehouse: Warehouse, *, now: datetime, cache_stats: CacheStats | None = None
) -> StageReport:
    """Tiers, volatility and KPIs. ``cache_stats``: ArbX's own cache lookups (``Cache.
    cache_stats``: every process's over 24 h on Redis, this process's in memory)."""
    history = warehouse.query(
        "SELECT * FROM price_history WHERE day >= $1", [(now - timedelta(days=HISTORY_DAYS)).date()]
    )
    hot = warehouse.query(
        "SELECT buy_retailer AS retailer, buy_sku AS sku FROM opportunities "
        "WHERE status <> 'expired'"
    )
    tiers = listing_volatility(history, hot, now_day=day_of(now))
    previous = warehouse.query("SELECT retailer, sku, tier FROM listing_tiers")
    moves = tier_moves(previous, tiers)
    listings = warehouse.query("SELECT retailer, sku, category FROM listings")
    by_category = volatility_by(tiers, listings, "category")
    by_retailer = volatility_by(tiers, listings, "retailer")
    tier_counts = dict(tiers.group_by("tier").len().iter_rows())
    market = pl.DataFrame(
        {
            "scope_key": ["all"],
            "listings": [listings.height],
            "tiered_listings": [tiers.height],
            "mean_volatility": [tiers["volatility"].mean()],
            "tier_moves": [moves.height],
            "live_opportunities": [hot.height],
            **{
                f"n_{tier}": [tier_counts.get(tier, 0)]
                for tier in ("critical", "important", "tracking")
            },
        }
    )
    kpis: dict[str, float | None] = {**pipeline_kpis(warehouse, now)}
    # Always recorded (null when nothing was looked up), so every run has the same metrics.
    kpis["cache_lookups"] = float(cache_stats.lookups) if cache_stats is not None else None
    kpis["cache_hit_rate"] = cache_stats.hit_rate if cache_stats is not None else None
    pipeline = pl.DataFrame(
        {"scope_key": ["all"], **{k: [v] for k, v in kpis.items()}},
        schema_overrides={k: pl.Float64 for k in kpis},
    )
    metrics = pl.concat(
        [
            _metric_rows(pipeline, "pipeline", "scope_key"),
            _metric_rows(market, "market", "scope_key"),
            _metric_rows(by_category, "category", "category"),
            _metric_rows(by_retailer, "retailer", "retailer"),
        ]
    ).with_columns(
        as_of_date=pl.lit(day_of(now)),
        computed_at=pl.lit(now).cast(UTC_DATETIME),
    )
    stamp = pl.lit(now).cast(UTC_DATETIME)
    with warehouse.transaction():
        warehouse.replace("listing_tiers", tiers.with_columns(assigned_at=stamp))
        warehouse.upsert(
            "intelligence_metrics", metrics, ["as_of_date", "scope", "scope_key", "metric"]
        )
    return StageReport(
        rows=metrics.height,
        counts={
            "tiers": {t: tier_counts.get(t, 0) for t in ("critical", "important", "tracking")},
            "tier_moves": moves.height,
            "mean_volatility": float(tiers["volatility"].mean() or 0.0),
            "categories": by_category.height,
            "kpis": {k: None if v is None else round(v, 3) for k, v in kpis.items()},
        },
        preview=by_category,
        frames={"top_opportunities": top_opportunity_series(warehouse, now)},
    )
