"""Run a job of the code location in-process, on the CLI's instance, with a progress bar."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:  # dagster is imported when a job runs, not when the CLI starts
    from dagster import DagsterInstance, ExecuteInProcessResult

STAGES = {
    "normalized_listings": "normalising listings",
    "match_model": "training the match model",
    "product_matches": "matching products across retailers",
    "price_history": "building price history",
    "opportunities": "finding spreads and glitches",
    "intelligence_metrics": "measuring volatility and tiers",
}


@dataclass
class JobOutcome:
    run_id: str
    success: bool
    seconds: float
    metadata: dict[str, dict[str, Any]]  # asset name -> last materialization's metadata
    error: str | None = None


def run_with_progress(
    job_name: str,
    console: Console,
    *,
    partitions: list[str] | None = None,
    tags: dict[str, str] | None = None,
) -> JobOutcome:
    """Execute ``job_name`` for a contiguous range of raw-price ``partitions`` (one run),
    showing one tick per partition landed and per downstream asset materialized."""
    from dagster import DagsterInstance

    from arbx_dagster.definitions import defs  # after the CLI prepared the environment

    instance = DagsterInstance.get()
    job = defs.resolve_job_def(job_name)
    selected = {key.path[-1] for key in job.asset_layer.executable_asset_keys}
    downstream = [name for name in STAGES if name in selected]
    run_tags = _run_tags(tags, partitions)
    run_id = str(uuid.uuid4())
    outcome: dict[str, Any] = {}

    def execute() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                instance=instance,
                run_id=run_id,
                raise_on_error=False,
                tags=run_tags,
                # The progress bar tells the story; the full event log is in the UI.
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            )
        except Exception as exc:  # reported with the run id below
            outcome["error"] = f"{type(exc).__name__}: {exc}"

    started = time.monotonic()
    worker = threading.Thread(target=execute, daemon=True)
    _show_progress(worker, instance, run_id, partitions or [], downstream, console)
    result = outcome.get("result")
    metadata = _materialization_metadata(result)
    error = _failure(result, outcome.get("error"))
    return JobOutcome(
        run_id=run_id,
        success=result is not None and result.success,
        seconds=time.monotonic() - started,
        metadata=metadata,
        error=error,
    )


def _run_tags(tags: dict[str, str] | None, partitions: list[str] | None) -> dict[str, str]:
    """The run's tags, with the partition range when there are partitions."""
    run_tags = dict(tags or {})
    if partitions:
        run_tags["dagster/asset_partition_range_start"] = partitions[0]
        run_tags["dagster/asset_partition_range_end"] = partitions[-1]
    return run_tags


def _show_progress(
    worker: threading.Thread,
    instance: DagsterInstance,
    run_id: str,
    partitions: list[str],
    downstream: list[str],
    console: Console,
) -> None:
    """Start ``worker`` and tick the bar from the run's events until it ends."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("starting", total=len(partitions) + len(downstream))
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            finished, description = _progress_now(instance, run_id, partitions, downstream)
            progress.update(task, completed=finished, description=description)


def _progress_now(
    instance: DagsterInstance, run_id: str, partitions: list[str], downstream: list[str]
) -> tuple[int, str]:
    """(steps finished, what is running) from the run's events so far: partitions landed,
    then downstream assets materialized."""
    from dagster import DagsterEventType

    landed = len(instance.all_logs(run_id, of_type=DagsterEventType.ASSET_OBSERVATION))
    done = {
        record.dagster_event.asset_key.path[-1]  # type: ignore[union-attr]
        for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    }
    pending = [name for name in downstream if name not in done]
    if partitions and landed < len(partitions):
        description = f"ingesting raw prices ({landed}/{len(partitions)} partitions)"
    else:
        description = STAGES[pending[0]] if pending else "finishing"
    finished = min(landed, len(partitions)) + len(downstream) - len(pending)
    return finished, description


def _materialization_metadata(result: ExecuteInProcessResult | None) -> dict[str, dict[str, Any]]:
    """Asset name -> the metadata of its last materialization in the run."""
    metadata: dict[str, dict[str, Any]] = {}
    if result is not None:
        for event in result.get_asset_materialization_events():
            meta = event.step_materialization_data.materialization.metadata
            metadata[event.asset_key.path[-1]] = {
                k: getattr(v, "value", v) for k, v in meta.items()
            }
    return metadata


def _failure(result: ExecuteInProcessResult | None, error: str | None) -> str | None:
    """Why the run failed: its first step failure, else the error running it raised."""
    if result is not None and not result.success:
        failure = next((e for e in result.all_events if e.is_step_failure), None)
        return failure.message if failure else "a step failed"
    return error
