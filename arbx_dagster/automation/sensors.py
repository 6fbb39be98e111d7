"""Sensors: files dropped in landing folders, and failed runs."""

import hashlib
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
    partition_retailers,
)
from arbx_dagster.automation import SENSOR_STATUS
from arbx_dagster.automation.jobs import REFRESH_TAGS, deliver_files, ingest_files
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
                    job_name=ingest_files.name,
                    partition_key=partition_key(day.isoformat(), retailer),
                    run_config=_paths_config([f.path]),
                    tags={
                        "arbx/source": source.name,
                        "arbx/retailer": retailer,
                        "arbx/file": f.relpath,
                    },
                )
            )
    return requests, skipped


def _paths_config(paths: list[str]) -> dict:
    return {"ops": {"raw_prices": {"config": {"paths": paths}}}}


def delivery_run(requests: list[dg.RunRequest], retailers: list[str]) -> dg.RunRequest | None:
    """The files of one look in a single run that also refreshes everything downstream,
    when one run can hold them: one source, one day, and retailers that are one partition
    or one contiguous range of them (``retailers``: the partitions' order). A webhook delivery
    (one file, every retailer) or one retailer's export is one run, with no wait for the
    automation's next look nor a second run to launch; otherwise ``None``, and the files
    are ingested run by run as ``file_run_requests`` made them, the automation refreshing
    after (also while another refresh waits to start: see ``file_drop_sensor``).
    """
    days = {str(r.partition_key).split("|")[0] for r in requests}
    sources = {r.tags["arbx/source"] for r in requests}
    covered = {str(r.tags["arbx/retailer"]) for r in requests}
    if not requests or len(days) != 1 or len(sources) != 1 or not covered <= set(retailers):
        return None
    places = sorted(retailers.index(r) for r in covered)
    if places != list(range(places[0], places[-1] + 1)):
        return None  # a range cannot skip a retailer
    day = days.pop()
    paths = list(dict.fromkeys(p for r in requests for p in _paths(r)))
    first, last = retailers[places[0]], retailers[places[-1]]
    tags = {
        "arbx/source": sources.pop(),
        "arbx/retailer": ",".join(retailers[i] for i in places),
        "arbx/file": ",".join(dict.fromkeys(str(r.tags["arbx/file"]) for r in requests)),
    }
    if first != last:
        tags |= {
            "dagster/asset_partition_range_start": str(partition_key(day, first)),
            "dagster/asset_partition_range_end": str(partition_key(day, last)),
        }
    return dg.RunRequest(
        run_key="delivery:" + _digest(sorted(str(r.run_key) for r in requests)),
        job_name=deliver_files.name,
        partition_key=partition_key(day, first) if first == last else None,
        run_config=_paths_config(paths),
        tags=tags,
    )


WAITING = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
]


def refresh_waiting(instance: dg.DagsterInstance) -> bool:
    """Whether a run that refreshes downstream of raw prices waits to start."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(tags=REFRESH_TAGS, statuses=WAITING), limit=1
    )
    return bool(records)


def _digest(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]


def _paths(request: dg.RunRequest) -> list[str]:
    return request.run_config["ops"]["raw_prices"]["config"]["paths"]


def new_retailer_partitions(
    instance: dg.DagsterInstance, retailers: Iterable[str]
) -> list[dg.AddDynamicPartitionsRequest]:
    """The request that makes ``retailers`` partitions, when some are not one yet."""
    missing = missing_retailers(instance, retailers)
    return [dg.AddDynamicPartitionsRequest(RETAILER, missing)] if missing else []


@dg.sensor(
    jobs=[ingest_files, deliver_files],
    minimum_interval_seconds=FILE_DROP_INTERVAL_SECONDS,
    default_status=SENSOR_STATUS,
    description=(
        "Ingest each complete file dropped in a file_drop source's landing folder exactly "
        "once (cursor per source; a file still being written is left for the next look), "
        "in one run that also refreshes downstream when the look's files fit one. A new "
        "retailer folder becomes a retailer partition on the way."
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
    if not requests:
        return dg.SensorResult(cursor=json.dumps(cursors, sort_keys=True))
    retailers = sorted({str(r.tags["arbx/retailer"]) for r in requests})
    added = new_retailer_partitions(context.instance, retailers)
    order = partition_retailers(context.instance) + [r for a in added for r in a.partition_keys]
    # While a refresh waits to start, files are only ingested: that refresh, whose passes
    # take everything changed since the last one, covers them too. So deliveries arriving
    # faster than a refresh takes keep at most one refresh waiting behind the running one.
    delivery = None if refresh_waiting(context.instance) else delivery_run(requests, order)
    return dg.SensorResult(
        run_requests=[delivery] if delivery is not None else requests,
        cursor=json.dumps(cursors, sort_keys=True),
        dynamic_partitions_requests=added,
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
