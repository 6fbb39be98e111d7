"""Listings written straight into a warehouse's ``listings`` table (no ingestion)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from arbx_dagster.domain.matching.incremental import listing_identities
from arbx_dagster.domain.schema import LISTING_SCHEMA, conform
from arbx_dagster.storage.warehouse import Warehouse


def load_listings(warehouse: Warehouse, listings: pl.DataFrame, now: datetime) -> None:
    """Replace the ``listings`` table with ``listings``, first and last seen ``now``."""
    columns = warehouse.query("SELECT * FROM listings LIMIT 0").columns
    frame = conform(listings, LISTING_SCHEMA)
    frame = frame.with_columns(
        first_seen=pl.lit(now),
        last_seen=pl.lit(now),
        updated_at=pl.lit(now),
        identity=listing_identities(frame)["identity"],  # as normalisation writes it
    )
    warehouse.replace("listings", frame.select([c for c in columns if c in frame.columns]))
