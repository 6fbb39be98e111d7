"""How raw prices are partitioned: one partition per market day and retailer.

Retailers are *dynamic* partitions: whatever sources.yaml provides — a new folder in a
landing folder, a store added to the file — becomes a partition while Dagster runs, with no
code-location reload. The file-drop sensor adds the retailer of a file it sees, the
``retailer_partitions`` sensor the retailers sources.yaml provides, and the CLI both before
it runs anything (:func:`add_retailers`).
"""

from collections.abc import Iterable

import dagster as dg

from arbx_dagster.domain.history import MARKET_TZ
from arbx_dagster.domain.schema import RETAILER_PARTITIONS_NAME
from arbx_dagster.settings import settings

# First day a backfill can reach; override with ARBX_HISTORY_START (YYYY-MM-DD).
HISTORY_START = settings().history_start.isoformat()
RETAILER = RETAILER_PARTITIONS_NAME  # the dynamic partitions' name, and the dimension's

# Days in Chile (events start at Santiago midnight); ``end_offset=1`` includes today, which
# the tier schedules keep refreshing while it is still going on.
DAY_PARTITIONS = dg.DailyPartitionsDefinition(
    start_date=HISTORY_START, timezone=MARKET_TZ, end_offset=1
)
RETAILER_PARTITIONS = dg.DynamicPartitionsDefinition(name=RETAILER)
RAW_PRICE_PARTITIONS = dg.MultiPartitionsDefinition(
    {"day": DAY_PARTITIONS, RETAILER: RETAILER_PARTITIONS}
)


def partition_key(day: str, retailer: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"day": day, RETAILER: retailer})


def partition_retailers(instance: dg.DagsterInstance) -> list[str]:
    """The retailer partitions the instance knows, in the order partition ranges follow."""
    return list(instance.get_dynamic_partitions(RETAILER))


def missing_retailers(instance: dg.DagsterInstance, retailers: Iterable[str]) -> list[str]:
    """``retailers`` that are not partitions yet, in the order given (once each)."""
    known = set(partition_retailers(instance))
    return list(dict.fromkeys(r for r in retailers if r not in known))


def add_retailers(instance: dg.DagsterInstance, retailers: Iterable[str]) -> list[str]:
    """Make ``retailers`` partitions (those not yet one); returns every retailer partition."""
    missing = missing_retailers(instance, retailers)
    if missing:
        instance.add_dynamic_partitions(RETAILER, missing)
    return partition_retailers(instance)
