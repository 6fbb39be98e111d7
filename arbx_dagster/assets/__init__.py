"""Software-defined assets: raw prices → listings → matches → history → opportunities →
intelligence. Each asset is a thin wrapper over one ``arbx_dagster.pipeline`` stage."""

from arbx_dagster.assets.checks import ALL_CHECKS
from arbx_dagster.assets.history import price_history
from arbx_dagster.assets.ingestion import raw_prices
from arbx_dagster.assets.intelligence import intelligence_metrics
from arbx_dagster.assets.listings import normalized_listings
from arbx_dagster.assets.matching import match_model, product_matches
from arbx_dagster.assets.opportunities import opportunities

ALL_ASSETS = [
    raw_prices,
    normalized_listings,
    match_model,
    product_matches,
    price_history,
    opportunities,
    intelligence_metrics,
]

__all__ = ["ALL_ASSETS", "ALL_CHECKS"]
