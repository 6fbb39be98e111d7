"""``arbx bench opportunities``: the spreads the whole pipeline finds on two real catalogues,
scored against the dataset's true matches.

Method (plain Python, no Dagster; nothing of the user's ``.arbx`` is read or written):

1. **A throwaway home.** A temporary folder holds the DuckDB warehouse (migrated), the
   raw-payload archive and a landing folder; it is deleted at the end.
2. **The catalogues arrive as file drops.** ``left.csv`` plays ``falabella`` and
   ``right.csv`` plays ``ripley`` (any names would do; these keep reports comparable).
   Each is dropped as ``<landing>/<retailer>/catalogue.csv`` holding the catalogue's
   ``id`` and the columns ``dataset.json`` maps (``fields``), as the source wrote them.
   Rows with an empty price are left out of the drop (through ingestion they would only
   be quarantined, "no price on a successful fetch"); they are counted in ``listings``.
3. **Ingested as the file-drop sensor's runs ingest them.** One ``file_drop`` source
   (``bench``) maps the columns onto record fields (``sku`` = ``id``, ``name``,
   ``brand``, ``model``, ``category`` when mapped, ``price_offer`` = the ``price``
   field), reads prices in ``currency`` (``--currency``; integer minor units: whole CLP,
   USD cents) and declares ``in_stock: true`` through its ``constants`` (the datasets
   have no stock column). Per retailer, ``fetch_partition`` with the dropped path, then
   ``ingest_partition``: parsing, validation and quarantine are the pipeline's own. Rows
   are observed when they are dropped (the file names carry no date).
4. **Settings of the throwaway warehouse.** ``currency`` = the source's; minimum ROI the
   default (8 %); minimum margin 10 whole units of the currency (USD 10 = 1000 cents),
   except CLP, which keeps the default 10,000.
5. **The pipeline's stages, in process**, with the clock right at the drop's observation
   time (so every price is fresh): ``refresh_listings`` -> ``refresh_matches`` with
   :func:`arbx_dagster.bench.matching.zero_shot_model` (the shipped model, rebuilt without
   the dataset when it learned from it) -> ``refresh_price_history`` ->
   ``refresh_opportunities``.
6. **Scoring.** A spread is *true* when its buy listing and its reference listing (the
   listing of the reference retailer in the spread's canonical product) are a pair of
   ``matches.csv``. ``precision`` = true / spreads; ``top20_precision`` over the 20
   largest margins (held spreads included: they are listed, marked for review);
   ``review`` = spreads held for review and ``review_true`` how many of them were true
   (what holding them cost); ``confidence``: the mean opportunity confidence of true and
   of false spreads (a confidence worth its name separates them). ``match``: the pipeline's
   ``match_pairs`` against the true pairs whose two listings were ingested (``true_pairs``
   says how many of ``matches.csv`` that is). ``seconds``: wall time of the whole run,
   model included.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from arbx_dagster.bench.datasets import BenchmarkError, datasets_dir, load_benchmark
from arbx_dagster.bench.matching import zero_shot_model
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.history import day_of
from arbx_dagster.domain.matching import TrainedPairModel
from arbx_dagster.domain.matching.evaluation import Benchmark, pair_metrics
from arbx_dagster.domain.money import Currency, currency
from arbx_dagster.domain.schema import RETAILERS
from arbx_dagster.ingestion.archive import Archive
from arbx_dagster.ingestion.sources import SourcesConfig
from arbx_dagster.pipeline.history import refresh_price_history
from arbx_dagster.pipeline.ingest import (
    IngestionFailed,
    PartitionRequest,
    fetch_partition,
    ingest_partition,
    open_connectors,
)
from arbx_dagster.pipeline.listings import refresh_listings
from arbx_dagster.pipeline.matching import refresh_matches
from arbx_dagster.pipeline.opportunities import refresh_opportunities
from arbx_dagster.storage.cache import MemoryCache
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.settings_store import read_thresholds, set_setting
from arbx_dagster.storage.warehouse import DuckDBWarehouse, Warehouse

Progress = Callable[[str], None]

# The left catalogue plays the first retailer, the right one the second.
LEFT_RETAILER, RIGHT_RETAILER = RETAILERS[0], RETAILERS[1]
SOURCE = "bench"
RUN_ID = "bench-opportunities"
ACTOR = "arbx bench opportunities"
MIN_MARGIN_UNITS = 10
TOP = 20
# Listing fields of dataset.json -> the record fields a file-drop source maps them onto.
RECORD_FIELDS = {
    "name": "name",
    "brand": "brand",
    "model": "model",
    "category": "category",
    "price": "price_offer",
}


@dataclass(frozen=True)
class Drop:
    """One catalogue dropped in the landing folder as one retailer's export."""

    retailer: str
    catalogue: str
    path: Path
    rows: int  # in the catalogue
    unpriced: int  # left out of the drop (empty price)


