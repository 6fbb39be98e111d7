"""Stage 1: land raw price observations (validated; bad rows quarantined, never lost).

A raw-prices partition is one market day of one retailer. Today's partition is fetched
live (a tier run refreshes the listings of its tier; every payload is archived); a past
day is rebuilt from the archive, or from the source's own history (dated exports, the
simulator) when nothing was archived — and then *replaces* that day's rows, so re-running
a partition never duplicates anything.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from arbx_dagster.domain.history import MARKET_TZ, day_of
from arbx_dagster.domain.quality import NO_PRICE, validate_observations
from arbx_dagster.domain.schema import RAW_PRICE_KEY, RAW_PRICE_SCHEMA
from arbx_dagster.ingestion.archive import Archive
from arbx_dagster.ingestion.connectors import (
    Connector,
    FetchBatch,
    FetchMode,
    FetchRequest,
    FileDropConnector,
    build_connector,
    concat_batches,
    replay_day,
)
from arbx_dagster.ingestion.records import unpriced
from arbx_dagster.ingestion.sources import Source, SourcesConfig
from arbx_dagster.ingestion.stats import FetchStats
from arbx_dagster.pipeline.report import StageReport
from arbx_dagster.storage.cache import Cache, CacheError, LockNotAcquired
from arbx_dagster.storage.settings_store import read_thresholds
from arbx_dagster.storage.warehouse import Warehouse

log = logging.getLogger(__name__)

# Re-ingesting a row refreshes everything but the moment it first landed.
_UPDATABLE = [c for c in RAW_PRICE_SCHEMA if c not in RAW_PRICE_KEY] + ["run_id"]

# The cheap pass (prices from category/search pages only) is for the most frequent tier.
MODE_BY_TIER = {"critical": FetchMode.LISTING_PAGES}
# Tiers that refresh only their own listings; the tracking run walks the whole catalogue
# (so it also discovers new listings).
TARGETED_TIERS = ("critical", "important")
# A live scrape holds its retailer's lease (renewed while it runs); another run waits
# this long for it before failing retryably.
SCRAPE_LEASE_SECONDS = 120.0
SCRAPE_WAIT_SECONDS = 20 * 60.0


class IngestionFailed(RuntimeError):
    """A partition cannot be trusted (layout change, every fetch failed): fail loudly.

    ``retryable`` says whether trying again soon may help: an outage may pass, a parser
    that no longer fits the page stays broken until someone fixes the mapping.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class PartitionRequest:
    day: date
    retailer: str
    tier: str | None = None  # None: the whole catalogue
    paths: tuple[str, ...] | None = None  # files a sensor picked up from a landing folder


@dataclass(frozen=True)
class FetchedPartition:
    frame: pl.DataFrame  # BATCH_SCHEMA rows (observations + where they came from)
    stats: FetchStats
    how: str  # live (today), history (a past day, rebuilt), files (a sensor's drop)
    sources: tuple[str, ...]


def day_window(day: date) -> tuple[datetime, datetime]:
    """The UTC instants bounding one market (Santiago) day."""
    tz = ZoneInfo(MARKET_TZ)
    start = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
    return start, datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)


def tier_listings(warehouse: Warehouse, retailer: str, tier: str) -> pl.DataFrame:
    """The listings a tier currently owns at a retailer (from the intelligence stage)."""
    return warehouse.query(
        "SELECT l.sku, l.url, l.name, l.product_id FROM listing_tiers AS t "
        "JOIN listings AS l ON l.retailer = t.retailer AND l.sku = t.sku "
        "WHERE t.retailer = $1 AND t.tier = $2 ORDER BY l.sku",
        [retailer, tier],
    )


@contextmanager
def open_connectors(
    sources: SourcesConfig, cache: Cache, archive: Archive, *, now: datetime
) -> Iterator[dict[str, Connector]]:
    """One connector per enabled source for a whole run (pooled clients, one simulated
    market), closed at the end."""
    connectors = {s.name: build_connector(s, cache, archive, now=now) for s in sources.enabled()}
    try:
        yield connectors
    finally:
        for connector in connectors.values():
            connector.close()


