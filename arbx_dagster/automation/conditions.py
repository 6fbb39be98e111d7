"""The automation condition that keeps everything downstream of raw prices fresh.

``AutomationCondition.eager()`` waits until *no* upstream partition is missing. The
downstream assets are unpartitioned and read every day × retailer partition of
``raw_prices`` since ARBX_HISTORY_START, most of which will never be filled (days before a
retailer was added, days nobody backfilled), so eager would never fire. This condition is
eager without that wait for raw prices: any landed partition is enough.
"""

import dagster as dg

# Keyed by name, not by the asset object: the asset modules import this one.
RAW_PRICES = dg.AssetKey("raw_prices")

ON_FRESH_PRICES = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    # Unpartitioned dependencies (match_model, product_matches, …) must exist; raw prices
    # have gaps by nature and are never waited for.
    & ~dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets(RAW_PRICES))
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("on_fresh_prices")
"""Run when a dependency updated since this asset was last requested or updated, once the
dependencies' runs are over and unless a run of this asset is already going."""
