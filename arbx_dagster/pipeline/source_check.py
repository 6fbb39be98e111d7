"""A dry run of a source: what ArbX would store from it, what it would quarantine and why,
and what is missing for opportunities — without writing anything (no archive, no
warehouse). Behind ``arbx sources check`` and ``arbx import``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.ingestion.connectors import (
    FetchBatch,
    FetchMode,
    FetchRequest,
    FileDropConnector,
    build_connector,
    concat_batches,
)
from arbx_dagster.ingestion.sources import FileDropSource, Source, SourcesConfig

PREVIEW_COLUMNS = (
    "retailer", "sku", "name", "brand", "model", "price_list", "price_offer", "price_card",
    "in_stock", "observed_at",
)  # fmt: skip


class SourceCheckError(ValueError):
    """The check cannot start (no such file, no source for it)."""


@dataclass
class SourceCheck:
    """One source's dry run."""

    source: str
    kind: str
    currency: str  # the market's: what prices are stored in
    fetched: int
    stored: pl.DataFrame  # rows as they would land (RAW_PRICE_SCHEMA)
    quarantined: pl.DataFrame  # QUARANTINE_SCHEMA
    files: list[str] = field(default_factory=list)
    mapping: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> field -> column
    ignored: dict[str, list[str]] = field(default_factory=dict)  # file -> columns not read
    errors: list[str] = field(default_factory=list)  # what the fetch itself reported
    notes: list[str] = field(default_factory=list)  # what is missing for opportunities

    @property
    def reasons(self) -> list[tuple[str, int, str, str]]:
        """(kind of reason, rows, a sample row's place and reason, its raw record), most
        frequent first; reasons that differ only by the value quoted are one kind."""
        if self.quarantined.is_empty():
            return []
        grouped = (
            self.quarantined.with_columns(kind=pl.col("reason").str.replace_all(r"'[^']*'", "…"))
            .group_by("kind")
            .agg(
                rows=pl.len(),
                at=pl.format("{} ({})", pl.col("source_location"), pl.col("reason")).first(),
                raw=pl.col("raw_record").first(),
            )
            .sort("rows", "kind", descending=[True, False])
        )
        return [(k, n, at or "", raw or "") for k, n, at, raw in grouped.iter_rows()]

    def preview(self, rows: int = 5) -> pl.DataFrame:
        return self.stored.select([c for c in PREVIEW_COLUMNS if c in self.stored.columns]).head(
            rows
        )


def check_sources(
    sources: SourcesConfig,
    thresholds: Thresholds,
    *,
    now: datetime,
    retailer: str | None = None,
    path: str | Path | None = None,
) -> list[SourceCheck]:
    """Dry-run every enabled source (of ``retailer``), or only the file at ``path`` with the
    file-drop source whose landing folder holds it (else the only file-drop source)."""
    if path is not None:
        source = _source_of(sources, Path(path))
        return [_check(source, thresholds, now, retailer, paths=(str(Path(path).resolve()),))]
    chosen = [s for s in sources.enabled() if retailer is None or s.may_yield(retailer)]
    if not chosen:
        known = ", ".join(sources.provided_retailers()) or "none"
        raise SourceCheckError(f"no enabled source provides {retailer}; sources provide: {known}")
    return [_check(s, thresholds, now, retailer) for s in chosen]


def _source_of(sources: SourcesConfig, path: Path) -> FileDropSource:
    if not path.is_file():
        raise SourceCheckError(f"no such file: {path}")
    drops = [s for s in sources.enabled() if isinstance(s, FileDropSource)]
    for source in drops:
        if path.resolve().is_relative_to(Path(source.path).expanduser().resolve()):
            return source
    if len(drops) == 1:
        return drops[0]
    names = ", ".join(s.name for s in drops) or "none"
    raise SourceCheckError(
        f"{path} is in no file-drop source's landing folder (file-drop sources: {names})"
    )


