"""The scenarios of the retail suite: each turns one dynamic up over the everyday market."""

from __future__ import annotations

from dataclasses import replace

from arbx_dagster.bench.retail_market.config import RetailMarketConfig

# Each scenario turns one dynamic up over the everyday market, so a weakness has a name.
SCENARIOS: dict[str, dict[str, float]] = {
    "everyday": {},
    "level_shifts_then_promotions": {
        "shift_rate": 1 / 60,
        "product_shift_rate": 1 / 60,
        "promotion_after_cut": 0.9,
        "promotion_rate": 1 / 20,
    },
    "first_day_glitches": {"late_listing_rate": 0.4, "first_day_share": 0.6},
    "multi_day_glitches": {"multi_day_share": 0.9},
    "event_days": {"event_participation": 0.95, "fake_discount_rate": 0.6, "store_sales": 6},
    "card_only_dips": {"card_rate": 0.9, "card_dip_rate": 1 / 12, "card_glitch_share": 0.4},
    "stock_outs": {"stockout_rate": 0.05, "out_of_stock_glitch_share": 0.25},
    "price_matching": {"match_rate": 0.8, "promotion_rate": 1 / 15},
    "all_at_once": {
        "shift_rate": 1 / 40,
        "promotion_after_cut": 0.6,
        "promotion_rate": 1 / 18,
        "late_listing_rate": 0.2,
        "first_day_share": 0.2,
        "multi_day_share": 0.6,
        "store_sales": 4,
        "card_dip_rate": 1 / 25,
        "stockout_rate": 0.03,
        "match_rate": 0.5,
    },
    # A blocked page or a failed run: a fifth of the crawls missing, the other stores' too.
    "missed_crawls": {"missed_crawl_rate": 0.2},
}


def scenario_configs(
    n_products: int = 300, days: int = 180
) -> list[tuple[str, RetailMarketConfig]]:
    """(name, config) of every scenario; seeds differ so scenarios are separate markets."""
    base = RetailMarketConfig(n_products=n_products, days=days)
    return [
        (name, replace(base, seed=1_000 + index, **knobs))  # type: ignore[arg-type]
        for index, (name, knobs) in enumerate(SCENARIOS.items())
    ]
