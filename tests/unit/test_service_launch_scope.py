"""Which launches of a job conflict: the partitions each covers, and "now" for a
partitioned job launched without any (pure functions, no Dagster)."""

from __future__ import annotations

import pytest
from service_harness import StubDagster

from arbx_dagster.service.run_control import LaunchRejected, LaunchRequest, _overlaps, _scoped


def active(partition: str | None = None, first: str | None = None, last: str | None = None):
    return {"partition": partition, "partition_range": [first, last] if first else None}


@pytest.mark.parametrize(
    ("run", "request_", "conflict"),
    [
        (active("2026-11-23|paris"), LaunchRequest("j", partition="2026-11-23|paris"), True),
        (active("2026-11-23|paris"), LaunchRequest("j", partition="2026-11-23|ripley"), False),
        # A range covers the partitions between its ends (day first, then retailer).
        (
            active(first="2026-11-20|falabella", last="2026-11-23|paris"),
            LaunchRequest("j", partition="2026-11-21|ripley"),
            True,
        ),
        (
            active(first="2026-11-20|falabella", last="2026-11-23|paris"),
            LaunchRequest("j", partition="2026-11-23|ripley"),
            False,
        ),
        (
            active(first="2026-11-20|falabella", last="2026-11-21|ripley"),
            LaunchRequest("j", partition_range=("2026-11-21|paris", "2026-11-25|paris")),
            True,
        ),
        # Without partitions, a run or a launch covers the whole job.
        (active(), LaunchRequest("j", partition="2026-11-23|paris"), True),
        (active("2026-11-23|paris"), LaunchRequest("j"), True),
    ],
)
def test_launches_conflict_when_their_partitions_overlap(
    run: dict, request_: LaunchRequest, conflict: bool
) -> None:
    assert _overlaps(run, request_) is conflict


def test_a_partitioned_job_without_partition_runs_today_at_every_retailer() -> None:
    stub = StubDagster()
    today = stub.latest_partitions("full_refresh")
    scoped = _scoped(stub, LaunchRequest("full_refresh"), partitioned=True)  # type: ignore[arg-type]
    assert scoped.partition_range == (today[0], today[-1])
    assert scoped.scope == f"{today[0]}..{today[-1]}"
    tags = scoped.run_tags("api:ops")
    assert tags["dagster/asset_partition_range_start"] == today[0]
    assert tags["dagster/asset_partition_range_end"] == today[-1]


def test_a_partition_for_an_unpartitioned_job_is_refused() -> None:
    request = LaunchRequest("refresh_downstream", partition="2026-11-23|paris")
    with pytest.raises(LaunchRejected) as refused:
        _scoped(StubDagster(), request, partitioned=False)  # type: ignore[arg-type]
    assert refused.value.status == 422
    assert "not partitioned" in str(refused.value)
