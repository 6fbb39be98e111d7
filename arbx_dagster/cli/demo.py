"""``arbx demo``: the whole pipeline on the simulator, embedded defaults, one command."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from arbx_dagster.instance import prepare_dagster_home
from arbx_dagster.reporting.format import console as make_console
from arbx_dagster.reporting.format import opportunities_table
from arbx_dagster.settings import Settings
from arbx_dagster.storage.queries import live_opportunities
from arbx_dagster.storage.warehouse import open_warehouse

STAGES = {
    "raw_prices": "ingesting simulated prices",
    "normalized_listings": "normalising listings",
    "product_matches": "matching products across retailers",
    "price_history": "building price history",
    "opportunities": "finding spreads and glitches",
    "intelligence_metrics": "measuring volatility and tiers",
}


def demo(
    products: int = typer.Option(400, help="Distinct products in the simulated market."),
    days: int = typer.Option(60, help="Days of daily price history."),
    seed: int = typer.Option(7, help="Simulator seed (same seed, same market)."),
    top: int = typer.Option(15, help="How many opportunities to show."),
) -> None:
    """Materialize the whole asset graph on the simulator and show the top opportunities."""
    from dagster import DagsterEventType, DagsterInstance

    console = make_console()
    settings = Settings.from_env()
    prepare_dagster_home(settings)
    from arbx_dagster.definitions import defs  # reads the environment prepared above

    console.print(
        f"[bold]ArbX demo[/] · warehouse {settings.warehouse_engine} · "
        f"Dagster instance {settings.dagster_home if settings.dagster_home else ''}"
    )
    instance = DagsterInstance.get()
    job = defs.resolve_job_def("full_refresh")
    run_id = str(uuid.uuid4())
    run_config = {
        "ops": {"raw_prices": {"config": {"seed": seed, "n_products": products, "days": days}}},
        # The progress bar tells the story; the full event log is in the UI.
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    outcome: dict[str, Any] = {}

    def execute() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                run_id=run_id,
                raise_on_error=False,
                tags={"arbx/trigger": "demo"},
            )
        except Exception as exc:  # surfaced below with the run id
            outcome["error"] = exc

    started = time.monotonic()
    worker = threading.Thread(target=execute, daemon=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("starting run", total=len(STAGES))
        worker.start()
        done: set[str] = set()
        while worker.is_alive():
            worker.join(0.5)
            for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
                asset = record.dagster_event.asset_key.path[-1]  # type: ignore[union-attr]
                done.add(asset)
            pending = [name for name in STAGES if name not in done]
            description = STAGES[pending[0]] if pending else "finishing"
            progress.update(task, completed=len(done), description=description)
    elapsed = time.monotonic() - started

    result = outcome.get("result")
    if result is None or not result.success:
        reason = outcome.get("error") or "a step failed"
        console.print(f"[red]The run {run_id} failed: {reason}[/]. See `arbx ui` for its logs.")
        raise typer.Exit(1)

    counts = {
        event.asset_key.path[-1]: event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    with open_warehouse(settings.postgres_url, settings.duckdb_path) as warehouse:
        top_rows = live_opportunities(warehouse, limit=top)
        live = int(warehouse.scalar("SELECT count(*) FROM opportunities WHERE status <> 'expired'"))
    console.print(
        opportunities_table(top_rows, f"Top {min(top, live)} of {live} live opportunities")
    )

    def metric(asset: str, key: str) -> Any:
        value = counts.get(asset, {}).get(key)
        return getattr(value, "value", value)

    console.print(
        f"[bold]{metric('raw_prices', 'stored'):,}[/] observations of "
        f"[bold]{metric('raw_prices', 'listings'):,}[/] listings ingested "
        f"({metric('raw_prices', 'quarantined')} quarantined) · "
        f"[bold]{metric('product_matches', 'matched_pairs'):,}[/] matches into "
        f"{metric('product_matches', 'canonical_products'):,} products · "
        f"[bold]{live}[/] opportunities "
        f"({metric('opportunities', 'spreads')} spreads, {metric('opportunities', 'glitches')} "
        f"glitches) · {elapsed:.1f} s"
    )
    console.print(
        "Next: [bold]make ui[/] to browse the run, lineage and metadata; "
        "[bold]arbx status[/] for health."
    )