def min_margin(money: Currency) -> int:
    """The bench's minimum margin in minor units: 10 whole units of the currency; a
    currency without a minor unit (CLP) keeps the shipped default."""
    if money.minor_digits == 0:
        return Thresholds().min_margin_clp
    return MIN_MARGIN_UNITS * money.minor_per_unit


def run_opportunities_benchmark(
    dataset: str | Path,
    *,
    currency_code: str = "CLP",
    model: TrainedPairModel | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run the method of the module docstring on one dataset folder (a path, or a name
    under ``datasets_dir()``) and return the report (the command's JSON).

    ``model`` replaces the zero-shot model (tests); ``workers``: matching processes
    (default: the pipeline's). Raises ``BenchmarkError`` for a malformed folder, a dataset
    without catalogues or prices, a currency ArbX cannot read, or a drop the ingestion
    refused.
    """
    say = progress or (lambda _: None)
    started = time.perf_counter()
    try:
        money = currency(currency_code)
    except ValueError as exc:
        raise BenchmarkError(str(exc)) from None
    say("loading dataset")
    folder = _folder(dataset)
    bench = load_benchmark(folder)
    _check_usable(bench, folder)
    if model is None:
        say(f"the match model, never trained on {bench.name}")
        model = zero_shot_model(bench.name, progress=say)
    with tempfile.TemporaryDirectory(prefix="arbx-bench-opportunities-") as home:
        root = Path(home)
        warehouse = DuckDBWarehouse(root / "warehouse.duckdb")
        try:
            migrate(warehouse)
            set_setting(warehouse, "currency", money.code, actor=ACTOR)
            set_setting(warehouse, "min_margin_clp", min_margin(money), actor=ACTOR)
            say("dropping the catalogues")
            drops = drop_catalogues(bench, folder, root / "landing")
            sources = bench_sources(bench, root, money)
            landed = ingest_drops(warehouse, sources, drops, say)
            now = warehouse.scalar("SELECT max(observed_at) FROM raw_prices")
            if now is None:
                raise BenchmarkError(f"no row of {bench.name} landed in raw_prices")
            say("normalising listings")
            refresh_listings(warehouse, now=now)
            say("matching")
            refresh_matches(warehouse, now=now, scorer=model, workers=workers)
            say("price history")
            refresh_price_history(warehouse, now=now)
            say("opportunities")
            found = refresh_opportunities(warehouse, now=now)
            say("scoring")
            report = score(warehouse, bench)
            thresholds = read_thresholds(warehouse)
        finally:
            warehouse.close()
    return {
        "dataset": bench.name,
        "currency": money.code,
        "retailers": {drop.retailer: drop.catalogue for drop in drops},
        **report,
        "glitches": int(found.counts.get("glitches", 0)),
        "min_margin": thresholds.min_margin_clp,
        "min_roi_pct": thresholds.min_roi_pct,
        "listings": {
            drop.retailer: {
                "catalogue": drop.rows,
                "unpriced": drop.unpriced,
                **landed[drop.retailer],
            }
            for drop in drops
        },
        "model": model.version,
        "seconds": round(time.perf_counter() - started, 3),
    }


def _folder(dataset: str | Path) -> Path:
    """A dataset folder: the path itself, else a name under ``datasets_dir()``."""
    path = Path(dataset)
    return path if path.is_dir() or path.is_absolute() else datasets_dir() / str(dataset)


def _check_usable(bench: Benchmark, folder: Path) -> None:
    if not bench.tables:
        raise BenchmarkError(
            f'{folder} has no catalogues ("tables": false in dataset.json: labelled pairs '
            "only); bench opportunities needs left.csv, right.csv and matches.csv"
        )
    if "price" not in bench.fields:
        raise BenchmarkError(
            f"{folder / 'dataset.json'} maps no 'price' field: spreads need prices"
        )


def drop_catalogues(bench: Benchmark, folder: Path, landing: Path) -> list[Drop]:
    """Write each catalogue's priced rows (``id`` and the mapped columns, as the source
    wrote them) to ``<landing>/<retailer>/catalogue.csv``."""
    mapped = list(dict.fromkeys(bench.fields[f] for f in RECORD_FIELDS if f in bench.fields))
    price = bench.fields["price"]
    drops = []
    for file, retailer, catalogue in (
        ("left.csv", LEFT_RETAILER, bench.left_retailer),
        ("right.csv", RIGHT_RETAILER, bench.right_retailer),
    ):
        raw = pl.read_csv(folder / file, infer_schema=False)
        if price not in raw.columns:
            raise BenchmarkError(
                f"{folder / file} has no column {price!r} (the 'price' field in dataset.json)"
            )
        priced = raw.filter(pl.col(price).str.strip_chars().fill_null("") != "")
        path = landing / retailer / "catalogue.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        priced.select("id", *[c for c in mapped if c != "id" and c in raw.columns]).write_csv(path)
        drops.append(Drop(retailer, catalogue, path, raw.height, raw.height - priced.height))
    return drops


def bench_sources(bench: Benchmark, root: Path, money: Currency) -> SourcesConfig:
    """The one ``file_drop`` source the drops are read by (see the module docstring)."""
    columns = {"sku": "id"} | {
        record: bench.fields[field]
        for field, record in RECORD_FIELDS.items()
        if field in bench.fields
    }
    return SourcesConfig.model_validate(
        {
            "archive": {"root": str(root / "archive")},
            "retailers": [
                {
                    "name": SOURCE,
                    "connector": "file_drop",
                    "path": str(root / "landing"),
                    "currency": money.code,
                    "columns": columns,
                    "constants": {"in_stock": "true"},
                }
            ],
        }
    )


def ingest_drops(
    warehouse: Warehouse, sources: SourcesConfig, drops: list[Drop], say: Progress
) -> dict[str, dict[str, int]]:
    """Each drop through the file-drop sensor's run (fetch, validate, land); what landed
    and what was quarantined, per retailer."""
    dropped_at = datetime.now(UTC)
    archive = Archive.from_config(sources.archive)
    landed: dict[str, dict[str, int]] = {}
    with open_connectors(sources, MemoryCache(), archive, now=dropped_at) as connectors:
        for drop in drops:
            say(f"ingesting {drop.catalogue} as {drop.retailer}")
            request = PartitionRequest(
                day=day_of(dropped_at), retailer=drop.retailer, paths=(str(drop.path),)
            )
            fetched = fetch_partition(
                sources, connectors, archive, request, now=dropped_at, run_id=RUN_ID
            )
            try:
                report = ingest_partition(
                    warehouse, fetched, request, now=dropped_at, run_id=RUN_ID
                )
            except IngestionFailed as exc:
                raise BenchmarkError(
                    f"the drop of {drop.catalogue} ({drop.retailer}) was refused: {exc} "
                    f"(are its prices in {sources.retailers[0].currency}? see --currency)"
                ) from None
            landed[drop.retailer] = {
                "stored": int(report.counts["stored"]),
                "quarantined": int(report.counts["quarantined"]),
            }
    return landed


def score(warehouse: Warehouse, bench: Benchmark) -> dict[str, Any]:
    """The report's measures from the warehouse after a run (module docstring, step 6)."""
    truth = bench.truth.unique()
    spreads = spread_listings(warehouse)
    judged = spreads.join(
        truth.with_columns(true=pl.lit(True)), on=["left_sku", "right_sku"], how="left"
    ).with_columns(pl.col("true").fill_null(False))
    top = judged.sort(["margin", "opportunity_id"], descending=[True, False]).head(TOP)
    listed = warehouse.query("SELECT retailer, sku FROM listings")
    reachable = truth.join(
        _skus(listed, LEFT_RETAILER, "left_sku"), on="left_sku", how="semi"
    ).join(_skus(listed, RIGHT_RETAILER, "right_sku"), on="right_sku", how="semi")
    pairs = warehouse.query("SELECT * FROM match_pairs")
    match = pair_metrics(pairs, reachable, LEFT_RETAILER)
    return {
        "spreads": judged.height,
        "spreads_true": int(judged["true"].sum()),
        "precision": _share(judged["true"]),
        "top20_precision": _share(top["true"]),
        "review": int(judged["held"].sum()),
        "review_true": int((judged["held"] & judged["true"]).sum()),
        "confidence": {
            "true_spreads": _mean(judged.filter(pl.col("true"))["confidence"]),
            "false_spreads": _mean(judged.filter(~pl.col("true"))["confidence"]),
        },
        "match": {key: round(float(match[key]), 4) for key in ("precision", "recall", "f1")},
        "true_pairs": {"all": truth.height, "listed": reachable.height},
    }


def spread_listings(warehouse: Warehouse) -> pl.DataFrame:
    """Live spreads with their two listings: ``opportunity_id, margin, held`` (held for
    review), ``confidence`` and ``left_sku`` / ``right_sku`` (the listings at the left
    and right retailers, buy or reference)."""
    spreads = warehouse.query(
        "SELECT * FROM opportunities WHERE kind = 'spread' AND status <> 'expired'"
    )
    buy_left = pl.col("buy_retailer") == LEFT_RETAILER
    return spreads.select(
        "opportunity_id",
        "confidence",
        margin="margin_clp",
        held=pl.col("review").is_not_null(),
        left_sku=pl.when(buy_left).then(pl.col("buy_sku")).otherwise(pl.col("ref_sku")),
        right_sku=pl.when(buy_left).then(pl.col("ref_sku")).otherwise(pl.col("buy_sku")),
    )


def _skus(listed: pl.DataFrame, retailer: str, name: str) -> pl.DataFrame:
    return listed.filter(pl.col("retailer") == retailer).select(pl.col("sku").alias(name))


def _mean(values: pl.Series) -> float | None:
    return round(float(values.mean()), 4) if values.len() else None  # type: ignore[arg-type]


def _share(flags: pl.Series) -> float | None:
    """Share of true flags; ``None`` when there is nothing to judge."""
    return round(float(flags.mean()), 4) if flags.len() else None  # type: ignore[arg-type]
