"""Connectors: one interface (:class:`Connector`), four kinds, built from ``sources.yaml``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime

import httpx
from pydantic import TypeAdapter

from arbx_dagster.ingestion.archive import Archive, ArchivedRun
from arbx_dagster.ingestion.circuit import CircuitBreaker
from arbx_dagster.ingestion.connectors.base import (
    Connector,
    FetchBatch,
    FetchMode,
    FetchRequest,
    IngestionError,
    KnownListing,
    concat_batches,
)
from arbx_dagster.ingestion.connectors.file_drop import DroppedFile, FileDropConnector, ReadyFiles
from arbx_dagster.ingestion.connectors.html import HtmlConnector
from arbx_dagster.ingestion.connectors.http_json import HttpJsonConnector
from arbx_dagster.ingestion.connectors.simulator import SimulatorConnector
from arbx_dagster.ingestion.http import RetailerHttp
from arbx_dagster.ingestion.ratelimit import TokenBucket
from arbx_dagster.ingestion.sources import (
    FileDropSource,
    HtmlSource,
    HttpJsonSource,
    SimulatorSource,
    Source,
)
from arbx_dagster.storage.cache import Cache, MemoryCache, shared_or_local

__all__ = [
    "Connector",
    "DroppedFile",
    "FetchBatch",
    "FetchMode",
    "FetchRequest",
    "FileDropConnector",
    "HtmlConnector",
    "HttpJsonConnector",
    "IngestionError",
    "KnownListing",
    "ReadyFiles",
    "SimulatorConnector",
    "build_connector",
    "concat_batches",
    "parser_for",
    "replay_day",
    "replay_run",
]


def build_connector(
    source: HttpJsonSource | HtmlSource | FileDropSource | SimulatorSource,
    cache: Cache | None = None,
    archive: Archive | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    now: datetime | None = None,
) -> Connector:
    """The connector for one source. HTTP connectors share their rate limit and circuit
    breaker through ``cache`` (Redis when configured; in-process otherwise) and fetch through
    the source's ``client`` (``transport`` replaces the network of an httpx client, in tests)."""
    if isinstance(source, HttpJsonSource | HtmlSource):
        cache = shared_or_local(cache) if cache is not None else MemoryCache()
        limiter = TokenBucket(
            cache,
            source.name,
            source.rate_limit.requests_per_second,
            source.rate_limit.burst,
            sleep=sleep,
        )
        breaker = CircuitBreaker(
            cache,
            source.name,
            failure_threshold=source.circuit_breaker.failure_threshold,
            cooldown_seconds=source.circuit_breaker.cooldown_seconds,
        )
        http = RetailerHttp(
            source.name,
            timeout_seconds=source.timeout_seconds,
            retry=source.retry,
            limiter=limiter,
            breaker=breaker,
            client=source.client,
            user_agent=source.user_agent,
            headers=source.headers,
            max_connections=source.max_connections,
            transport=transport,
            sleep=sleep,
            rng=rng,
        )
        kind = HttpJsonConnector if isinstance(source, HttpJsonSource) else HtmlConnector
        return kind(source, http, archive)
    if isinstance(source, FileDropSource):
        return FileDropConnector(source, archive)
    if isinstance(source, SimulatorSource):
        return SimulatorConnector(source, archive, now=now)
    raise IngestionError(f"no connector for {type(source).__name__}")  # pragma: no cover


def parser_for(source: HttpJsonSource | HtmlSource | FileDropSource | SimulatorSource) -> Connector:
    """A connector that can only re-parse (no HTTP client, no archive writes)."""
    if isinstance(source, HttpJsonSource):
        return HttpJsonConnector(source, None)
    if isinstance(source, HtmlSource):
        return HtmlConnector(source, None)
    if isinstance(source, FileDropSource):
        return FileDropConnector(source)
    return SimulatorConnector(source, now=datetime.now(UTC))


_SOURCE = TypeAdapter(Source)


def replay_run(
    archive: Archive,
    run: ArchivedRun,
    *,
    config: HttpJsonSource | HtmlSource | FileDropSource | SimulatorSource | None = None,
    retailer: str | None = None,
) -> Iterator[FetchBatch]:
    """Re-parse one archived run with ``config`` (default: the definition it was fetched with)."""
    source = config if config is not None else _SOURCE.validate_python(run.header["config"])
    yield from parser_for(source).replay(run, archive, retailer)


def replay_day(
    archive: Archive,
    source: str,
    day: date,
    *,
    config: HttpJsonSource | HtmlSource | FileDropSource | SimulatorSource | None = None,
    retailer: str | None = None,
) -> Iterator[FetchBatch]:
    """Re-parse every payload archived for ``source`` on ``day``, without the network.

    ``config`` is the source definition to parse with (a fixed parser or mapping); by
    default each run is re-parsed with the definition it was fetched with.
    """
    for run in archive.runs(source, day):
        yield from replay_run(archive, run, config=config, retailer=retailer)
