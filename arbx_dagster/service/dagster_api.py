"""A small client for the Dagster webserver's GraphQL API (the same API its UI uses).

The service never imports the code location: it launches, terminates and lists runs, and
reads schedules and sensors, through ``$ARBX_DAGSTER_URL/graphql``, so it works against
any deployment (``arbx ui``, ``dagster dev``, a webserver on another host).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

ACTIVE_STATUSES = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


class DagsterUnavailable(RuntimeError):
    """The webserver cannot be reached, or answered with a server error (``status``)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DagsterError(RuntimeError):
    """The webserver answered with an error (``kind`` is the GraphQL type name)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Repository:
    location: str
    name: str
    jobs: tuple[str, ...]
    schedules: list[dict[str, Any]]
    sensors: list[dict[str, Any]]
    partitioned_jobs: frozenset[str] = frozenset()  # jobs that need a partition to run


REPOSITORIES_QUERY = """
query ArbxRepositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        jobs { name }
        partitionSets { pipelineName }
        schedules { name cronSchedule executionTimezone pipelineName
                    scheduleState { status } }
        sensors { name sensorState { status } }
      }
    }
    ... on PythonError { message }
  }
}
"""

LAUNCH_MUTATION = """
mutation ArbxLaunch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
    ... on RunConflict { message }
    ... on UnauthorizedError { message }
    ... on PresetNotFoundError { message }
    ... on ConflictingExecutionParamsError { message }
    ... on NoModeProvidedError { message }
  }
}
"""

TERMINATE_MUTATION = """
mutation ArbxTerminate($runId: String!, $policy: TerminateRunPolicy) {
  terminateRun(runId: $runId, terminatePolicy: $policy) {
    __typename
    ... on TerminateRunSuccess { run { runId status } }
    ... on TerminateRunFailure { message run { runId status } }
    ... on RunNotFoundError { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""

RUNS_QUERY = """
query ArbxRuns($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename
    ... on Runs {
      results { runId jobName status creationTime startTime endTime tags { key value } }
    }
    ... on InvalidPipelineRunsFilterError { message }
    ... on PythonError { message }
  }
}
"""

PARTITION_KEYS_QUERY = """
query ArbxPartitionKeys($selector: PipelineSelector!, $limit: Int) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { partitionKeysOrError(limit: $limit, reverse: true) { partitionKeys } }
    ... on PipelineNotFoundError { message }
    ... on PythonError { message }
  }
}
"""

# The cheapest question that makes the webserver read its instance's run storage.
RUN_STORAGE_QUERY = """
query ArbxRunStorage {
  runsOrError(limit: 1) {
    __typename
    ... on Runs { results { runId } }
    ... on PythonError { message }
  }
}
"""

RUN_QUERY = """
query ArbxRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId jobName status creationTime startTime endTime tags { key value } }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}
"""


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    tags = {t["key"]: t["value"] for t in run.get("tags") or []}
    return {
        "run_id": run["runId"],
        "job_name": run["jobName"],
        "status": run["status"],
        "created_at": run.get("creationTime"),
        "started_at": run.get("startTime"),
        "ended_at": run.get("endTime"),
        "partition": tags.get("dagster/partition"),
        "partition_range": (
            [tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]]
            if "dagster/asset_partition_range_start" in tags
            else None
        ),
        "tags": {k: v for k, v in tags.items() if not k.startswith("dagster/")},
    }


ADD_PARTITION_MUTATION = """
mutation AddPartition($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
    ... on PythonError { message }
    ... on UnauthorizedError { message }
  }
}
"""
_ADDED = ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError")


class DagsterClient:
    def __init__(self, url: str, timeout_seconds: float = 10.0, cache_seconds: float = 30):
        self.url = url.rstrip("/")
        self._http = httpx.Client(timeout=timeout_seconds)
        self._cache_seconds = cache_seconds
        self._repo: tuple[float, Repository] | None = None
        self._mutex = threading.Lock()
        self._partitions: set[tuple[str, str]] = set()  # dynamic partitions known to exist

    def close(self) -> None:
        self._http.close()

    def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        timeout_seconds: float | None = None,
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {} if timeout_seconds is None else {"timeout": timeout_seconds}
        try:
            response = self._http.post(
                f"{self.url}/graphql", json={"query": query, "variables": variables or {}}, **extra
            )
        except httpx.HTTPError as exc:
            raise DagsterUnavailable(f"Dagster webserver at {self.url}: {exc}") from exc
        if response.status_code >= 500:
            raise DagsterUnavailable(
                f"Dagster webserver answered {response.status_code}",
                status=response.status_code,
            )
        body = response.json()
        if body.get("errors"):
            raise DagsterError("GraphQLError", "; ".join(e["message"] for e in body["errors"]))
        return body["data"]

    def ping(self) -> dict[str, Any]:
        try:
            response = self._http.get(f"{self.url}/server_info", timeout=2.0)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise DagsterUnavailable(f"Dagster webserver at {self.url}: {exc}") from exc

    def check_run_storage(self, timeout_seconds: float = 2.0) -> None:
        """Raise :class:`DagsterError` if the webserver cannot read its run storage (a
        webserver up on a database that is down: an error answer or a server error),
        :class:`DagsterUnavailable` if it does not answer at all."""
        try:
            data = self.execute(RUN_STORAGE_QUERY, timeout_seconds=timeout_seconds)
        except DagsterUnavailable as exc:
            if exc.status is None:
                raise
            message = f"the webserver answered {exc.status} to a run storage query"
            raise DagsterError(f"HTTP {exc.status}", message) from exc
        data = data["runsOrError"]
        if data["__typename"] != "Runs":
            raise DagsterError(data["__typename"], data.get("message", "run storage failed"))

    def repository(self, fresh: bool = False) -> Repository:
        """The (single) code location's repository; cached briefly."""
        with self._mutex:
            if not fresh and self._repo and time.monotonic() - self._repo[0] < self._cache_seconds:
                return self._repo[1]
        data = self.execute(REPOSITORIES_QUERY)["repositoriesOrError"]
        if data["__typename"] != "RepositoryConnection" or not data["nodes"]:
            raise DagsterError(data["__typename"], data.get("message", "no code location loaded"))
        node = data["nodes"][0]
        repo = Repository(
            location=node["location"]["name"],
            name=node["name"],
            jobs=tuple(j["name"] for j in node["jobs"] if not j["name"].startswith("__")),
            schedules=[
                {
                    "name": s["name"],
                    "job_name": s["pipelineName"],
                    "cron": s["cronSchedule"],
                    "timezone": s["executionTimezone"],
                    "status": s["scheduleState"]["status"],
                }
                for s in node["schedules"]
            ],
            sensors=[
                {"name": s["name"], "status": s["sensorState"]["status"]} for s in node["sensors"]
            ],
            partitioned_jobs=frozenset(p["pipelineName"] for p in node["partitionSets"]),
        )
        with self._mutex:
            self._repo = (time.monotonic(), repo)
        return repo

    def launch(self, job: str, tags: dict[str, str], run_config: dict[str, Any] | None) -> str:
        repo = self.repository()
        params: dict[str, Any] = {
            "selector": {
                "repositoryLocationName": repo.location,
                "repositoryName": repo.name,
                "jobName": job,
            },
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        if run_config:
            params["runConfigData"] = run_config
        result = self.execute(LAUNCH_MUTATION, {"params": params})["launchRun"]
        if result["__typename"] == "LaunchRunSuccess":
            return result["run"]["runId"]
        if result["__typename"] == "RunConfigValidationInvalid":
            message = "; ".join(e["message"] for e in result["errors"])
        else:
            message = result.get("message", "")
        raise DagsterError(result["__typename"], message)

    def add_dynamic_partitions(self, name: str, keys: Iterable[str]) -> None:
        """Make ``keys`` partitions of the dynamic partitions ``name`` (those that are
        already are left alone), as the sensors would: a launch never waits for them."""
        repo = self.repository()
        selector = {"repositoryLocationName": repo.location, "repositoryName": repo.name}
        for key in keys:
            if (name, key) in self._partitions:
                continue
            variables = {"selector": selector, "name": name, "key": key}
            result = self.execute(ADD_PARTITION_MUTATION, variables)["addDynamicPartition"]
            if result["__typename"] not in _ADDED:
                raise DagsterError(result["__typename"], result.get("message", ""))
            self._partitions.add((name, key))

    def latest_partitions(self, job: str, limit: int = 500) -> list[str]:
        """The partition keys of ``job``'s latest day (``<day>|<retailer>``, in Dagster's
        order): what "now" means for a partitioned job launched without a partition."""
        repo = self.repository()
        selector = {
            "repositoryLocationName": repo.location,
            "repositoryName": repo.name,
            "pipelineName": job,
        }
        data = self.execute(PARTITION_KEYS_QUERY, {"selector": selector, "limit": limit})
        result = data["pipelineOrError"]
        if result["__typename"] != "Pipeline":
            raise DagsterError(result["__typename"], result.get("message", ""))
        keys: list[str] = result["partitionKeysOrError"]["partitionKeys"]
        if not keys:
            return []
        latest_day = keys[-1].split("|")[0]
        return [k for k in keys if k.split("|")[0] == latest_day]

    def terminate(self, run_id: str, policy: str = "SAFE_TERMINATE") -> dict[str, Any]:
        result = self.execute(TERMINATE_MUTATION, {"runId": run_id, "policy": policy})
        return result["terminateRun"]

    def runs(
        self, limit: int = 20, job: str | None = None, statuses: tuple[str, ...] | None = None
    ) -> list[dict[str, Any]]:
        run_filter: dict[str, Any] = {}
        if job:
            run_filter["pipelineName"] = job
        if statuses:
            run_filter["statuses"] = list(statuses)
        data = self.execute(RUNS_QUERY, {"filter": run_filter, "limit": limit})["runsOrError"]
        if data["__typename"] != "Runs":
            raise DagsterError(data["__typename"], data.get("message", ""))
        return [_run_summary(r) for r in data["results"]]

    def run(self, run_id: str) -> dict[str, Any] | None:
        data = self.execute(RUN_QUERY, {"runId": run_id})["runOrError"]
        if data["__typename"] == "RunNotFoundError":
            return None
        if data["__typename"] != "Run":
            raise DagsterError(data["__typename"], data.get("message", ""))
        return _run_summary(data)
