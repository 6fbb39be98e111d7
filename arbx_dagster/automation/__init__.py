"""When things run: jobs, tier schedules, sensors and automation conditions."""

import dagster as dg

from arbx_dagster.settings import settings

# Schedules and sensors start STOPPED in a development instance (turn them on in the UI,
# Automation tab); ARBX_AUTOMATION=on starts them running (production, `make up`).
DEFAULT_STATUS_RUNNING = settings().automation
SCHEDULE_STATUS = (
    dg.DefaultScheduleStatus.RUNNING if DEFAULT_STATUS_RUNNING else dg.DefaultScheduleStatus.STOPPED
)
SENSOR_STATUS = (
    dg.DefaultSensorStatus.RUNNING if DEFAULT_STATUS_RUNNING else dg.DefaultSensorStatus.STOPPED
)

# How often the automation sensor evaluates the assets' conditions
# (ARBX_AUTOMATION_INTERVAL_SECONDS; a test deployment shortens it).
AUTOMATION_INTERVAL_SECONDS = settings().automation_interval_seconds
