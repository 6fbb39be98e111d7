"""How raw prices are partitioned: one partition per market day and retailer."""

import os

import dagster as dg

from arbx_dagster.domain.history import MARKET_TZ
from arbx_dagster.resources.sources import resolve_sources

# First day a backfill can reach; override with ARBX_HISTORY_START (YYYY-MM-DD).
HISTORY_START = os.environ.get("ARBX_HISTORY_START", "2026-01-01")


# Every retailer an enabled source in sources.yaml covers.
RETAILERS = resolve_sources(os.environ.get("ARBX_SOURCES")).provided_retailers()

# Days in Chile (events start at Santiago midnight); ``end_offset=1`` includes today, which
# the tier schedules keep refreshing while it is still going on.
DAY_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=HISTORY_START, timezone=MARKET_TZ, end_offset=1
)
RETAILER_PARTITIONS = dg.StaticPartitionsDefinition(RETAILERS)
RAW_PRICE_PARTITIONS = dg.MultiPartitionsDefinition(
    {"day": DAY_PARTITIONS, "retailer": RETAILER_PARTITIONS}
)


def partition_key(day: str, retailer: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"day": day, "retailer": retailer})
