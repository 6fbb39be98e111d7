"""The one connector interface: requests, batches, and what every connector promises.

A connector turns a :class:`FetchRequest` into :class:`FetchBatch` es: one per raw payload
(a listing page with the product pages it led to, a dropped file, a simulated day). Each
batch carries rows in ``BATCH_SCHEMA`` (``RAW_PRICE_SCHEMA`` + ``source_location`` +
``parse_error``), the archived payloads it came from, and what the fetch did (stats). The
HTTP connectors share their crawl loop (``crawl.py``).

Rules every connector keeps:

* a failed fetch yields no price rows: the batch is empty and its stats say why;
* a malformed item is still a row (the validator quarantines it with its location);
* a listing asked for and not found is a ``missing`` row without prices — but only when
  every page was read, otherwise we cannot know, and the stats say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import polars as pl

from arbx_dagster.ingestion.archive import Archive, ArchivedRun, PayloadRef, market_day
from arbx_dagster.ingestion.records import (
    empty_batch_frame,
)
from arbx_dagster.ingestion.stats import FetchStats


class FetchMode(StrEnum):
    LISTING_PAGES = "listing_pages"  # category/search pages only: the cheap critical pass
    FULL = "full"  # also open each product page


@dataclass(frozen=True)
class KnownListing:
    """A listing a tier tracks, as the warehouse knows it (for URLs and missing rows)."""

    sku: str
    url: str | None = None
    name: str | None = None
    product_id: str | None = None


@dataclass(frozen=True)
class FetchRequest:
    """What to fetch. ``listings`` restricts a run to a tier's listings; ``day`` picks a
    partition for sources that hold history (simulator, dated file drops); ``paths`` names
    dropped files explicitly (a sensor's run)."""

    retailer: str | None = None
    mode: FetchMode = FetchMode.FULL
    listings: tuple[KnownListing, ...] | None = None
    observed_at: datetime | None = None
    day: date | None = None
    paths: tuple[str, ...] | None = None
    run_id: str | None = None

    @property
    def skus(self) -> frozenset[str] | None:
        return None if self.listings is None else frozenset(k.sku for k in self.listings)

    def at(self) -> datetime:
        """When the rows are observed (UTC): the request's time, else now."""
        moment = self.observed_at or datetime.now(UTC)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    def archive_day(self) -> date:
        return self.day or market_day(self.at())

    @classmethod
    def for_listings(cls, retailer: str, listings: pl.DataFrame, **kwargs: Any) -> FetchRequest:
        """A request for the listings of a frame with ``sku`` (and optional url/name/product_id)."""
        wanted = [c for c in ("sku", "url", "name", "product_id") if c in listings.columns]
        known = tuple(KnownListing(**row) for row in listings.select(wanted).iter_rows(named=True))
        return cls(retailer=retailer, listings=known, **kwargs)


@dataclass
class FetchBatch:
    source: str
    frame: pl.DataFrame  # BATCH_SCHEMA
    stats: FetchStats
    payloads: list[PayloadRef] = field(default_factory=list)
    location: str | None = None  # the main payload's URL or file path
    run_id: str | None = None
    retailer: str | None = None

    @property
    def payload_sha256(self) -> str | None:
        return self.payloads[0].sha256 if self.payloads else None


@runtime_checkable
class Connector(Protocol):
    """Everything the pipeline needs from a source, Dagster-free."""

    name: str

    def fetch(self, request: FetchRequest) -> Iterator[FetchBatch]:
        """Fetch live, archive every payload, yield one batch per payload."""
        ...

    def replay(
        self, run: ArchivedRun, archive: Archive, retailer: str | None = None
    ) -> Iterator[FetchBatch]:
        """Re-parse an archived run, without the network."""
        ...

    def close(self) -> None: ...


class IngestionError(RuntimeError):
    """A fetch could not run at all (bad request for this source, nothing to read)."""


def concat_batches(batches: Iterable[FetchBatch]) -> tuple[pl.DataFrame, FetchStats]:
    """All rows and total stats of a run (for callers that want one frame)."""
    frames, stats = [], []
    for batch in batches:
        frames.append(batch.frame)
        stats.append(batch.stats)
    frame = pl.concat(frames) if frames else empty_batch_frame()
    return frame, FetchStats.total(stats)
