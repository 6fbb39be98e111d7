"""The match model, and product matches: the same real-world product across retailers."""

import pickle

import dagster as dg

from arbx_dagster.assets.conditions import DAILY_OR_WHEN_MISSING
from arbx_dagster.assets.conventions import (
    MATCH_MODEL_FRESHNESS,
    MATCHING,
    OWNERS,
    layer,
    refreshed_table,
)
from arbx_dagster.assets.listings import normalized_listings
from arbx_dagster.assets.metadata import stage_metadata, table_metadata
from arbx_dagster.domain.matching import TrainedPairModel
from arbx_dagster.pipeline.matching import MATCH_MODES, refresh_matches, train_match_model
from arbx_dagster.resources import ClockResource, WarehouseResource
from arbx_dagster.settings import settings

# Matching split into this many partitions (ARBX_MATCH_SHARDS, default 1: one run matches
# everything, its blocks on every core). On a cluster each shard is its own run, so the
# work spreads across run workers; a shard holds whole match blocks (shelves linked by
# shared model codes), which never share a product with another shard.
MATCH_SHARDS = settings().match_shards
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


# What loading a model gives when none can be used: nothing stored at that path, or a
# file that no longer unpickles (written by another version of the code, or cut short).
_UNUSABLE = (FileNotFoundError, EOFError, pickle.UnpicklingError, AttributeError, ImportError)


class _StoredOrNone(dg.IOManager):
    """Dagster's pickling IO manager, except that loading a model nobody stored (or one
    that no longer loads) gives None instead of an error."""

    def __init__(self, inner: dg.IOManager) -> None:
        self._inner = inner

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        self._inner.handle_output(context, obj)

    def load_input(self, context: dg.InputContext) -> object:
        try:
            return self._inner.load_input(context)
        except _UNUSABLE as exc:
            context.log.warning("no usable stored match model (%s: %s)", type(exc).__name__, exc)
            return None


class MatchModelStore(dg.FilesystemIOManager):
    """Where ``match_model`` is kept: the default filesystem IO manager (same files under
    the instance's storage folder), whose readers get None when no model is stored there.

    Whatever needs the match model must get one the first time it needs it, not after the
    05:00 cron: a fresh deployment, a run launched from the UI on product_matches alone, a
    run on a machine or pod whose storage never held the model, an instance whose storage
    was wiped. Two layers, so that no single one is load-bearing:

    * ``match_model`` is materialized as soon as it is missing (``DAILY_OR_WHEN_MISSING``);
      on a cold start the automation requests it with the first listings, in one run;
    * ``product_matches`` never waits for it (``ON_FRESH_PRICES`` ignores a missing match
      model) and, when no stored model can be loaded, rebuilds the same one on the spot
      (``train_match_model``: the shipped model adapted to the current labels, the same
      inputs always giving the same model), so it can never be blocked or fail for want of
      a model — including when the model's own first run failed.
    """

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.IOManager:
        return _StoredOrNone(super().create_io_manager(context))


@dg.asset(
    deps=[normalized_listings],
    group_name=MATCHING,
    owners=OWNERS,
    tags=layer("model"),
    kinds={"scikitlearn"},
    freshness_policy=MATCH_MODEL_FRESHNESS,
    # Adapt once a day (new user labels), not on every price refresh; built at once when
    # missing (a fresh deployment).
    automation_condition=DAILY_OR_WHEN_MISSING,
    io_manager_def=MatchModelStore(),
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


class MatchConfig(dg.Config):
    """How much to match: ``auto`` matches only the listings that changed since the last
    match (and what they could match), unless a full match is due; ``full`` everything."""

    mode: str = "auto"


@dg.asset(
    deps=[normalized_listings],
    partitions_def=MATCH_PARTITIONS,
    **refreshed_table(MATCHING, "refined", kinds=frozenset({"scikitlearn"})),
    description=(
        "Canonical products and the listings that belong to them (at most one per retailer), "
        "from vectorized blocking on model codes and TF-IDF neighbours, the match model's "
        "probabilities and transitive, one-per-retailer clustering; canonical ids carry over "
        "between runs. Matched block by block (shelves linked by shared model codes) on "
        "every core; with ARBX_MATCH_SHARDS=N, one partition per shard of blocks, so a "
        "cluster spreads the work across run workers. Between full matches (daily, the "
        "rematch_all job, or when the model changes) a run matches only the listings whose "
        "title, brand, codes or category changed, with the listings they could match "
        "(metadata: mode, changed_listings, touched_products, seconds). "
        "Tables: product_matches, match_pairs, canonical_products."
    ),
)
def product_matches(
    context: dg.AssetExecutionContext,
    config: MatchConfig,
    match_model: TrainedPairModel | None,
    warehouse: WarehouseResource,
    clock: ClockResource,
) -> dg.MaterializeResult:
    if match_model is None:
        context.log.warning(
            "no stored match model (never materialized, not in this run's storage, or "
            "unreadable): using the shipped model adapted to the current labels, as "
            "match_model builds it"
        )
        match_model = train_match_model(warehouse.warehouse)
    if config.mode not in MATCH_MODES:
        raise dg.Failure(f"mode must be one of {', '.join(MATCH_MODES)}, not {config.mode!r}")
    shard = shard_of_partition(context.partition_key if context.has_partition_key else None)
    report = refresh_matches(
        warehouse.warehouse,
        now=clock.now(),
        scorer=match_model,
        shard=shard,
        workers=settings().match_workers,
        mode=config.mode,
    )
    table = table_metadata(warehouse.warehouse, "product_matches")
    if shard is not None:  # the shard's own rows, beside the whole table's
        table["dagster/partition_row_count"] = report.rows
    return dg.MaterializeResult(metadata=stage_metadata(report, table))
