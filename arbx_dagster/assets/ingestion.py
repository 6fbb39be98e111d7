"""Raw price observations from the configured source."""

import dagster as dg
from pydantic import Field

from arbx_dagster.assets.metadata import stage_metadata
from arbx_dagster.domain.history import day_of
from arbx_dagster.domain.simulator import SimulatorConfig, simulate_market
from arbx_dagster.pipeline.ingest import ingest_observations
from arbx_dagster.resources import ClockResource, WarehouseResource


class SimulatorSource(dg.Config):
    """The built-in deterministic market simulator (real connectors arrive with ingestion)."""

    seed: int = Field(default=7, description="Same seed, same market")
    n_products: int = Field(default=400, description="Distinct real-world products")
    days: int = Field(default=60, description="Days of daily price history ending today")


@dg.asset(
    group_name="ingestion",
    kinds={"polars"},
    description=(
        "Every price observation (list, offer and card prices in CLP) as the source yielded "
        "it. Malformed rows go to the `quarantine` table with a reason; fetched = stored + "
        "quarantined. Upserted by (retailer, sku, observed_at), so re-runs never duplicate."
    ),
)
def raw_prices(
    context: dg.AssetExecutionContext,
    config: SimulatorSource,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    now = clock.now()
    market = simulate_market(
        SimulatorConfig(
            seed=config.seed,
            n_products=config.n_products,
            days=config.days,
            end=day_of(now),
            now=now,
        )
    )
    report = ingest_observations(
        warehouse.warehouse,
        market.observations,
        now=now,
        run_id=context.run.run_id,
        source_location=f"simulator(seed={config.seed})",
    )
    context.log.info(
        "ingested %s rows, quarantined %s", report.counts["stored"], report.counts["quarantined"]
    )
    return dg.MaterializeResult(metadata=stage_metadata(report, source="simulator"))
