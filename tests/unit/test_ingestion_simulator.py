"""The simulator behind the connector interface: one batch per retailer and day, replayable."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest

from arbx_dagster.domain.history import market_day
from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.ingestion.archive import Archive
from arbx_dagster.ingestion.connectors import (
    Connector,
    FetchRequest,
    IngestionError,
    build_connector,
    concat_batches,
    replay_day,
)
from arbx_dagster.ingestion.records import BATCH_SCHEMA
from arbx_dagster.ingestion.sources_file import parse_sources

END = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
SOURCES = parse_sources(
    f"""
retailers:
  - name: simulator
    connector: simulator
    seed: 3
    n_products: 25
    days: 3
    end: {END.isoformat()}
"""
)


def test_one_batch_per_retailer_and_day(tmp_path: Path) -> None:
    connector = build_connector(SOURCES.get("simulator"), archive=Archive(tmp_path))
    assert isinstance(connector, Connector)
    batches = list(connector.fetch(FetchRequest(observed_at=NOW)))
    assert [(b.retailer, b.frame.height > 0) for b in batches[:3]] == [
        ("falabella", True),
        ("ripley", True),
        ("paris", True),
    ]
    assert len(batches) == 3 * 3
    for batch in batches:
        frame = batch.frame
        assert frame.schema == pl.Schema(BATCH_SCHEMA)
        assert frame["retailer"].unique().to_list() == [batch.retailer]
        assert frame.select(market_day(pl.col("observed_at"))).to_series().n_unique() == 1
        assert frame["source_location"].str.starts_with("simulator(seed=3)#row-").all()
        assert batch.stats.items_seen == frame.height
        result = validate_observations(frame, now=NOW)
        assert result.accepted.height + result.quarantined.height == frame.height


def test_a_day_and_a_retailer_replay_identically(tmp_path: Path) -> None:
    archive = Archive(tmp_path)
    connector = build_connector(SOURCES.get("simulator"), archive=archive)
    request = FetchRequest(retailer="paris", day=END, observed_at=NOW)
    [live] = connector.fetch(request)
    assert live.payloads and live.payloads[0].key is not None
    replayed, stats = concat_batches(replay_day(archive, "simulator", END, retailer="paris"))
    assert replayed.equals(live.frame)
    assert stats.rows == live.frame.height


def test_requests_outside_the_simulation_are_explicit() -> None:
    connector = build_connector(SOURCES.get("simulator"))
    [batch] = connector.fetch(FetchRequest(retailer="ripley", day=date(2026, 1, 1)))
    assert batch.frame.is_empty() and "outside the simulated window" in batch.stats.errors[0]
    with pytest.raises(IngestionError, match="does not simulate"):
        list(connector.fetch(FetchRequest(retailer="lider", day=END)))
