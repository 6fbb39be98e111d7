"""Housekeeping: old runs and their event logs are deleted after a retention period."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from arbx_dagster.automation import SCHEDULE_STATUS
from arbx_dagster.settings import settings

# Runs (with their event logs) older than this are deleted; ARBX_RUN_RETENTION_DAYS.
RUN_RETENTION_DAYS = settings().run_retention_days
_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dg.op(description="Delete finished runs older than the retention period, event logs included.")
def prune_old_runs(context: dg.OpExecutionContext) -> None:
    cutoff = datetime.now(UTC) - timedelta(days=RUN_RETENTION_DAYS)
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(statuses=_FINISHED, created_before=cutoff), limit=1000
    )
    for record in records:
        context.instance.delete_run(record.dagster_run.run_id)
    context.log.info("deleted %s runs created before %s", len(records), cutoff.date())


@dg.job(description="Instance housekeeping (run and event-log retention).")
def maintenance() -> None:
    prune_old_runs()


maintenance_schedule = dg.ScheduleDefinition(
    name="maintenance_daily",
    job=maintenance,
    cron_schedule="30 4 * * *",
    execution_timezone="America/Santiago",
    default_status=SCHEDULE_STATUS,
    description=f"Delete finished runs older than {RUN_RETENTION_DAYS} days.",
)
