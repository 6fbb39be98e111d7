"""``arbx bench freshness``: seconds from a price landing to its opportunity, at N listings."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from arbx_dagster.cli.steps import bench_postgres_url


def _with_status(
    console: Console, listings: int, measure: Callable[[Callable[[str], None]], dict[str, Any]]
) -> dict[str, Any]:
    """``measure(progress)`` under a spinner that shows the stage it reports."""
    with console.status("starting") as status:
        return measure(lambda stage: status.update(f"{stage} ({listings:,} listings)…"))


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
    daemon: Annotated[
        bool,
        typer.Option(
            help="Through a real deployment (`arbx up` on a throwaway PostgreSQL database and "
            "Redis namespace): the changes posted to the signed webhook, seconds until each "
            "is in /api/opportunities, alerted and on the SSE stream. Needs "
            "ARBX_POSTGRES_URL and ARBX_REDIS_URL."
        ),
    ] = False,
    sensor_seconds: Annotated[
        int,
        typer.Option("--sensor-seconds", min=1, help="With --daemon: how often the sensors look."),
    ] = 10,
    logs: Annotated[
        Path | None,
        typer.Option("--logs", help="With --daemon: keep the deployment's logs in this folder."),
    ] = None,
) -> None:
    """Process a one-day market of N listings, land K changes (price moves, new listings,
    new spreads, new glitches) and time the refresh that follows, stage by stage, against
    a full opportunities pass and a full re-match of the same catalogue, in this process
    (or, with --daemon, from the webhook to the API, the alert and the SSE event)."""
    if daemon:
        _daemon(listings, changes, json_out, sensor_seconds, logs)
        return
    # Imported here: the matcher (scikit-learn) would otherwise load with every `arbx` command.
    from arbx_dagster.bench.freshness import run_freshness

    postgres_url = bench_postgres_url(postgres)
    console = Console(stderr=True)
    result = _with_status(
        console,
        listings,
        lambda progress: run_freshness(
            listings, changes, postgres_url=postgres_url, progress=progress
        ),
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


def _daemon(
    listings: int,
    changes: int,
    json_out: Path | None,
    sensor_seconds: int | None,
    logs: Path | None,
) -> None:
    from arbx_dagster.bench.freshness_daemon import CHANNELS, run_freshness_daemon

    postgres_url, redis_url = os.environ.get("ARBX_POSTGRES_URL"), os.environ.get("ARBX_REDIS_URL")
    if not postgres_url or not redis_url:
        raise typer.BadParameter("--daemon needs ARBX_POSTGRES_URL and ARBX_REDIS_URL")
    console = Console(stderr=True)
    result = _with_status(
        console,
        listings,
        lambda progress: run_freshness_daemon(
            listings,
            changes,
            postgres_url=postgres_url,
            redis_url=redis_url,
            sensor_seconds=sensor_seconds,
            logs=logs,
            progress=progress,
        ),
    )
    seconds, settings = result["seconds"], result["settings"]
    awaited = sum(result["awaited"].values())
    table = Table(
        "channel",
        "seen",
        "p50 s",
        "p95 s",
        "max s",
        title=f"bench freshness --daemon · {result['listings']:,} listings · "
        f"{result['changes']:,} changes ({awaited} awaited) · sensors every "
        f"{settings['file_drop_interval_seconds']} / {settings['automation_interval_seconds']} s",
    )
    for channel in CHANNELS:
        row = seconds[channel]
        table.add_row(
            channel,
            f"{result['seen'][channel]}/{awaited}",
            *("—" if row[k] is None else f"{row[k]:.1f}" for k in ("p50", "p95", "max")),
        )
    console.print(table)
    for run in result["runs_after_changes"]:
        console.print(
            f"  run {run['job']} {run['status']}: queued {run['queued_s']} s, ran {run['ran_s']} s"
        )
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
