"""Sensors: files dropped in landing folders, and failed runs."""

import json
import os
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg

from arbx_dagster.alerts import AlertDispatcher, channels_from_env
from arbx_dagster.assets.ingestion import ALERTED
from arbx_dagster.assets.partitions import DAY_PARTITIONS, RETAILERS, partition_key
from arbx_dagster.automation import SENSOR_STATUS
from arbx_dagster.automation.jobs import ingest_files
from arbx_dagster.domain.history import day_of
from arbx_dagster.ingestion.connectors import DroppedFile, FileDropConnector
from arbx_dagster.ingestion.sources import FileDropSource
from arbx_dagster.resources import CacheResource, ClockResource, SourcesResource

if TYPE_CHECKING:  # what a step-failure event carries (not exported by dagster)
    from dagster._core.execution.plan.objects import StepFailureData, UserFailureData

# How often the daemon looks at landing folders (ARBX_FILE_DROP_INTERVAL_SECONDS).
FILE_DROP_INTERVAL_SECONDS = int(os.environ.get("ARBX_FILE_DROP_INTERVAL_SECONDS", "30"))


def file_run_requests(
    source: FileDropSource, files: list[DroppedFile], today: date
) -> tuple[list[dg.RunRequest], list[str]]:
    """One run per (file, retailer): the file's date (or today) picks the day partition.

    Returns the requests and a note for each file that cannot be placed in a partition.
    """
    first_day = DAY_PARTITIONS.start.date()
    requests, skipped = [], []
    for f in files:
        day = min(f.day or today, today)
        if day < first_day:
            skipped.append(f"{f.relpath}: dated {day}, before the first partition {first_day}")
            continue
        if f.retailer is not None and f.retailer not in RETAILERS:
            skipped.append(
                f"{f.relpath}: {f.retailer} is not a retailer partition yet; reload the code "
                "location (UI: Deployment > Reload) so its new folder becomes one"
            )
            continue
        for retailer in (
            [f.retailer] if f.retailer else [r for r in source.retailers if r in RETAILERS]
        ):
            requests.append(
                dg.RunRequest(
                    run_key=f"{source.name}:{f.key}:{retailer}",
                    partition_key=partition_key(day.isoformat(), retailer),
                    run_config={"ops": {"raw_prices": {"config": {"paths": [f.path]}}}},
                    tags={"arbx/retailer": retailer, "arbx/file": f.relpath},
                )
            )
    return requests, skipped


@dg.sensor(
    job=ingest_files,
    minimum_interval_seconds=FILE_DROP_INTERVAL_SECONDS,
    default_status=SENSOR_STATUS,
    description=(
        "Ingest each complete file dropped in a file_drop source's landing folder exactly "
        "once (cursor per source; a file still being written is left for the next look)."
    ),
)
def file_drop_sensor(
    context: dg.SensorEvaluationContext, sources: SourcesResource, clock: ClockResource
) -> dg.SensorResult:
    cursors: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    today = day_of(clock.now())
    requests: list[dg.RunRequest] = []
    for source in sources.config.enabled():
        if not isinstance(source, FileDropSource):
            continue
        ready = FileDropConnector(source).ready_files(cursors.get(source.name))
        made, skipped = file_run_requests(source, ready.files, today)
        requests.extend(made)
        for note in skipped:
            context.log.warning("not ingested: %s", note)
        if ready.waiting:
            context.log.info("%s: waiting for %s to settle", source.name, ready.waiting)
        cursors[source.name] = ready.cursor
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursors, sort_keys=True))


@dg.run_failure_sensor(
    default_status=SENSOR_STATUS,
    description="🚨 alert (ARBX_ALERT_URLS and the log) when any ArbX run fails, e.g. a "
    "failed blocking data-quality check or a scraper that broke.",
)
def alert_on_run_failure(
    context: dg.RunFailureSensorContext, cache: CacheResource, clock: ClockResource
) -> None:
    run = context.dagster_run
    failed_steps = [event.step_failure_data for event in context.get_step_failure_events()]
    if failed_steps and all(_alerted(step.user_failure_data) for step in failed_steps):
        return  # each failed step already raised its own, more precise 🚨
    reasons = [_reason(step) for step in failed_steps]
    failure = "; ".join(r for r in reasons if r) or context.failure_event.message or "failed"
    AlertDispatcher(cache.cache, channels_from_env(), clock.now).system_error(
        f"Run of {run.job_name} failed",
        failure,
        key=f"run:{run.job_name}",
        run_id=run.run_id,
    )


def _alerted(failure: "UserFailureData | None") -> bool:
    flag = failure.metadata.get(ALERTED) if failure is not None else None
    return bool(getattr(flag, "value", False))


def _reason(step: "StepFailureData") -> str:
    """What went wrong in one step: a dg.Failure's description, else the error's message."""
    if step.user_failure_data is not None and step.user_failure_data.description:
        return step.user_failure_data.description
    return step.error.message.strip() if step.error is not None else ""
