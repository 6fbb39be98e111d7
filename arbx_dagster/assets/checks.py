"""Data-quality checks on every stage. Blocking ones stop bad data flowing downstream;
every failure at ERROR severity also raises a 🚨 alert."""

import inspect
from collections.abc import Callable

import dagster as dg

from arbx_dagster.assets.history import price_history
from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.intelligence import intelligence_metrics
from arbx_dagster.assets.listings import normalized_listings
from arbx_dagster.assets.matching import match_model, product_matches
from arbx_dagster.assets.opportunities import opportunities
from arbx_dagster.domain.matching import TrainedPairModel
from arbx_dagster.pipeline import quality_checks as q
from arbx_dagster.pipeline.matching import train_match_model
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    WarehouseResource,
)

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


def _result(
    name: str,
    outcome: q.CheckOutcome,
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    cache: CacheResource,
    clock: ClockResource,
    alerts: AlertsResource,
) -> dg.AssetCheckResult:
    """The asset check result of a plain outcome, with its 🚨 alert when it fails hard
    (once per cooldown across runs: the alert memory is Redis or the warehouse). The alert
    channels are only set up then: that takes most of a second, in every run's checks."""
    if outcome.fails_hard:
        dispatcher = alerts.dispatcher(cache.cache, warehouse.warehouse, clock.now)
        q.alert_if_failed(name, outcome, dispatcher, run_id=context.run.run_id)
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=ERROR if outcome.severity == "error" else WARN,
        metadata=outcome.metadata,
        description=outcome.summary,
    )


def _alerting(
    check: Callable[..., q.CheckOutcome],
) -> Callable[..., dg.AssetCheckResult]:
    """Turn a plain warehouse check into an asset check function."""

    def run(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        cache: CacheResource,
        clock: ClockResource,
        alerts: AlertsResource,
    ) -> dg.AssetCheckResult:
        outcome = check(warehouse.warehouse, context.run.run_id, clock.now())
        return _result(check.__name__, outcome, context, warehouse, cache, clock, alerts)

    run.__name__ = check.__name__
    run.__doc__ = check.__doc__
    return run


def check_description(check: Callable[..., q.CheckOutcome]) -> str:
    """The whole docstring, its lines joined into paragraphs: the UI shows the description
    as written, and the reasoning after the first line is what explains a failure."""
    paragraphs = inspect.cleandoc(check.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _check(
    asset: object, blocking: bool, check: Callable[..., q.CheckOutcome]
) -> dg.AssetChecksDefinition:
    return dg.asset_check(
        asset=asset,  # type: ignore[arg-type]
        name=check.__name__,
        blocking=blocking,
        description=check_description(check),
    )(_alerting(check))


@dg.asset_check(
    asset=match_model,
    blocking=True,
    description="The match model's validation precision and recall clear their floors.",
)
def match_model_is_accurate(
    context: dg.AssetCheckExecutionContext,
    match_model: TrainedPairModel | None,
    warehouse: WarehouseResource,
    cache: CacheResource,
    clock: ClockResource,
    alerts: AlertsResource,
) -> dg.AssetCheckResult:
    if match_model is None:  # none stored where this run can read: judge the one in use
        match_model = train_match_model(warehouse.warehouse)
    outcome = q.match_model_is_accurate(match_model.metrics)
    return _result("match_model_is_accurate", outcome, context, warehouse, cache, clock, alerts)


ALL_CHECKS = [
    _check(raw_prices, True, q.raw_prices_are_plausible),
    _check(raw_prices, True, q.quarantine_rate),
    _check(raw_prices, False, q.volume_versus_recent_days),
    _check(normalized_listings, True, q.listings_have_unique_keys),
    _check(normalized_listings, False, q.prices_plausible_for_category),
    match_model_is_accurate,
    _check(product_matches, True, q.one_listing_per_retailer),
    _check(product_matches, False, q.match_quality_on_labels),
    _check(price_history, True, q.price_history_is_plausible),
    _check(price_history, True, q.closes_come_from_successful_fetches),
    _check(opportunities, False, q.opportunities_are_consistent),
    _check(opportunities, False, q.no_retailer_wide_glitching),
    _check(intelligence_metrics, False, q.tier_freshness),
]
