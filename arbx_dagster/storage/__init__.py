"""Dagster-free storage: the warehouse (DuckDB or PostgreSQL), its migrations, the cache."""
