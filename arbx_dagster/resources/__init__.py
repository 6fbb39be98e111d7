"""Dagster resources, configured from the environment (see ``arbx_dagster.settings``)."""

from arbx_dagster.resources.alerts import AlertsResource
from arbx_dagster.resources.cache import CacheResource
from arbx_dagster.resources.clock import ClockResource
from arbx_dagster.resources.sources import SourcesResource
from arbx_dagster.resources.warehouse import WarehouseResource

__all__ = [
    "AlertsResource",
    "CacheResource",
    "ClockResource",
    "SourcesResource",
    "WarehouseResource",
]
