"""``arbx bench freshness``: seconds from a price landing to its opportunity, at N listings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from arbx_dagster.cli.steps import bench_postgres_url


def freshness_command(
    listings: Annotated[int, typer.Option("--listings", help="Listings in the market.", min=100)],
    changes: Annotated[
        int, typer.Option("--changes", help="Changed prices landing at once.", min=10)
    ] = 1_000,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON to this file.")
    ] = None,
    postgres: Annotated[
        bool, typer.Option(help="Run on PostgreSQL (ARBX_POSTGRES_URL) instead of DuckDB.")
    ] = False,
) -> None:
    """Process a one-day market of N listings, land K changes (price moves, new listings,
    new spreads, new glitches) and time the refresh that follows, stage by stage, against
    a full opportunities pass and a full re-match of the same catalogue, in this process."""
    # Imported here: the matcher (scikit-learn) would otherwise load with every `arbx` command.
    from arbx_dagster.bench.freshness import run_freshness

    postgres_url = bench_postgres_url(postgres)
    console = Console(stderr=True)
    with console.status("starting") as status:
        result = run_freshness(
            listings,
            changes,
            postgres_url=postgres_url,
            progress=lambda stage: status.update(f"{stage} ({listings:,} listings)…"),
        )
    seconds = result["seconds"]
    table = Table(
        "stage",
        "first pass s",
        "after the changes s",
        title=f"bench freshness · {result['listings']:,} listings · {result['changes']:,} "
        f"changes · {result['warehouse']}",
    )
    for stage, after in seconds["incremental_by_stage"].items():
        table.add_row(stage, f"{seconds['initial_by_stage'][stage]:.2f}", f"{after:.2f}")
    table.add_row(
        "total",
        f"{sum(seconds['initial_by_stage'].values()):.2f}",
        f"{seconds['incremental_compute']:.2f}",
    )
    console.print(table)
    found = ", ".join(f"{k} {v['found']}/{v['planted']}" for k, v in result["found"].items())
    opportunities = result["opportunities"]
    same = opportunities["compared_with_full_pass"]["identical"]
    console.print(
        f"opportunities {opportunities['mode']} ({opportunities['evaluated_products']:,} "
        f"products evaluated) · {'identical to' if same else 'DIFFERENT from'} a full pass "
        f"({seconds['full_opportunities']:.2f} s)"
    )
    console.print(
        f"matched {result['match_mode']} · full re-match {seconds['full_rematch']:.2f} s · "
        f"agreement {result['agreement']:.4f} · found {found} · peak RSS "
        f"{result['peak_rss_mb']:,.0f} MB"
    )
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
