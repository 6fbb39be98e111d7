"""Everything ArbX reads from its environment, typed, in one place.

Only the top layers (the CLI, the service, ``definitions.py`` and its resources and
automation) build a :class:`Settings`; everything below takes what it needs as arguments.
Unset variables mean the embedded defaults: a DuckDB warehouse and a SQLite Dagster
instance under ``.arbx/`` and an in-process cache, so nothing needs a server.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """``ARBX_*`` variables (``ARBX_HOME`` → ``home``) and ``DAGSTER_HOME``; an empty
    variable counts as unset."""

    model_config = SettingsConfigDict(
        env_prefix="ARBX_", env_ignore_empty=True, frozen=True, extra="ignore"
    )

    # where state lives
    home: Path = Field(default=Path(".arbx"), description="State folder (ARBX_HOME)")
    postgres_url: str | None = Field(default=None, description="Warehouse + Dagster storage")
    redis_url: str | None = Field(default=None, description="Cache, locks, events")
    redis_prefix: str = Field(default="arbx:", description="Namespace of every Redis key")
    duckdb_path: Path | None = Field(default=None, description="Embedded warehouse file")
    dagster_home: Path | None = Field(
        default=None, validation_alias=AliasChoices("DAGSTER_HOME", "dagster_home")
    )
    sources: Path | None = Field(default=None, description="sources.yaml (ARBX_SOURCES)")
    # the pipeline
    as_of: str | None = Field(default=None, description="Pinned 'now' (ISO 8601)")
    market_events: str | None = Field(
        default=None, description="The market's event calendar: JSON text or a JSON file"
    )
    alert_urls: str | None = Field(default=None, description="Apprise URLs for alerts")
    history_start: date = date(2026, 1, 1)
    match_workers: int | None = Field(default=None, ge=1, description="default: every core")
    match_shards: int = Field(default=1, ge=1)
    step_executor: str = Field(default="", description="'in_process': a run's steps in it")
    # automation
    automation: bool = Field(default=False, description="Automation sensors start RUNNING")
    # Each look is a share of the latency from a price landing to its alert (see
    # `arbx bench freshness --daemon`); a look costs the daemon well under a second.
    automation_interval_seconds: int = Field(default=15, ge=1)
    file_drop_interval_seconds: int = Field(default=10, ge=1)
    run_retention_days: int = Field(default=30, ge=1)

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        home = self.home.resolve()
        object.__setattr__(self, "home", home)
        if self.duckdb_path is None:
            object.__setattr__(self, "duckdb_path", home / "warehouse.duckdb")
        dagster_home = self.dagster_home or home / "dagster_home"
        object.__setattr__(self, "dagster_home", dagster_home.resolve())
        return self

    @classmethod
    def from_env(cls) -> Settings:
        """What the environment says now (the CLI and tests, which change it)."""
        return cls()

    @property
    def warehouse_engine(self) -> str:
        return "postgres" if self.postgres_url else "duckdb"


@functools.cache
def settings() -> Settings:
    """The process's settings, read once (``definitions.py`` and what it builds)."""
    return Settings()
