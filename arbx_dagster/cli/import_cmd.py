"""``arbx import``: two retailers' catalogue exports to a table of opportunities, one command."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime

import typer
from rich.console import Console

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.reporting.format import console as make_console
from arbx_dagster.reporting.format import opportunities_table
from arbx_dagster.settings import Settings


def import_(
    exports: list[str] = typer.Argument(
        ...,
        metavar="RETAILER=FILE...",
        help="Each retailer's export (CSV, JSONL or Parquet), e.g. walmart=walmart.csv.",
        show_default=False,
    ),
    currency: str = typer.Option(
        None,
        "--currency",
        help="The exports' currency (CLP, USD, EUR, …); it becomes the market's. "
        "Default: the market's current one.",
    ),
    assume_in_stock: bool = typer.Option(
        False,
        "--assume-in-stock/--no-assume-in-stock",
        help="Rows that do not say whether they are in stock are (an export of what the "
        "store sells). Without it, unknown stock is never bought.",
    ),
    run: bool = typer.Option(True, help="Ingest and run the whole pipeline now."),
    top: int = typer.Option(20, help="How many opportunities to show."),
) -> None:
    """Load catalogue exports as retailers and show the opportunities between them.

    Copies each file to $ARBX_HOME/landing/<retailer>/, adds a file-drop source per retailer
    to $ARBX_HOME/sources.yaml (with the currency and the stock assumption), shows what
    each file gives (as `arbx sources check`), then ingests today's partitions and runs the
    pipeline. Columns are read by name (id/sku, name/title, price, list_price, brand,
    model, ean, category, in_stock/availability…); map others in sources.yaml."""
    from arbx_dagster.cli.config_cmd import open_warehouse_migrated
    from arbx_dagster.domain.money import currency_code
    from arbx_dagster.ingestion.imports import (
        CatalogueImportError,
        land,
        parse_pairs,
        write_sources,
    )
    from arbx_dagster.storage.settings_store import read_thresholds, set_setting

    console = make_console()
    settings = Settings.from_env()
    if os.environ.get("ARBX_SOURCES"):
        console.print(
            "[red]ARBX_SOURCES is set[/]: `arbx import` writes $ARBX_HOME/sources.yaml, which "
            "ARBX_SOURCES overrides. Unset it, or add file_drop sources to your file "
            "(sources.example.yaml shows how)."
        )
        raise typer.Exit(2)
    try:
        files = parse_pairs(exports)
        code = currency_code(currency) if currency else None
    except (CatalogueImportError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    with open_warehouse_migrated() as warehouse:
        if code is not None:
            set_setting(warehouse, "currency", code, actor=f"arbx import ({getpass.getuser()})")
        thresholds = read_thresholds(warehouse)
    write_sources(
        settings.home / "sources.yaml",
        files,
        currency=thresholds.currency,
        assume_in_stock=assume_in_stock,
    )
    for file in files:
        target = land(file, settings.home / "landing")
        console.print(f"{file.path} → [bold]{file.retailer}[/] ({target})")
    stored = _check(console, [f.retailer for f in files], thresholds)
    if not stored:
        raise typer.Exit(1)
    if not run:
        console.print("Next: `arbx backfill --today` ingests them and runs the pipeline.")
        return
    _run(console, [f.retailer for f in files], settings, top)


def _check(console: Console, retailers: list[str], thresholds: Thresholds) -> int:
    """Each imported source's dry run, printed; the rows that would be stored."""
    from arbx_dagster.cli.sources_cmd import print_check
    from arbx_dagster.pipeline.source_check import check_sources
    from arbx_dagster.resources.sources import resolve_sources

    sources = resolve_sources()
    stored = 0
    for retailer in retailers:
        for result in check_sources(
            sources,
            thresholds,
            now=datetime.now(UTC),
            retailer=retailer,
        ):
            print_check(console, result, rows=3)
            stored += result.stored.height
    return stored


def _run(console: Console, retailers: list[str], settings: Settings, top: int) -> None:
    from arbx_dagster.cli.backfill import run_days
    from arbx_dagster.domain.history import day_of
    from arbx_dagster.storage.queries import live_opportunities
    from arbx_dagster.storage.settings_store import read_thresholds
    from arbx_dagster.storage.warehouse import open_warehouse

    today = day_of(datetime.now(UTC))
    run_days(console, [today], retailers, refresh=True)
    with open_warehouse(settings.postgres_url, settings.duckdb_path) as warehouse:
        found = live_opportunities(warehouse, limit=top)
        code = read_thresholds(warehouse).currency
    console.print(opportunities_table(found, f"Top {top} opportunities", code))
    console.print(
        "Again any time: `arbx status`; spreads held for review: `arbx opportunities review`; "
        "the UI: `arbx ui`."
    )
