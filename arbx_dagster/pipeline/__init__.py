"""The pipeline's stages as plain functions: read the warehouse, call the domain, write back.

Each stage is what one Dagster asset runs (``arbx_dagster.assets`` only adds metadata and
scheduling around it), and what benchmarks and the CLI call directly.
"""
