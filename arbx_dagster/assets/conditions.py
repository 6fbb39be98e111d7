"""The automation conditions that keep everything downstream of raw prices fresh.

``AutomationCondition.eager()`` waits until *no* upstream partition is missing. The
downstream assets are unpartitioned and read every day × retailer partition of
``raw_prices`` since ARBX_HISTORY_START, most of which will never be filled (days before a
retailer was added, days nobody backfilled), so eager would never fire. This condition is
eager without that wait for raw prices: any landed partition is enough.
"""

import dagster as dg

# Keyed by name, not by the asset object: the asset modules import this one.
RAW_PRICES = dg.AssetKey("raw_prices")
MATCH_MODEL = dg.AssetKey("match_model")

MATCH_MODEL_CRON = ("0 5 * * *", "America/Santiago")

ON_FRESH_PRICES = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    # Unpartitioned dependencies (normalized_listings, product_matches, …) must exist; raw
    # prices have gaps by nature and are never waited for, and a missing match model is
    # no reason to wait either: product_matches then uses the model rebuilt on the spot
    # (see ``assets.matching``).
    & ~dg.AutomationCondition.any_deps_missing().ignore(
        dg.AssetSelection.assets(RAW_PRICES, MATCH_MODEL)
    )
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("on_fresh_prices")
"""Run when a dependency updated since this asset was last requested or updated, once the
dependencies' runs are over and unless a run of this asset is already going."""

# Dagster's ``on_missing()`` does not do this: its "since last handled" is reset by the
# condition's first evaluation, so an asset that is missing from the start — every asset of
# a fresh deployment — never counts as missing. This one resets only on a request or a
# materialization: requested once when it goes missing (or is missing when first looked
# at), and not again after a failed run (the cron retries; product_matches never waits).
WHEN_MISSING = (
    dg.AutomationCondition.missing()
    .newly_true()
    .since(dg.AutomationCondition.newly_requested() | dg.AutomationCondition.newly_updated())
    .with_label("missing_since_last_requested")
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.in_progress()
).with_label("when_missing")

DAILY_OR_WHEN_MISSING = (
    dg.AutomationCondition.on_cron(*MATCH_MODEL_CRON) | WHEN_MISSING
).with_label("daily_or_when_missing")
"""The match model: retrained once a day at 05:00 Santiago (user labels join it), not on
every price refresh — and built as soon as it is missing (a fresh deployment, a wiped
asset) and its listings exist or are requested, rather than waiting up to a day for the
cron. On a cold start the first listings and the model are requested on the same tick, so
one run builds listings, model, matches and everything after them."""
