"""Run control: launch, terminate and watch Dagster runs.

Two API workers asked to launch the same job at the same moment must not start it twice:
a launch takes a Redis lease on the job, checks that no run of it covering any of the same
partitions is already queued or running, launches, and only then releases the lease — so
the second request finds the first run and gets 409 with its id. One lease per job (not
per partition) is what makes a launch without a partition and one with a partition
exclusive too: the lease is held for a check and a launch, well under a second.

A partitioned job launched without a partition means "now": the latest day's partitions
of every retailer, as one run (a tier refresh or a full refresh of today).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from arbx_dagster.domain.schema import RETAILER_PARTITIONS_NAME
from arbx_dagster.pipeline.announcements import publish_run_event
from arbx_dagster.service.background import BackgroundThread
from arbx_dagster.service.dagster_api import (
    ACTIVE_STATUSES,
    DagsterClient,
    DagsterError,
    DagsterUnavailable,
)
from arbx_dagster.storage.cache import Cache, CacheError, LockNotAcquired
from arbx_dagster.storage.event_log import EventLog

log = logging.getLogger(__name__)

PARTITION = re.compile(r"^\d{4}-\d{2}-\d{2}\|[a-z][a-z0-9_-]{0,63}$")
TERMINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")
RUN_STATUS_TTL = 7 * 24 * 3600


class LaunchRejected(ValueError):
    """The request names a job or partition that cannot be launched (4xx)."""

    def __init__(self, status: int, message: str, run_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.run_id = run_id


@dataclass(frozen=True)
class LaunchRequest:
    job: str
    partition: str | None = None
    partition_range: tuple[str, str] | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        if self.partition:
            return self.partition
        if self.partition_range:
            return f"{self.partition_range[0]}..{self.partition_range[1]}"
        return "*"

    def run_tags(self, actor: str) -> dict[str, str]:
        tags = {f"arbx/{k}": v for k, v in self.tags.items()}
        tags["arbx/trigger"] = "api"
        tags["arbx/launched_by"] = actor
        if self.partition:
            day, retailer = self.partition.split("|")
            tags["dagster/partition"] = self.partition
            tags["dagster/partition/day"] = day
            tags["dagster/partition/retailer"] = retailer
            tags.setdefault("arbx/retailer", retailer)
        elif self.partition_range:
            tags["dagster/asset_partition_range_start"] = self.partition_range[0]
            tags["dagster/asset_partition_range_end"] = self.partition_range[1]
        return tags


def _span(partition: str | None, partition_range: Any) -> tuple[str, str] | None:
    """The first and last partition a launch covers; None for the whole job."""
    if partition:
        return partition, partition
    if partition_range:
        return partition_range[0], partition_range[1]
    return None


def _overlaps(run: dict[str, Any], request: LaunchRequest) -> bool:
    """Whether an active run covers any partition ``request`` would.

    ``<day>|<retailer>`` keys compare as text in Dagster's own order (day, then retailer
    by name), so two spans overlap when each starts before the other ends. A run or
    request without partitions covers the whole job.
    """
    theirs = _span(run.get("partition"), run.get("partition_range"))
    ours = _span(request.partition, request.partition_range)
    if theirs is None or ours is None:
        return True
    return theirs[0] <= ours[1] and ours[0] <= theirs[1]


def _scoped(client: DagsterClient, request: LaunchRequest, partitioned: bool) -> LaunchRequest:
    """Check the request's partitions against the job; "now" for a partitioned job
    launched without any."""
    has_scope = request.partition is not None or request.partition_range is not None
    if not partitioned:
        if has_scope:
            raise LaunchRejected(422, f"{request.job} is not partitioned: launch it without one")
        return request
    for key in (request.partition, *(request.partition_range or ())):
        if key is not None and not PARTITION.match(key):
            raise LaunchRejected(422, f"partition {key!r} must look like 2026-11-23|ripley")
    if has_scope:
        return request
    today = client.latest_partitions(request.job)
    if not today:
        raise LaunchRejected(422, f"{request.job} has no partitions to run")
    return dataclasses.replace(request, partition_range=(today[0], today[-1]))


def launch(
    client: DagsterClient,
    cache: Cache,
    request: LaunchRequest,
    actor: str,
    events: EventLog | None = None,
    retailers: Sequence[str] = (),
) -> dict[str, Any]:
    """Launch ``request.job`` unless an active run of it covers any of the same partitions.
    ``retailers`` (what sources.yaml provides) are made retailer partitions first."""
    repo = client.repository()
    if request.job not in repo.jobs:
        raise LaunchRejected(404, f"unknown job {request.job!r}; jobs: {', '.join(repo.jobs)}")
    partitioned = request.job in repo.partitioned_jobs
    if partitioned and retailers:
        client.add_dynamic_partitions(RETAILER_PARTITIONS_NAME, retailers)
    request = _scoped(client, request, partitioned)
    lock = f"pipeline:launch:{request.job}"
    try:
        with cache.lock(lock, ttl_seconds=60, wait_seconds=5):
            active = [
                r
                for r in client.runs(limit=50, job=request.job, statuses=ACTIVE_STATUSES)
                if _overlaps(r, request)
            ]
            if active:
                raise LaunchRejected(
                    409,
                    f"{request.job} ({request.scope}) is already {active[0]['status'].lower()} "
                    f"as run {active[0]['run_id']}",
                    run_id=active[0]["run_id"],
                )
            try:
                run_id = client.launch(request.job, request.run_tags(actor), None)
            except DagsterError as exc:
                raise LaunchRejected(422, f"Dagster refused the launch: {exc.message}") from exc
    except LockNotAcquired as exc:
        raise LaunchRejected(409, f"{request.job} is being launched by another worker") from exc
    except CacheError as exc:
        raise DagsterUnavailable(f"cannot take the launch lock: {exc}") from exc
    publish_run_event(
        run_id,
        request.job,
        "QUEUED",
        events=events,
        partition=request.partition,
        partition_range=list(request.partition_range) if request.partition_range else None,
    )
    with contextlib.suppress(CacheError):
        cache.set(f"runs:status:{run_id}", "QUEUED", RUN_STATUS_TTL)
    return {"run_id": run_id, "job_name": request.job, "status": "QUEUED", "scope": request.scope}


def terminate(
    client: DagsterClient,
    cache: Cache,
    run_id: str,
    force: bool,
    events: EventLog | None = None,
) -> dict[str, Any]:
    """Ask the run to stop (its process unwinds: resources close, open transactions roll
    back); with ``force``, a run whose process is gone is marked canceled."""
    run = client.run(run_id)
    if run is None:
        raise LaunchRejected(404, f"no run {run_id}")
    if run["status"] in TERMINAL_STATUSES:
        raise LaunchRejected(409, f"run {run_id} already finished ({run['status']})")
    result = client.terminate(run_id, "SAFE_TERMINATE")
    kind = result["__typename"]
    if kind != "TerminateRunSuccess" and force:
        result = client.terminate(run_id, "MARK_AS_CANCELED_IMMEDIATELY")
        kind = result["__typename"]
    if kind == "RunNotFoundError":
        raise LaunchRejected(404, f"no run {run_id}")
    if kind != "TerminateRunSuccess":
        raise LaunchRejected(409, f"could not terminate {run_id}: {result.get('message', kind)}")
    after = client.run(run_id) or run
    # Tell listeners now rather than at the watcher's next look (which then stays quiet).
    with contextlib.suppress(CacheError):
        cache.set(f"runs:status:{run_id}", after["status"], RUN_STATUS_TTL)
    publish_run_event(run_id, run["job_name"], after["status"], events=events, terminated=True)
    return {"run_id": run_id, "job_name": run["job_name"], "status": after["status"]}


def status(client: DagsterClient, limit: int) -> dict[str, Any]:
    repo = client.repository()
    return {
        "code_location": repo.location,
        "jobs": list(repo.jobs),
        "runs": client.runs(limit=limit),
        "schedules": repo.schedules,
        "sensors": repo.sensors,
    }


class RunWatcher:
    """Announces run status changes (one worker at a time, elected through a lease)."""

    def __init__(
        self,
        client: DagsterClient,
        cache: Cache,
        events: EventLog,
        interval_seconds: float,
    ) -> None:
        self.client = client
        self.cache = cache
        self.events = events
        self.interval = interval_seconds
        self._background = BackgroundThread("arbx-run-watch")
        self._token = f"{id(self)}"
        self._seeded = False

    def start(self) -> None:
        if self.interval > 0:
            self._background.start(self._loop)

    def stop(self) -> None:
        self._background.stop()

    def _leader(self) -> bool:
        lease = "lock:run-watcher"
        ttl = max(self.interval * 3, 5)
        if self.cache.add(lease, self._token, ttl):
            return True
        if self.cache.get(lease) == self._token:
            self.cache.set(lease, self._token, ttl)
            return True
        return False

    def tick(self) -> int:
        """Publish one event per run whose status changed since the last look."""
        if not self._leader():
            return 0
        published = 0
        for run in self.client.runs(limit=25):
            key = f"runs:status:{run['run_id']}"
            known = self.cache.get(key)
            if known == run["status"]:
                continue
            self.cache.set(key, run["status"], RUN_STATUS_TTL)
            if known is None and not self._seeded and run["status"] in TERMINAL_STATUSES:
                continue  # history from before this worker started: not news
            publish_run_event(
                run["run_id"],
                run["job_name"],
                run["status"],
                events=self.events,
                partition=run["partition"],
            )
            published += 1
        self._seeded = True
        return published

    def _loop(self) -> None:
        while not self._background.stopping.wait(self.interval):
            try:
                self.tick()
            except (DagsterUnavailable, DagsterError, CacheError) as exc:
                log.debug("run watcher: %s", exc)
            except Exception:
                log.exception("run watcher tick failed")
