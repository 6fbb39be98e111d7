"""Opportunities: cross-retailer spreads and price glitches, with their lifecycle and alerts."""

import dagster as dg

from arbx_dagster.assets.conventions import (
    OPPORTUNITIES,
    refreshed_table,
)
from arbx_dagster.assets.history import price_history
from arbx_dagster.assets.metadata import stage_metadata, table_metadata
from arbx_dagster.pipeline.alerts import merge_reports, send_alerts
from arbx_dagster.pipeline.announcements import publish_opportunity_events
from arbx_dagster.pipeline.ingest import open_connectors, refetch_listings
from arbx_dagster.pipeline.opportunities import (
    read_opportunity_state,
    read_state_after,
    refresh_opportunities,
)
from arbx_dagster.pipeline.opportunity_scope import MODES
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)
from arbx_dagster.storage.settings_store import read_thresholds


class OpportunitiesConfig(dg.Config):
    """How much to evaluate: ``auto`` only the products whose listings changed since the
    last pass (everything on a new market day, or when settings or labels changed);
    ``full`` every product."""

    mode: str = "auto"


@dg.asset(
    deps=[price_history],
    **refreshed_table(OPPORTUNITIES, "serving"),
    description=(
        "Money found: spreads (buy at the cheapest fresh, in-stock retailer, compared with the "
        "cheapest other retailer, after costs) and glitches (a price published by mistake: "
        "deeper than any promotion below the listing's own recent level and the same product "
        "elsewhere; high-severity ones are re-fetched to confirm). Thresholds come from "
        "system_config. One row per opportunity: new → active → expired. A run evaluates only "
        "the products whose listings changed since the last one and carries the other open "
        "opportunities over (metadata: mode, changed_listings, evaluated_products, seconds). "
        "Alerts (🎯 💰 📈, watch rules) go out after."
    ),
)
def opportunities(
    context: dg.AssetExecutionContext,
    config: OpportunitiesConfig,
    warehouse: WarehouseResource,
    cache: CacheResource,
    clock: ClockResource,
    sources: SourcesResource,
    alerts: AlertsResource,
) -> dg.MaterializeResult:
    if config.mode not in MODES:
        raise dg.Failure(f"mode must be one of {', '.join(MODES)}, not {config.mode!r}")
    now = clock.now()
    run_id = context.run.run_id
    before = read_opportunity_state(warehouse.warehouse, open_only=True)
    with open_connectors(sources.config, cache.cache, sources.archive, now=now) as connectors:
        report = refresh_opportunities(
            warehouse.warehouse,
            now=now,
            refetch=lambda wanted: refetch_listings(
                sources.config, connectors, wanted, now=now, run_id=run_id
            ),
            calendar=clock.calendar(),
            mode=config.mode,
        )
    # Dashboards and bots hear about new / changed / expired opportunities live (SSE).
    publish_opportunity_events(
        cache.cache,
        before,
        read_state_after(warehouse.warehouse, before),
        events=cache.event_log(),
        run_id=run_id,
    )
    dispatcher = alerts.dispatcher(
        cache.cache, warehouse.warehouse, clock.now, thresholds=read_thresholds(warehouse.warehouse)
    )
    alerts = send_alerts(warehouse.warehouse, dispatcher, now=now, run_id=run_id)
    context.log.info("opportunity transitions: %s", report.counts["transitions"])
    table = table_metadata(warehouse.warehouse, "opportunities")
    return dg.MaterializeResult(
        metadata=stage_metadata(report, table, alerts=merge_reports(alerts))
    )
