"""Where ArbX keeps its state, read once from the environment.

Unset variables mean the embedded defaults: a DuckDB warehouse and a SQLite Dagster
instance under ``.arbx/`` and an in-process cache, so nothing needs a server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    postgres_url: str | None
    redis_url: str | None
    duckdb_path: Path
    dagster_home: Path

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("ARBX_HOME", ".arbx")).resolve()
        return cls(
            home=home,
            postgres_url=os.environ.get("ARBX_POSTGRES_URL") or None,
            redis_url=os.environ.get("ARBX_REDIS_URL") or None,
            duckdb_path=Path(os.environ.get("ARBX_DUCKDB_PATH", home / "warehouse.duckdb")),
            dagster_home=Path(os.environ.get("DAGSTER_HOME", home / "dagster_home")).resolve(),
        )

    @property
    def warehouse_engine(self) -> str:
        return "postgres" if self.postgres_url else "duckdb"
