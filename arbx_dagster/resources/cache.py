"""The cache as a Dagster resource: Redis when configured, in-process otherwise."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from arbx_dagster.settings import Settings
from arbx_dagster.storage.cache import Cache, open_cache
from arbx_dagster.storage.event_log import EventLog, event_log_for


class CacheResource(dg.ConfigurableResource):
    """Accelerator and coordination point (locks, dedup, event stream); never a store of record."""

    redis_url: str | None = Field(
        default=None, description="Redis URL (ARBX_REDIS_URL); unset = in-process cache"
    )
    prefix: str = Field(default="arbx:", description="Namespace for every key ArbX writes")
    home: str | None = Field(
        default=None,
        description="State folder (ARBX_HOME) for the event log without Redis; unset: the "
        "environment's at run time",
    )
    _cache: Cache | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._cache = open_cache(self.redis_url, self.prefix)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    @property
    def cache(self) -> Cache:
        if self._cache is None:
            self._cache = open_cache(self.redis_url, self.prefix)
        return self._cache

    def event_log(self) -> EventLog:
        """Where live events go: the Redis stream, else a file under the state folder."""
        home = Path(self.home) if self.home else Settings.from_env().home
        return event_log_for(self.cache, home)
