"""The warehouse as a Dagster resource: PostgreSQL when configured, DuckDB otherwise."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.warehouse import Warehouse, open_warehouse


class WarehouseResource(dg.ConfigurableResource):
    """ArbX's tables. Opens one connection per run and applies pending migrations first."""

    postgres_url: str | None = Field(
        default=None, description="PostgreSQL URL (ARBX_POSTGRES_URL); unset = embedded DuckDB"
    )
    duckdb_path: str = Field(
        default=".arbx/warehouse.duckdb", description="DuckDB file used when no URL is set"
    )
    _warehouse: Warehouse | None = PrivateAttr(default=None)

    @property
    def engine(self) -> str:
        return "postgres" if self.postgres_url else "duckdb"

    def open(self) -> Warehouse:
        """A fresh, migrated connection (the caller closes it)."""
        warehouse = open_warehouse(self.postgres_url, self.duckdb_path)
        try:
            migrate(warehouse)
        except BaseException:
            warehouse.close()
            raise
        return warehouse

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._warehouse = self.open()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warehouse is not None:
            self._warehouse.close()
            self._warehouse = None

    @property
    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            self._warehouse = self.open()
        return self._warehouse
