"""Ingestion, Dagster-free: sources.yaml, connectors, polite HTTP, and the raw-payload archive.

Entry points for the orchestration layer::

    sources = load_sources(path)                   # a sources.yaml
    archive = Archive.from_config(sources.archive)
    connector = build_connector(sources.get("falabella"), cache, archive)
    for batch in connector.fetch(FetchRequest(mode=FetchMode.LISTING_PAGES, listings=…)):
        validate_observations(batch.frame, now=…)   # bad rows -> quarantine, with location
    replay_day(archive, "falabella", day)          # re-parse a day without the network
    FileDropConnector.ready_files(cursor)          # what a sensor polls
"""

from arbx_dagster.ingestion.archive import Archive, ArchivedRun, PayloadRef, market_day
from arbx_dagster.ingestion.circuit import CircuitBreaker, CircuitOpenError
from arbx_dagster.ingestion.connectors import (
    Connector,
    DroppedFile,
    FetchBatch,
    FetchMode,
    FetchRequest,
    FileDropConnector,
    IngestionError,
    KnownListing,
    ReadyFiles,
    SimulatorConnector,
    build_connector,
    concat_batches,
    parser_for,
    replay_day,
    replay_run,
)
from arbx_dagster.ingestion.http import FetchFailed, RetailerHttp, parse_retry_after
from arbx_dagster.ingestion.prices import PriceParseError, parse_clp
from arbx_dagster.ingestion.ratelimit import TokenBucket
from arbx_dagster.ingestion.records import BATCH_SCHEMA
from arbx_dagster.ingestion.sources import SourcesConfig
from arbx_dagster.ingestion.sources_file import SourcesError, load_sources, parse_sources
from arbx_dagster.ingestion.stats import FetchStats

__all__ = [
    "BATCH_SCHEMA",
    "Archive",
    "ArchivedRun",
    "CircuitBreaker",
    "CircuitOpenError",
    "Connector",
    "DroppedFile",
    "FetchBatch",
    "FetchFailed",
    "FetchMode",
    "FetchRequest",
    "FetchStats",
    "FileDropConnector",
    "IngestionError",
    "KnownListing",
    "PayloadRef",
    "PriceParseError",
    "ReadyFiles",
    "RetailerHttp",
    "SimulatorConnector",
    "SourcesConfig",
    "SourcesError",
    "TokenBucket",
    "build_connector",
    "concat_batches",
    "load_sources",
    "market_day",
    "parse_clp",
    "parse_retry_after",
    "parse_sources",
    "parser_for",
    "replay_day",
    "replay_run",
]
