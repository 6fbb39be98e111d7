"""Tier schedules: critical every 30 min, important every 6 h, tracking daily."""

from datetime import datetime

import dagster as dg

from arbx_dagster.assets.partitions import partition_key, partition_retailers
from arbx_dagster.automation import SCHEDULE_STATUS
from arbx_dagster.automation.jobs import INGEST_JOBS, rematch_all
from arbx_dagster.domain.history import MARKET_TZ, day_of
from arbx_dagster.resources.sources import resolve_sources

CRON_BY_TIER = {
    "critical": "*/30 * * * *",
    "important": "0 */6 * * *",
    "tracking": "0 3 * * *",  # 03:00 in Santiago: after the stores' nightly price updates
}


def tier_run_requests(tier: str, moment: datetime, retailers: list[str]) -> list[dg.RunRequest]:
    """One run per retailer (partition) for today's partition; runs of one retailer never
    overlap (Dagster's ``dagster/partition/retailer`` run tag is limited to one per value)."""
    day = day_of(moment).isoformat()
    return [
        dg.RunRequest(
            run_key=f"{tier}:{retailer}:{moment.isoformat()}",
            partition_key=partition_key(day, retailer),
            tags={"arbx/retailer": retailer, "arbx/tier": tier},
        )
        for retailer in retailers
    ]


def _tier_schedule(tier: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{tier}_tier",
        job=INGEST_JOBS[tier],
        cron_schedule=CRON_BY_TIER[tier],
        execution_timezone=MARKET_TZ,
        default_status=SCHEDULE_STATUS,
        description=f"Re-scrape the {tier} tier's listings at every retailer with a source "
        "to scrape (a retailer fed only by file drops is ingested as its files land).",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        # sources.yaml as it is now (ARBX_SOURCES), like the retailer_partitions sensor
        retailers = resolve_sources().fetched(partition_retailers(context.instance))
        if not retailers:
            return dg.SkipReason(
                "no retailer has a source to scrape: file drops and webhooks are ingested "
                "as they land (file_drop_sensor)"
            )
        return tier_run_requests(tier, context.scheduled_execution_time, retailers)

    return _schedule


TIER_SCHEDULES = [_tier_schedule(tier) for tier in CRON_BY_TIER]


# The daily full normalisation and match, off-peak: after the tracking tier's 03:00 scrape,
# before 05:00's model refresh.
full_rematch_schedule = dg.ScheduleDefinition(
    name="full_rematch",
    job=rematch_all,
    cron_schedule="30 4 * * *",
    execution_timezone=MARKET_TZ,
    default_status=SCHEDULE_STATUS,
    description="Normalise and match the whole catalogue again once a day (runs in "
    "between redo only what changed).",
)

MATCH_SCHEDULES = [full_rematch_schedule]
