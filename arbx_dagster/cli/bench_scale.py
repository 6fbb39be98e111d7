"""``arbx bench scale``: seconds, throughput and memory of the pipeline at N listings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from arbx_dagster.cli.steps import bench_postgres_url


def scale_command(
    listings: Annotated[int, typer.Option("--listings", help="Listings in total.", min=10)],
    retailers: Annotated[int, typer.Option(help="Retailers sharing them.", min=1, max=3)] = 3,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result as JSON to this file.")
    ] = None,
    postgres: Annotated[
        bool, typer.Option(help="Run on PostgreSQL (ARBX_POSTGRES_URL) instead of DuckDB.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Matching worker processes (default: ARBX_MATCH_WORKERS or every core).", min=1
        ),
    ] = None,
) -> None:
    """Time every pipeline stage on a simulated catalogue of N listings, in this process."""
    # Imported here: the matcher (scikit-learn) would otherwise load with every `arbx` command.
    from arbx_dagster.bench.scale import MATCH_STAGES, run_scale

    postgres_url = bench_postgres_url(postgres)
    console = Console(stderr=True)
    with console.status("starting") as status:
        result = run_scale(
            listings,
            retailers=retailers,
            postgres_url=postgres_url,
            workers=workers,
            progress=lambda stage: status.update(f"{stage} ({listings:,} listings)…"),
        )
    table = Table(
        "stage",
        "seconds",
        "peak RSS MB",
        title=f"bench scale · {result['listings']:,} listings · {result['warehouse']}",
    )
    peaks = result["peak_rss_mb_by_stage"]
    for stage, seconds in result["seconds"].items():
        # blocking, scoring and assignment interleave in the workers: one "match" peak
        peak = peaks.get("match" if stage in MATCH_STAGES else stage)
        table.add_row(stage, f"{seconds:.2f}", "" if peak is None else f"{peak:,.0f}")
    console.print(table)
    console.print(
        f"{result['listings_per_second']:,} listings/s · {result['candidate_pairs']:,} candidate "
        f"pairs · match precision {result['match_precision']:.3f} / recall "
        f"{result['match_recall']:.3f} · {result['opportunities']:,} opportunities · peak RSS "
        f"{result['peak_rss_mb']:,.0f} MB with {result['match_workers']} matching workers "
        "(total excludes generation and training)"
    )
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