@contextmanager
def exclusive_live_scrape(cache: Cache, request: PartitionRequest, now: datetime) -> Iterator[None]:
    """One live scrape of a retailer at a time, whoever launched it.

    Run tags keep single-partition runs apart (``dagster/partition/retailer``), but a
    backfill run spanning several partitions carries no retailer tag; this lease, shared
    through Redis, keeps such a run from scraping a store while a tier run does. Without a
    reachable cache there is nothing to share: the scrape goes ahead (the cache is an
    accelerator, never a precondition).
    """
    if request.paths is not None or request.day < day_of(now):
        yield  # replays and dropped files read no store
        return
    with ExitStack() as held:
        try:
            held.enter_context(
                cache.lock(
                    f"scrape:{request.retailer}",
                    ttl_seconds=SCRAPE_LEASE_SECONDS,
                    wait_seconds=SCRAPE_WAIT_SECONDS,
                    keep_alive=True,
                    poll_seconds=1.0,
                )
            )
        except LockNotAcquired:
            raise IngestionFailed(
                f"another run has been scraping {request.retailer} for over "
                f"{SCRAPE_WAIT_SECONDS / 60:.0f} min; try again when it finishes",
                retryable=True,
            ) from None
        except CacheError as exc:
            log.warning("scraping %s without its lease: %s", request.retailer, exc)
        yield


def fetch_partition(
    sources: SourcesConfig,
    connectors: dict[str, Connector],
    archive: Archive,
    request: PartitionRequest,
    *,
    now: datetime,
    run_id: str | None = None,
    listings: pl.DataFrame | None = None,
) -> FetchedPartition:
    """Gather one partition's observations from every enabled source of the retailer."""
    live = request.day >= day_of(now)
    how = "files" if request.paths is not None else "live" if live else "history"
    batches: list[FetchBatch] = []
    used: list[str] = []
    for source in sources.sources_for(request.retailer):
        connector = connectors[source.name]
        if how == "files":
            found = list(_dropped_files(connector, request, now, run_id))
        elif how == "live":
            found = list(_live(connector, request, now, run_id, listings))
        else:
            found = list(_history(connector, source, archive, request, now, run_id))
        if found:
            used.append(source.name)
            batches.extend(found)
    frame, stats = concat_batches(batches)
    return FetchedPartition(frame, stats, how, tuple(used))


def _dropped_files(
    connector: Connector, request: PartitionRequest, now: datetime, run_id: str | None
) -> Iterator[FetchBatch]:
    """A sensor's run: exactly the files it picked up, from the landing folder."""
    if isinstance(connector, FileDropConnector):
        yield from connector.fetch(
            FetchRequest(
                retailer=request.retailer,
                paths=request.paths,
                observed_at=now,
                day=request.day,
                run_id=run_id,
            )
        )


def _live(
    connector: Connector,
    request: PartitionRequest,
    now: datetime,
    run_id: str | None,
    listings: pl.DataFrame | None,
) -> Iterator[FetchBatch]:
    """Today: scrape now; a landing folder gives today's files (the sensor ingests each as
    it lands; a run for today — a backfill, the CLI — reads them all again, which changes
    nothing: a file's rows keep the time it was written)."""
    if isinstance(connector, FileDropConnector):
        yield from connector.fetch(
            FetchRequest(retailer=request.retailer, day=request.day, observed_at=now, run_id=run_id)
        )
        return
    mode = MODE_BY_TIER.get(request.tier or "", FetchMode.FULL)
    common = {"mode": mode, "observed_at": now, "day": request.day, "run_id": run_id}
    if request.tier in TARGETED_TIERS:
        if listings is None or listings.is_empty():
            return  # nothing assigned to this tier yet
        yield from connector.fetch(FetchRequest.for_listings(request.retailer, listings, **common))
    else:
        yield from connector.fetch(FetchRequest(retailer=request.retailer, **common))


def _history(
    connector: Connector,
    source: Source,
    archive: Archive,
    request: PartitionRequest,
    now: datetime,
    run_id: str | None,
) -> Iterator[FetchBatch]:
    """A past day, parsed with the source's *current* definition (so a corrected mapping
    takes effect): a landing folder's files of that day as they are now, plus the archived
    copies of that day's files no longer there (the latest copy of each); for other sources
    what was archived for the retailer, else the source's own history of that day (a
    source's archive may hold other retailers' payloads only)."""
    replayed = replay_day(
        archive, connector.name, request.day, config=source, retailer=request.retailer
    )
    fetch = FetchRequest(retailer=request.retailer, day=request.day, observed_at=now, run_id=run_id)
    if isinstance(connector, FileDropConnector):
        present = {f.relpath for f in connector.files() if f.day == request.day}
        gone = latest_per_location(b for b in replayed if b.location not in present)
        yield from (b for b in gone if not b.frame.is_empty())
        if present:
            yield from connector.fetch(fetch)
        return
    found = [batch for batch in replayed if not batch.frame.is_empty()]
    if found:
        yield from found
        return
    yield from connector.fetch(fetch)


