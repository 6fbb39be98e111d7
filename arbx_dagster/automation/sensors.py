"""Sensors: files dropped in landing folders, and failed runs."""

import json
from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING

import dagster as dg

from arbx_dagster.assets.ingestion import ALERTED
from arbx_dagster.assets.partitions import (
    DAY_PARTITIONS,
    RETAILER,
    missing_retailers,
    partition_key,
)
from arbx_dagster.automation import SENSOR_STATUS
from arbx_dagster.automation.jobs import ingest_files
from arbx_dagster.domain.history import day_of
from arbx_dagster.ingestion.connectors import DroppedFile, FileDropConnector
from arbx_dagster.ingestion.sources import FileDropSource
from arbx_dagster.resources import (
    AlertsResource,
    CacheResource,
    ClockResource,
    SourcesResource,
    WarehouseResource,
)
from arbx_dagster.resources.sources import configured_retailers
from arbx_dagster.settings import settings

if TYPE_CHECKING:  # what a step-failure event carries (not exported by dagster)
    from dagster._core.execution.plan.objects import StepFailureData, UserFailureData

# How often the daemon looks at landing folders (ARBX_FILE_DROP_INTERVAL_SECONDS).
FILE_DROP_INTERVAL_SECONDS = settings().file_drop_interval_seconds
RETAILER_SCAN_INTERVAL_SECONDS = 60


def file_run_requests(
    source: FileDropSource, files: list[DroppedFile], today: date
) -> tuple[list[dg.RunRequest], list[str]]:
    """One run per (file, retailer): the file's day picks the day partition, its folder the
    retailer (a file at the top with a retailer column: one run per retailer the source
    provides).

    Returns the requests and a note for each file that cannot be placed in a partition.
    """
    first_day = DAY_PARTITIONS.start.date()
    requests, skipped = [], []
    for f in files:
        day = min(f.day or today, today)
        if day < first_day:
            skipped.append(f"{f.relpath}: dated {day}, before the first partition {first_day}")
            continue
        retailers = [f.retailer] if f.retailer else list(source.retailers)
        if not retailers:
            skipped.append(
                f"{f.relpath}: no retailer: put it in a folder named after the retailer "
                f"({f.relpath.split('/')[-1]} -> walmart/...), or list the retailers its "
                f"retailer column names in known_retailers of source {source.name}"
            )
        for retailer in retailers:
            requests.append(
                dg.RunRequest(
                    run_key=f"{source.name}:{f.key}:{retailer}",
                    partition_key=partition_key(day.isoformat(), retailer),
                    run_config={"ops": {"raw_prices": {"config": {"paths": [f.path]}}}},
                    tags={"arbx/retailer": retailer, "arbx/file": f.relpath},
                )
            )
    return requests, skipped


def new_retailer_partitions(
    instance: dg.DagsterInstance, retailers: Iterable[str]
) -> list[dg.AddDynamicPartitionsRequest]:
    """The request that makes ``retailers`` partitions, when some are not one yet."""
    missing = missing_retailers(instance, retailers)
    return [dg.AddDynamicPartitionsRequest(RETAILER, missing)] if missing else []


@dg.sensor(
    job=ingest_files,
    minimum_interval_seconds=FILE_DROP_INTERVAL_SECONDS,
    default_status=SENSOR_STATUS,
    description=(
        "Ingest each complete file dropped in a file_drop source's landing folder exactly "
        "once (cursor per source; a file still being written is left for the next look). "
        "A new retailer folder becomes a retailer partition on the way."
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
    retailers = {str(r.tags["arbx/retailer"]) for r in requests}
    return dg.SensorResult(
        run_requests=requests,
        cursor=json.dumps(cursors, sort_keys=True),
        dynamic_partitions_requests=(
            new_retailer_partitions(context.instance, retailers) if retailers else []
        ),
    )


@dg.sensor(
    minimum_interval_seconds=RETAILER_SCAN_INTERVAL_SECONDS,
    # bookkeeping, not automation: on even where schedules start stopped
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Make every retailer sources.yaml provides a retailer partition (a store "
    "added to the file, a new folder in a landing folder), so schedules, backfills and the "
    "UI see it without a reload.",
)
def retailer_partitions(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    added = new_retailer_partitions(context.instance, configured_retailers())
    if not added:
        return dg.SensorResult(skip_reason="every retailer of sources.yaml is a partition")
    return dg.SensorResult(dynamic_partitions_requests=added)


@dg.run_failure_sensor(
    default_status=SENSOR_STATUS,
    description="🚨 alert (ARBX_ALERT_URLS and the log) when any ArbX run fails, e.g. a "
    "failed blocking data-quality check or a scraper that broke.",
)
def alert_on_run_failure(
    context: dg.RunFailureSensorContext,
    cache: CacheResource,
    clock: ClockResource,
    warehouse: WarehouseResource,
    alerts: AlertsResource,
) -> None:
    run = context.dagster_run
    failed_steps = [event.step_failure_data for event in context.get_step_failure_events()]
    if failed_steps and all(_alerted(step.user_failure_data) for step in failed_steps):
        return  # each failed step already raised its own, more precise 🚨
    reasons = [_reason(step) for step in failed_steps]
    failure = "; ".join(r for r in reasons if r) or context.failure_event.message or "failed"
    alerts.dispatcher(cache.cache, warehouse.warehouse, clock.now).system_error(
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