def _check(
    source: Source,
    thresholds: Thresholds,
    now: datetime,
    retailer: str | None,
    paths: tuple[str, ...] | None = None,
) -> SourceCheck:
    connector = build_connector(source, now=now)  # no archive: nothing is written
    try:
        if isinstance(connector, FileDropConnector) and paths is None:
            paths = tuple(f.path for f in connector.files())
        mode = FetchMode.LISTING_PAGES
        request = FetchRequest(retailer=retailer, mode=mode, observed_at=now, paths=paths)
        batches = list(connector.fetch(request))
    finally:
        connector.close()
    frame, stats = concat_batches(batches)
    result = validate_observations(frame, now=now, currency=thresholds.currency)
    check = SourceCheck(
        source=source.name,
        kind=source.connector,
        currency=thresholds.currency,
        fetched=frame.height,
        stored=result.accepted,
        quarantined=result.quarantined,
        errors=stats.errors[:5],
    )
    if isinstance(connector, FileDropConnector):
        _describe_files(check, connector, batches)
    check.notes = missing_for_opportunities(source, result.accepted, thresholds, now)
    unreadable = result.quarantined["reason"].str.contains(f"not a {source.currency} amount")
    if unreadable.sum() * 2 > max(frame.height, 1):
        check.notes.insert(
            0,
            f"most prices are not {source.currency} amounts: if the export is in another "
            f"currency, set `currency: <CODE>` on source {source.name} in sources.yaml and "
            "`arbx config set currency <CODE>` (USD, EUR, …)",
        )
    return check


def _describe_files(
    check: SourceCheck, connector: FileDropConnector, batches: list[FetchBatch]
) -> None:
    for batch in batches:
        if batch.location is None:
            continue
        check.files.append(batch.location)
        header = _header(connector, batch.location)
        mapping = connector.column_mapping(header)
        check.mapping[batch.location] = mapping
        check.ignored[batch.location] = [c for c in header if c not in mapping.values()]


def _header(connector: FileDropConnector, relpath: str) -> list[str]:
    """The columns of a dropped file as written (before any mapping)."""
    path = connector.root / relpath
    try:
        if path.suffix.lower() == ".parquet":
            return list(pl.read_parquet_schema(path))
        if path.suffix.lower() in (".jsonl", ".ndjson"):
            first = pl.read_ndjson(path, n_rows=1)
            return first.columns
        separator = "\t" if path.suffix.lower() == ".tsv" else connector.source.csv_separator
        return pl.read_csv(path, n_rows=0, separator=separator, infer_schema=False).columns
    except (OSError, pl.exceptions.PolarsError):
        return []


def missing_for_opportunities(
    source: Source, stored: pl.DataFrame, thresholds: Thresholds, now: datetime
) -> list[str]:
    """What keeps these rows out of opportunities, each with how to fix it."""
    notes: list[str] = []
    if source.currency != thresholds.currency:
        notes.append(
            f"the source's prices are {source.currency} but the market's currency is "
            f"{thresholds.currency}: every priced row is quarantined; run `arbx config set "
            f"currency {source.currency}` (a warehouse holds one currency)"
        )
    if stored.is_empty():
        return notes
    if stored["in_stock"].is_null().all():
        notes.append(
            "no row says whether it is in stock: unknown stock is never bought, so no spread "
            f"buys here; if the export lists what the store sells, set `assume_in_stock: true` "
            f"on source {source.name} in sources.yaml (or a stock column: in_stock / "
            "availability / stock_qty)"
        )
    if stored["brand"].is_null().all() and stored["model"].is_null().all():
        notes.append(
            "no brand or model column: products are matched on their titles alone (map a "
            "brand / model column if the export has one)"
        )
    newest = stored["observed_at"].max()
    max_age = timedelta(hours=thresholds.max_price_age_hours)
    if isinstance(newest, datetime) and now - newest > max_age:
        notes.append(
            f"the newest price was observed {newest:%Y-%m-%d %H:%M} UTC, older than "
            f"max_price_age_hours ({thresholds.max_price_age_hours:g} h): stored, but no "
            "opportunity uses a price that old; drop a fresh export, or `arbx config set "
            "max_price_age_hours N` for exports refreshed less often"
        )
    return notes