def latest_per_location(batches: Iterable[FetchBatch]) -> list[FetchBatch]:
    """The last batch of each file path: a file dropped again (corrected) replaces the
    earlier copy, whichever run archived it."""
    latest: dict[str | None, FetchBatch] = {}
    for batch in batches:  # replayed oldest run first
        latest[batch.location] = batch
    return list(latest.values())


def check_fetch(fetched: FetchedPartition) -> None:
    """Raise when the partition cannot be trusted instead of quietly landing nothing."""
    stats = fetched.stats
    problem = stats.layout_problem()
    if problem:
        detail = f" ({'; '.join(stats.errors[:2])})" if stats.errors else ""
        raise IngestionFailed(
            f"layout change suspected: {problem}{detail}{_why(fetched.frame)}; fix the "
            "source in sources.yaml (its columns / fields and currency; `arbx sources "
            "check` shows what a fix changes without storing anything), then re-run the "
            "partition: a re-run parses again with the current sources.yaml",
            retryable=False,
        )
    if stats.pages_failed and fetched.frame.is_empty():
        raise IngestionFailed(
            f"every fetch failed ({stats.pages_failed} pages): " + "; ".join(stats.errors[:3]),
            retryable=True,
        )


TOP_PROBLEMS = 3


def _why(frame: pl.DataFrame) -> str:
    """The most frequent reasons rows could not be read, each with a sample row's place."""
    if frame.is_empty():
        return ""
    problems = (
        frame.with_columns(
            problem=pl.coalesce(
                pl.col("parse_error"),
                pl.when(pl.col("sku").is_null()).then(pl.lit("no sku")),
                pl.when(pl.col("name").is_null()).then(pl.lit("no name")),
                pl.when(unpriced()).then(pl.lit("no price")),
            )
        )
        .filter(pl.col("problem").is_not_null())
        .group_by("problem")
        .agg(rows=pl.len(), sample=pl.col("source_location").first())
        .sort("rows", "problem", descending=[True, False])
        .head(TOP_PROBLEMS)
    )
    listed = [f"{p} x{n} (e.g. {at})" for p, n, at in problems.iter_rows()]
    return f"; most common: {'; '.join(listed)}" if listed else ""


def _nothing_landed_where(warehouse: Warehouse, rows: pl.DataFrame) -> bool:
    """Whether ``raw_prices`` holds no row of these retailers between the rows' first and
    last observation (a replaced partition, once deleted, or the day's first scrape)."""
    spans = rows.group_by("retailer").agg(
        first=pl.col("observed_at").min(), last=pl.col("observed_at").max()
    )
    return not any(
        warehouse.scalar(
            "SELECT count(*) FROM (SELECT 1 FROM raw_prices WHERE retailer = $1 "
            "AND observed_at >= $2 AND observed_at <= $3 LIMIT 1) AS found",
            [retailer, first, last],
        )
        for retailer, first, last in spans.iter_rows()
    )


def ingest_observations(
    warehouse: Warehouse,
    observations: pl.DataFrame,
    *,
    now: datetime,
    run_id: str | None = None,
    source_location: str = "row",
    replace: tuple[str, date] | None = None,
) -> StageReport:
    """Validate and land observations; fetched == stored + quarantined + repeated, always.

    Rows are validated in the market's currency (the ``currency`` setting). ``replace=
    (retailer, day)`` makes the rows the complete truth for that partition: the day's
    previous rows of that retailer are deleted in the same transaction.
    """
    result = validate_observations(
        observations,
        now=now,
        source_location=source_location,
        currency=read_thresholds(warehouse).currency,
    )
    accepted = result.accepted.with_columns(
        ingested_at=pl.lit(now).cast(RAW_PRICE_SCHEMA["observed_at"]),
        run_id=pl.lit(run_id, dtype=pl.String),
    )
    quarantined = result.quarantined.with_columns(run_id=pl.lit(run_id, dtype=pl.String))
    with warehouse.transaction():
        if replace is not None:
            retailer, day = replace
            start, end = day_window(day)
            warehouse.execute(
                "DELETE FROM raw_prices WHERE retailer = $1 AND observed_at >= $2 "
                "AND observed_at < $3",
                [retailer, start, end],
            )
        if _nothing_landed_where(warehouse, accepted):  # a new window: no key can clash
            warehouse.append_new("raw_prices", accepted, RAW_PRICE_KEY)
        else:
            warehouse.upsert("raw_prices", accepted, RAW_PRICE_KEY, update=_UPDATABLE)
        warehouse.upsert("quarantine", quarantined, ["record_hash"])
        if run_id is not None:
            warehouse.insert("ingest_runs", _run_counts(run_id, now, accepted, quarantined))
    per_retailer = dict(accepted.group_by("retailer").len().sort("retailer").iter_rows())
    return StageReport(
        rows=accepted.height,
        counts={
            "fetched": observations.height,
            "stored": accepted.height,
            "quarantined": quarantined.height,
            "repeated": result.repeated,
            "missing": int((accepted["fetch_status"] == "missing").sum()),
            "quarantine_reasons": result.reasons,
            "per_retailer": per_retailer,
            "listings": accepted.select("retailer", "sku").n_unique(),
        },
        preview=accepted.sort("observed_at", descending=True).head(10),
    )


