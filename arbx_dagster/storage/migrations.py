"""Ordered, idempotent schema migrations from ``sql/``, recorded in ``schema_migrations``.

The migrations are package data (``arbx_dagster/sql``, a link to the repository's
top-level ``sql/``), so an installed package finds them without a checkout.

Files are named ``NNNN_description.sql`` and applied once each, in order, inside a
transaction. Every statement is written to be re-runnable (``IF NOT EXISTS``) and to
mean the same thing on DuckDB and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from arbx_dagster.storage.warehouse import Warehouse, WarehouseError

log = logging.getLogger(__name__)

SQL_DIR: Traversable = resources.files("arbx_dagster") / "sql"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self) -> list[str]:
        """Split on semicolons that end a line; migrations keep one statement per block."""
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.strip().startswith("--")
        )
        return [part.strip() for part in re.split(r";\s*(?:\n|$)", body) if part.strip()]


def discover(directory: Traversable = SQL_DIR) -> list[Migration]:
    if not directory.is_dir():
        raise WarehouseError(f"migrations folder not found: {directory}")
    migrations = []
    files = (entry for entry in directory.iterdir() if entry.name.endswith(".sql"))
    for path in sorted(files, key=lambda entry: entry.name):
        match = _NAME.match(path.name)
        if not match:
            raise WarehouseError(f"migration {path.name} must be named NNNN_description.sql")
        migrations.append(Migration(match[1], match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise WarehouseError(f"duplicate migration versions in {directory}")
    return migrations


def migrate(warehouse: Warehouse, directory: Traversable = SQL_DIR) -> list[str]:
    """Apply pending migrations; return the versions applied by this call."""
    migrations = discover(directory)
    with warehouse.transaction():
        if warehouse.engine == "postgres":
            # Serialise concurrent migrators (several workers starting at once).
            warehouse.execute("SELECT pg_advisory_xact_lock(727274)")
        warehouse.execute(_LEDGER)
        applied = dict(
            warehouse.query("SELECT version, checksum FROM schema_migrations").iter_rows()
        )
        newly_applied: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    log.warning(
                        "migration %s_%s changed after it was applied; write a new "
                        "migration instead of editing an applied one",
                        migration.version,
                        migration.name,
                    )
                continue
            for statement in migration.statements():
                warehouse.execute(statement)
            warehouse.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                [migration.version, migration.name, migration.checksum],
            )
            newly_applied.append(migration.version)
            log.info("applied migration %s_%s", migration.version, migration.name)
    return newly_applied


def current_version(warehouse: Warehouse) -> str | None:
    if not warehouse.table_exists("schema_migrations"):
        return None
    return warehouse.scalar("SELECT max(version) FROM schema_migrations")
