"""Data-quality checks on each stage; blocking ones stop bad data flowing downstream."""

import dagster as dg

from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.listings import normalized_listings
from arbx_dagster.assets.matching import product_matches
from arbx_dagster.assets.opportunities import opportunities
from arbx_dagster.domain.quality import MAX_PLAUSIBLE_CLP
from arbx_dagster.resources import WarehouseResource

# Above this share of quarantined rows in one run the source is broken (e.g. a layout
# change), not merely noisy: fail loudly instead of quietly ingesting nothing.
MAX_QUARANTINE_SHARE = 0.5
WARN_QUARANTINE_SHARE = 0.05


def _count(warehouse: WarehouseResource, sql: str, params: list | None = None) -> int:
    return int(warehouse.warehouse.scalar(sql, params or []) or 0)


@dg.asset_check(asset=raw_prices, blocking=True, description="Stored prices are > 0 and plausible")
def raw_prices_are_plausible(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    bad = _count(
        warehouse,
        "SELECT count(*) FROM raw_prices WHERE price_offer <= 0 OR price_list <= 0 "
        "OR price_card <= 0 OR price_offer > $1 OR price_list > $1 OR price_card > $1",
        [MAX_PLAUSIBLE_CLP],
    )
    return dg.AssetCheckResult(passed=bad == 0, metadata={"implausible_rows": bad})


@dg.asset_check(
    asset=raw_prices,
    blocking=True,
    description="This run's quarantine share stays low (a spike means the source broke)",
)
def raw_prices_quarantine_rate(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    run_id = context.run.run_id
    stored = _count(warehouse, "SELECT count(*) FROM raw_prices WHERE run_id = $1", [run_id])
    quarantined = _count(warehouse, "SELECT count(*) FROM quarantine WHERE run_id = $1", [run_id])
    share = quarantined / (stored + quarantined) if stored + quarantined else 0.0
    severity = (
        dg.AssetCheckSeverity.ERROR if share > MAX_QUARANTINE_SHARE else dg.AssetCheckSeverity.WARN
    )
    return dg.AssetCheckResult(
        passed=share <= WARN_QUARANTINE_SHARE,
        severity=severity,
        metadata={"stored": stored, "quarantined": quarantined, "share": round(share, 4)},
    )


@dg.asset_check(
    asset=normalized_listings, blocking=True, description="Every listing has a key and a title"
)
def listings_have_keys(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    bad = _count(
        warehouse,
        "SELECT count(*) FROM listings WHERE retailer IS NULL OR sku IS NULL "
        "OR name_norm IS NULL OR name_norm = ''",
    )
    return dg.AssetCheckResult(passed=bad == 0, metadata={"bad_rows": bad})


@dg.asset_check(
    asset=product_matches,
    blocking=True,
    description="A canonical product holds at most one listing per retailer",
)
def one_listing_per_retailer(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    conflicts = _count(
        warehouse,
        "SELECT count(*) FROM (SELECT canonical_id, retailer FROM product_matches "
        "GROUP BY canonical_id, retailer HAVING count(*) > 1) AS c",
    )
    unmatched = _count(
        warehouse,
        "SELECT count(*) FROM listings AS l LEFT JOIN product_matches AS m "
        "ON m.retailer = l.retailer AND m.sku = l.sku WHERE m.canonical_id IS NULL",
    )
    return dg.AssetCheckResult(
        passed=conflicts == 0 and unmatched == 0,
        metadata={"conflicting_products": conflicts, "listings_without_product": unmatched},
    )


@dg.asset_check(
    asset=opportunities, description="Live opportunities buy below their reference, for a profit"
)
def opportunities_are_consistent(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    bad = _count(
        warehouse,
        "SELECT count(*) FROM opportunities WHERE status <> 'expired' AND "
        "(buy_price >= ref_price OR margin_clp <= 0 OR confidence < 0 OR confidence > 1)",
    )
    return dg.AssetCheckResult(passed=bad == 0, metadata={"inconsistent_rows": bad})


ALL_CHECKS = [
    raw_prices_are_plausible,
    raw_prices_quarantine_rate,
    listings_have_keys,
    one_listing_per_retailer,
    opportunities_are_consistent,
]