def _run_counts(
    run_id: str, now: datetime, accepted: pl.DataFrame, quarantined: pl.DataFrame
) -> pl.DataFrame:
    """One ``ingest_runs`` row: what this call landed for the run."""
    unpriced = int((quarantined["reason"] == NO_PRICE).sum())
    return pl.DataFrame(
        {
            "run_id": [run_id],
            "ingested_at": [now],
            "stored": [accepted.height],
            "quarantined": [quarantined.height - unpriced],
            "unpriced": [unpriced],
        },
        schema={
            "run_id": pl.String(),
            "ingested_at": RAW_PRICE_SCHEMA["observed_at"],
            "stored": pl.Int64(),
            "quarantined": pl.Int64(),
            "unpriced": pl.Int64(),
        },
    )


def partition_rows(warehouse: Warehouse, retailer: str, day: date) -> int:
    """Rows stored for one retailer on one market day: a raw-price partition's size."""
    start, end = day_window(day)
    return int(
        warehouse.scalar(
            "SELECT count(*) FROM raw_prices WHERE retailer = $1 AND observed_at >= $2 "
            "AND observed_at < $3",
            [retailer, start, end],
        )
    )


def ingest_partition(
    warehouse: Warehouse,
    fetched: FetchedPartition,
    request: PartitionRequest,
    *,
    now: datetime,
    run_id: str | None = None,
) -> StageReport:
    """Land one fetched partition: history replaces its day, live data accumulates."""
    check_fetch(fetched)
    rebuilt = fetched.how == "history"
    frame = fetched.frame
    if rebuilt:
        # A day's rebuild only speaks for that day (replays may carry neighbours).
        start, end = day_window(request.day)
        frame = frame.filter(
            pl.col("observed_at").is_null()
            | pl.col("observed_at").is_between(start, end, closed="left")
        )
    report = ingest_observations(
        warehouse,
        frame,
        now=now,
        run_id=run_id,
        source_location=f"{request.retailer}/{request.day}",
        replace=(request.retailer, request.day) if rebuilt else None,
    )
    report.counts.update(
        retailer=request.retailer,
        day=request.day.isoformat(),
        how=fetched.how,
        sources=list(fetched.sources),
        fetch=fetched.stats.as_metadata(),
        nothing_stored=nothing_stored(request, fetched, report),
        partition_rows=partition_rows(warehouse, request.retailer, request.day),
    )
    if report.counts["nothing_stored"]:
        log.warning("%s", report.counts["nothing_stored"])
    return report


def nothing_stored(
    request: PartitionRequest, fetched: FetchedPartition, report: StageReport
) -> str:
    """Why a partition stored no row, and what to do — or '' when rows landed (or a tier run
    had nothing to refresh yet). A run that lands nothing must say so, never pass quietly."""
    if report.rows or (request.tier in TARGETED_TIERS and not fetched.stats.pages):
        return ""
    where = f"{request.retailer} {request.day}"
    if report.counts["fetched"]:
        reasons = report.counts["quarantine_reasons"]
        top = "; ".join(f"{reason} x{n}" for reason, n in list(reasons.items())[:3])
        return (
            f"{where}: all {report.counts['fetched']} rows were quarantined ({top}); "
            "`arbx sources check` shows each reason with a sample row"
        )
    said = "; ".join(fetched.stats.errors[:2])
    return (
        f"{where}: no source had rows for it{f' ({said})' if said else ''}. A landing "
        "folder's file belongs to the day its name dates (walmart/2026-12-01.csv), else to "
        "the day it was written; a past day without such a file replays the archive"
    )


