"""Presentation helpers shared by the Dagster metadata and the CLI (charts, tables)."""
