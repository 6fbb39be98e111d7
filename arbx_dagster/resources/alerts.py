"""Alerts as a Dagster resource: where they go, and one way to send them everywhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import dagster as dg
from pydantic import Field

from arbx_dagster.alerts import AlertDispatcher, channels_from_urls
from arbx_dagster.alerts.store import alert_memory
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.settings import Settings
from arbx_dagster.storage.cache import Cache
from arbx_dagster.storage.warehouse import Warehouse


class AlertsResource(dg.ConfigurableResource):
    """Every asset, check and sensor that alerts builds its dispatcher here, so that all
    share the channels and the memory of what was sent (Redis, else the warehouse: a
    cooldown holds across runs and sensor ticks alike)."""

    urls: str | None = Field(
        default=None,
        description="Apprise URLs, space or comma separated (ARBX_ALERT_URLS); unset: "
        "the environment's at run time",
    )

    def dispatcher(
        self,
        cache: Cache,
        warehouse: Warehouse,
        clock: Callable[[], datetime],
        *,
        thresholds: Thresholds | None = None,
    ) -> AlertDispatcher:
        urls = self.urls if self.urls is not None else Settings.from_env().alert_urls
        return AlertDispatcher(
            alert_memory(cache, warehouse), channels_from_urls(urls), clock, thresholds=thresholds
        )
