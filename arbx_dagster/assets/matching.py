"""The match model, and product matches: the same real-world product across retailers."""

import os

import dagster as dg

from arbx_dagster.assets.listings import normalized_listings
from arbx_dagster.assets.metadata import stage_metadata
from arbx_dagster.automation.conditions import ON_FRESH_PRICES
from arbx_dagster.domain.matching import TrainedPairModel
from arbx_dagster.pipeline.matching import refresh_matches, train_match_model
from arbx_dagster.resources import ClockResource, WarehouseResource

# Matching split into this many partitions (ARBX_MATCH_SHARDS, default 1: one run matches
# everything, its blocks on every core). On a cluster each shard is its own run, so the
# work spreads across run workers; a shard holds whole match blocks (shelves linked by
# shared model codes), which never share a product with another shard.
MATCH_SHARDS = max(1, int(os.environ.get("ARBX_MATCH_SHARDS", "1")))
MATCH_PARTITIONS = (
    dg.StaticPartitionsDefinition([f"shard-{k}" for k in range(MATCH_SHARDS)])
    if MATCH_SHARDS > 1
    else None
)


def shard_of_partition(key: str | None) -> tuple[int, int] | None:
    """``(index, count)`` of a ``shard-N`` partition key (None: the whole catalogue)."""
    if key is None:
        return None
    return int(key.removeprefix("shard-")), MATCH_SHARDS


@dg.asset(
    deps=[normalized_listings],
    group_name="matching",
    kinds={"scikitlearn"},
    # Adapt once a day (new user labels), not on every price refresh.
    automation_condition=dg.AutomationCondition.on_cron("0 5 * * *", "America/Santiago"),
    description=(
        "The pair classifier product_matches uses: the model ArbX ships (`arbx model show`), "
        "gradient boosting over bulk pair features (TF-IDF and rapidfuzz similarities, model "
        "codes that agree or nearly agree, measures, versions, accessories and kits, exclusive "
        "forms, brand, catalogue context; never prices), learned from a simulated Chilean "
        "market and public product-matching benchmarks, with probabilities calibrated and a "
        "threshold chosen on markets it was not trained on. The pairs users labelled "
        "(`arbx matches label`) join its training. Versioned by its training data."
    ),
)
def match_model(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.Output[TrainedPairModel]:
    model = train_match_model(warehouse.warehouse)
    metrics = {f"validation_{k}": round(float(v), 4) for k, v in sorted(model.metrics.items())}
    return dg.Output(
        model,
        data_version=dg.DataVersion(model.version),
        metadata={"version": model.version, "threshold": model.threshold, **metrics},
    )


@dg.asset(
    deps=[normalized_listings],
    group_name="matching",
    automation_condition=ON_FRESH_PRICES,
    partitions_def=MATCH_PARTITIONS,
    kinds={"polars", "scikitlearn"},
    description=(
        "Canonical products and the listings that belong to them (at most one per retailer), "
        "from vectorized blocking on model codes and TF-IDF neighbours, the match model's "
        "probabilities and transitive, one-per-retailer clustering; canonical ids carry over "
        "between runs. Matched block by block (shelves linked by shared model codes) on "
        "every core; with ARBX_MATCH_SHARDS=N, one partition per shard of blocks, so a "
        "cluster spreads the work across run workers. "
        "Tables: product_matches, match_pairs, canonical_products."
    ),
)
def product_matches(
    context: dg.AssetExecutionContext,
    match_model: TrainedPairModel,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    shard = shard_of_partition(context.partition_key if context.has_partition_key else None)
    report = refresh_matches(warehouse.warehouse, now=clock.now(), scorer=match_model, shard=shard)
    return dg.MaterializeResult(metadata=stage_metadata(report))
