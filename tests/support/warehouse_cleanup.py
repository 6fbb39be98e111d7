"""Emptying a shared test database of everything ArbX created in it."""

from __future__ import annotations

from arbx_dagster.storage.warehouse import Warehouse


def drop_arbx_schema(warehouse: Warehouse) -> None:
    """Drop every table of the warehouse's schema (and the audit log's sequence), so the
    next test that migrates it starts from nothing: no rows left behind, whatever tables
    later migrations add."""
    tables = warehouse.query(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
    )["table_name"].to_list()
    with warehouse.transaction():
        for table in tables:
            warehouse.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
        warehouse.execute("DROP SEQUENCE IF EXISTS audit_log_id_seq")
