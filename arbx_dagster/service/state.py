"""Everything a request handler needs, built once per app (one per worker process)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Request

from arbx_dagster.ingestion.sources import SourcesConfig
from arbx_dagster.service.audit import Auditor
from arbx_dagster.service.auth import KeyRing
from arbx_dagster.service.config import ServiceSettings
from arbx_dagster.service.dagster_api import DagsterClient
from arbx_dagster.service.db import Database
from arbx_dagster.service.metrics import Metrics
from arbx_dagster.service.ratelimit import RateLimiter
from arbx_dagster.service.run_control import RunWatcher
from arbx_dagster.service.sse import Broadcaster
from arbx_dagster.storage.cache import Cache
from arbx_dagster.storage.event_log import EventLog


@dataclass
class ServiceState:
    settings: ServiceSettings
    db: Database
    cache: Cache
    events: EventLog
    broadcaster: Broadcaster
    keys: KeyRing
    limiter: RateLimiter
    auditor: Auditor
    metrics: Metrics
    dagster: DagsterClient
    watcher: RunWatcher
    _sources: SourcesConfig | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def sources(self) -> SourcesConfig:
        """sources.yaml, loaded on first use (its errors surface on the webhook, not at boot)."""
        if self._sources is None:
            from arbx_dagster.resources.sources import resolve_sources

            configured = self.settings.base.sources
            self._sources = resolve_sources(str(configured) if configured else None)
        return self._sources


async def get_state(request: Request) -> ServiceState:
    """A coroutine on purpose: FastAPI runs plain-function dependencies in a thread."""
    return request.app.state.arbx
