"""Data-quality checks on every stage. Blocking ones stop bad data flowing downstream;
every failure at ERROR severity also raises a 🚨 alert."""

from collections.abc import Callable

import dagster as dg

from arbx_dagster.alerts import AlertDispatcher, channels_from_env
from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.intelligence import intelligence_metrics
from arbx_dagster.assets.listings import normalized_listings
from arbx_dagster.assets.matching import product_matches
from arbx_dagster.assets.opportunities import opportunities
from arbx_dagster.pipeline import quality_checks as q
from arbx_dagster.resources import CacheResource, ClockResource, WarehouseResource

ERROR = dg.AssetCheckSeverity.ERROR
WARN = dg.AssetCheckSeverity.WARN


def _alerting(
    check: Callable[..., q.CheckOutcome],
) -> Callable[..., dg.AssetCheckResult]:
    """Turn a plain check into an asset check result, with a 🚨 alert when it fails hard."""

    def run(
        context: dg.AssetCheckExecutionContext,
        warehouse: WarehouseResource,
        cache: CacheResource,
        clock: ClockResource,
    ) -> dg.AssetCheckResult:
        outcome = check(warehouse.warehouse, context.run.run_id, clock.now())
        severity = ERROR if outcome.severity == "error" else WARN
        if not outcome.passed and severity == ERROR:
            AlertDispatcher(cache.cache, channels_from_env(), clock.now).system_error(
                f"Data-quality check {check.__name__} failed",
                outcome.summary,
                key=f"check:{check.__name__}",
                run_id=context.run.run_id,
            )
        return dg.AssetCheckResult(
            passed=outcome.passed,
            severity=severity,
            metadata=outcome.metadata,
            description=outcome.summary,
        )

    run.__name__ = check.__name__
    run.__doc__ = check.__doc__
    return run


def _check(asset: object, blocking: bool, check: Callable[..., q.CheckOutcome]):
    return dg.asset_check(
        asset=asset,  # type: ignore[arg-type]
        name=check.__name__,
        blocking=blocking,
        description=(check.__doc__ or "").strip().splitlines()[0],
    )(_alerting(check))


ALL_CHECKS = [
    _check(raw_prices, True, q.raw_prices_are_plausible),
    _check(raw_prices, True, q.quarantine_rate),
    _check(raw_prices, False, q.volume_versus_recent_days),
    _check(normalized_listings, True, q.listings_have_unique_keys),
    _check(normalized_listings, False, q.prices_plausible_for_category),
    _check(product_matches, True, q.one_listing_per_retailer),
    _check(product_matches, False, q.match_quality_on_labels),
    _check(opportunities, False, q.opportunities_are_consistent),
    _check(opportunities, False, q.no_retailer_wide_glitching),
    _check(intelligence_metrics, False, q.tier_freshness),
]
