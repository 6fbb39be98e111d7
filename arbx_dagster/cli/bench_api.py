"""``arbx bench api``: the service under load — ``/api/opportunities`` requests/s and
p50/p99 latency (cached and uncached), and how many SSE clients one server holds.

It starts its own service process on throwaway state (a temporary DuckDB file, or with
``--services`` a temporary PostgreSQL database and a private Redis prefix, both removed
afterwards), so it never touches real data. Method: ``arbx_dagster/bench/api_load.py``.
"""

from __future__ import annotations

import json
import os

import typer
from rich.console import Console
from rich.table import Table


def _table(report: dict) -> Table:
    backend = report["backend"]
    title = (
        f"bench api · {backend['warehouse']} + {backend['cache']} · "
        f"{backend['workers']} worker(s) · {backend['opportunities']:,} opportunities"
    )
    table = Table("measure", "value", title=title)
    for name in ("opportunities_cached", "opportunities_uncached"):
        if name in report:
            r = report[name]
            label = "/api/opportunities " + name.split("_")[1]
            table.add_row(
                label,
                f"[bold]{r['requests_per_second']:,.0f} req/s[/] · p50 {r['p50_ms']} ms · "
                f"p99 {r['p99_ms']} ms ({r['requests']:,} requests, {r['concurrency']} "
                f"concurrent, statuses {r['statuses']})",
            )
    sse = report["sse"]
    table.add_row(
        "SSE clients held",
        f"[bold]{sse['clients_held']:,}[/] of {sse['clients_requested']:,} · event delivered to "
        f"{sse['event_delivered_to']:,} (fan-out p50 {sse['fanout_p50_ms']} ms, max "
        f"{sse['fanout_max_ms']} ms)"
        + (f" · failures {sse['failures']}" if sse["failures"] else ""),
    )
    return table


def bench_api(
    requests: int = typer.Option(3000, min=1, help="Requests to /api/opportunities (cached)."),
    concurrency: int = typer.Option(32, min=1, help="Concurrent requests in flight."),
    sse_clients: int = typer.Option(1000, min=1, help="SSE connections to open and hold."),
    opportunities: int = typer.Option(2000, min=1, help="Synthetic live opportunities."),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes."),
    services: bool = typer.Option(
        False,
        help="Use ARBX_POSTGRES_URL (a throwaway database) and ARBX_REDIS_URL (a private "
        "prefix) instead of the embedded DuckDB and in-process cache.",
    ),
    uncached: bool = typer.Option(True, help="Also measure with the page cache disabled."),
    as_json: bool = typer.Option(False, "--json", help="Print the measurements as JSON."),
) -> None:
    """Measure the API under load: requests/s, p50/p99 latency, SSE clients held."""
    from arbx_dagster.bench import api_load

    postgres_url = redis_url = None
    if services:
        postgres_url = os.environ.get("ARBX_POSTGRES_URL")
        redis_url = os.environ.get("ARBX_REDIS_URL")
        if not postgres_url or not redis_url:
            raise typer.BadParameter("--services needs ARBX_POSTGRES_URL and ARBX_REDIS_URL")
    report = api_load.run(
        requests=requests,
        concurrency=concurrency,
        sse_clients=sse_clients,
        opportunities=opportunities,
        workers=workers,
        postgres_url=postgres_url,
        redis_url=redis_url,
        uncached=uncached,
    )
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        Console().print(_table(report))