# What a run's metadata adds up per partition and per retailer: rows, then what the fetch did.
ROW_COUNTS = ("fetched", "stored", "quarantined", "repeated", "missing", "listings")
FETCH_COUNTS = ("pages", "pages_failed", "http_errors", "retries")
TOP_REASONS = 5


@dataclass(frozen=True)
class IngestSummary:
    """A run's landed partitions added up (for materialization metadata)."""

    total: StageReport  # the run's totals, under the usual stage keys
    partitions: pl.DataFrame  # one row per partition
    retailers: dict[str, dict[str, Any]]  # per retailer: sums, top quarantine reasons, statuses
    quarantine_reasons: dict[str, int]  # the run's most frequent reasons, most frequent first


def summarize_partitions(reports: Mapping[str, StageReport]) -> IngestSummary:
    """Totals, one row per partition and one entry per retailer of a run's reports."""
    partitions = pl.DataFrame(
        [
            {
                "partition": key,
                "retailer": report.counts["retailer"],
                "how": report.counts["how"],
                "partition_rows": report.counts["partition_rows"],
                **{name: report.counts[name] for name in ROW_COUNTS},
                **{name: report.counts["fetch"][name] for name in FETCH_COUNTS},
                "duration_seconds": float(report.counts["fetch"]["duration_seconds"]),
            }
            for key, report in sorted(reports.items())
        ],
        schema={
            "partition": pl.String,
            "retailer": pl.String,
            "how": pl.String,
            "partition_rows": pl.Int64,
            **dict.fromkeys((*ROW_COUNTS, *FETCH_COUNTS), pl.Int64),
            "duration_seconds": pl.Float64,
        },
    )
    summed = [*ROW_COUNTS, *FETCH_COUNTS, "duration_seconds"]
    per_retailer = (
        partitions.group_by("retailer")
        .agg(pl.len().alias("partitions"), pl.col(summed).sum())
        .with_columns(pl.col("duration_seconds").round(2))
    )
    retailers: dict[str, dict[str, Any]] = {}
    for row in per_retailer.sort("retailer").iter_rows(named=True):
        retailer = row.pop("retailer")
        own = [r.counts for r in reports.values() if r.counts["retailer"] == retailer]
        retailers[retailer] = {
            **row,
            "top_quarantine_reasons": _top(c["quarantine_reasons"] for c in own),
            "status_counts": _top((c["fetch"]["status_counts"] for c in own), limit=None),
        }
    totals = partitions.select(pl.col(summed).sum()).row(0, named=True)
    total = StageReport(
        rows=int(totals["stored"]),
        counts={**totals, "duration_seconds": round(totals["duration_seconds"], 2)},
    )
    reasons = _top((r.counts["quarantine_reasons"] for r in reports.values()), limit=10)
    return IngestSummary(total, partitions, retailers, reasons)


def _top(counters: Iterable[Mapping[str, int]], limit: int | None = TOP_REASONS) -> dict[str, int]:
    """Counters added up, most frequent first (``limit`` of them)."""
    total: Counter[str] = Counter()
    for counter in counters:
        total.update(counter)
    return dict(total.most_common(limit))


def refetch_listings(
    sources: SourcesConfig,
    connectors: dict[str, Connector],
    wanted: pl.DataFrame,
    *,
    now: datetime,
    run_id: str | None = None,
) -> pl.DataFrame:
    """Fetch ``wanted`` listings (``retailer, sku`` and their ``url``) again, now, product
    pages included: how severe glitches are confirmed before anyone is alerted."""
    batches: list[FetchBatch] = []
    for (retailer,), group in wanted.group_by("retailer"):
        for source in sources.sources_for(str(retailer)):
            connector = connectors[source.name]
            if isinstance(connector, FileDropConnector):
                continue  # a landing folder cannot be asked again
            request = FetchRequest.for_listings(
                str(retailer), group, mode=FetchMode.FULL, observed_at=now, run_id=run_id
            )
            batches.extend(connector.fetch(request))
    frame, _ = concat_batches(batches)
    return frame.join(wanted.select("retailer", "sku"), on=["retailer", "sku"], how="semi")
