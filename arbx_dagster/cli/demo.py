"""``arbx demo``: the whole pipeline on the simulator, embedded defaults, one command."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import typer

from arbx_dagster.instance import prepare_dagster_home
from arbx_dagster.reporting.format import console as make_console
from arbx_dagster.reporting.format import opportunities_table
from arbx_dagster.settings import Settings
from arbx_dagster.storage.queries import live_opportunities
from arbx_dagster.storage.settings_store import read_thresholds
from arbx_dagster.storage.warehouse import open_warehouse


def partition_range(first: str, last: str) -> list[str]:
    """Raw-price partition keys (day x retailer) from day ``first`` to day ``last``, every
    retailer sources.yaml provides (made partitions first)."""
    from dagster import DagsterInstance

    from arbx_dagster.assets.partitions import add_retailers
    from arbx_dagster.resources.sources import configured_retailers

    with DagsterInstance.get() as instance:
        retailers = add_retailers(instance, configured_retailers())
    start, end = datetime.fromisoformat(first).date(), datetime.fromisoformat(last).date()
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    return [f"{day.isoformat()}|{retailer}" for day in days for retailer in retailers]


def demo(
    days: int = typer.Option(60, help="Days of price history to ingest, ending today."),
    top: int = typer.Option(15, help="How many opportunities to show."),
) -> None:
    """Materialize the whole asset graph on the simulated market and show the top
    opportunities (no server needed: DuckDB and SQLite under .arbx/)."""
    from arbx_dagster.cli.runner import run_with_progress
    from arbx_dagster.domain.history import day_of

    console = make_console()
    settings = Settings.from_env()
    if not os.environ.get("ARBX_SOURCES") and (settings.home / "sources.yaml").exists():
        console.print(
            f"[red]{settings.home} holds your own catalogues[/] (`arbx import`); run the demo "
            "in another state folder: ARBX_HOME=.arbx-demo make demo"
        )
        raise typer.Exit(2)
    prepare_dagster_home(settings)
    today = day_of(datetime.now(UTC))
    partitions = partition_range((today - timedelta(days=days - 1)).isoformat(), today.isoformat())
    console.print(
        f"[bold]ArbX demo[/] · {days} days x {len(partitions) // days} retailers · warehouse "
        f"{settings.warehouse_engine} · Dagster instance {settings.dagster_home}"
    )
    outcome = run_with_progress(
        "full_refresh", console, partitions=partitions, tags={"arbx/trigger": "demo"}
    )
    if not outcome.success:
        console.print(f"[red]Run {outcome.run_id} failed:[/] {outcome.error}")
        console.print("See its logs with [bold]make ui[/].")
        raise typer.Exit(1)

    with open_warehouse(settings.postgres_url, settings.duckdb_path) as warehouse:
        top_rows = live_opportunities(warehouse, limit=top)
        live = int(warehouse.scalar("SELECT count(*) FROM opportunities WHERE status <> 'expired'"))
        code = read_thresholds(warehouse).currency
    console.print(
        opportunities_table(top_rows, f"Top {min(top, live)} of {live} live opportunities", code)
    )

    raw = outcome.metadata.get("raw_prices", {}).get("run_totals") or {}  # all partitions
    listings = outcome.metadata.get("normalized_listings", {})
    matches = outcome.metadata.get("product_matches", {})
    found = outcome.metadata.get("opportunities", {})
    console.print(
        f"[bold]{raw.get('stored', 0):,}[/] observations of "
        f"[bold]{listings.get('listings', 0):,}[/] listings ingested "
        f"({raw.get('quarantined', 0)} quarantined) · "
        f"[bold]{matches.get('matched_pairs', 0):,}[/] matches into "
        f"{matches.get('canonical_products', 0):,} products · [bold]{live}[/] opportunities "
        f"({found.get('spreads', 0)} spreads, {found.get('glitches', 0)} glitches) · "
        f"{outcome.seconds:.1f} s"
    )
    console.print(
        "Next: [bold]make ui[/] to browse the run, lineage and metadata; "
        "[bold].venv/bin/arbx status[/] for health."
    )
