"""Mutating endpoints: pipeline runs, settings, match labels — each one audited."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from arbx_dagster.domain.config import coerce_setting
from arbx_dagster.service import labels, run_control
from arbx_dagster.service.auth import Principal
from arbx_dagster.service.errors import error_responses
from arbx_dagster.service.routes.deps import require_key
from arbx_dagster.service.schemas import (
    ConfigUpdate,
    LabelBody,
    LaunchAnswer,
    LaunchBody,
    PipelineStatus,
    TerminateAnswer,
    config_changes,
)
from arbx_dagster.service.state import ServiceState, get_state
from arbx_dagster.storage.settings_store import read_thresholds, set_setting

# Every route: a key (401), its rate limits (429), the warehouse, Redis or Dagster (503).
router = APIRouter(prefix="/api", tags=["control"], responses=error_responses(401, 429, 503))

RunId = Annotated[str, Path(pattern=r"^[0-9a-fA-F-]{8,64}$")]


@router.post(
    "/pipeline/runs",
    status_code=201,
    response_model=LaunchAnswer,
    responses=error_responses(400, 404, 409, 413, 502),
)
def launch_run(
    body: LaunchBody,
    who: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
) -> dict[str, Any]:
    """Launch a job through Dagster's GraphQL API; 409 if it is already running."""
    request = run_control.LaunchRequest(
        job=body.job,
        partition=body.partition,
        partition_range=(
            (body.partition_range.start, body.partition_range.end) if body.partition_range else None
        ),
        tags=dict(body.tags),
    )
    with st.auditor.action(who.actor, "pipeline.launch", body.job, scope=request.scope) as entry:
        result = run_control.launch(
            st.dagster,
            st.cache,
            request,
            who.actor,
            st.events,
            retailers=st.sources.provided_retailers(),
        )
        entry.details["run_id"] = result["run_id"]
    return result


@router.post(
    "/pipeline/runs/{run_id}/terminate",
    response_model=TerminateAnswer,
    responses=error_responses(404, 409, 502),
)
def terminate_run(
    run_id: RunId,
    who: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
    force: Annotated[
        bool, Query(description="Mark canceled even if the run's process is gone")
    ] = False,
) -> dict[str, Any]:
    """Stop a run (its process unwinds and rolls back open work)."""
    with st.auditor.action(who.actor, "pipeline.terminate", run_id, force=force) as entry:
        result = run_control.terminate(st.dagster, st.cache, run_id, force, st.events)
        entry.details["status"] = result["status"]
    return result


@router.get("/pipeline/status", response_model=PipelineStatus, responses=error_responses(502))
def pipeline_status(
    _: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Recent runs with their status, and every schedule and sensor with its state."""
    return run_control.status(st.dagster, limit)


@router.put("/config", responses=error_responses(400, 413))
def update_config(
    body: ConfigUpdate,  # type: ignore[valid-type]
    who: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
) -> dict[str, Any]:
    """Change thresholds / enabled retailers (only retailers an enabled source of
    sources.yaml provides); each change is audited (from → to)."""
    try:
        changes = config_changes(body)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    if not changes:
        raise HTTPException(422, "no setting to change")
    try:
        known = st.sources.provided_retailers() if "enabled_retailers" in changes else None
        for key, value in changes.items():
            coerce_setting(key, value, known_retailers=known)
    except ValueError as exc:  # SourcesError included: it says which line is wrong
        st.auditor.record_rejection(who.actor, "config.put", changes, str(exc))
        raise HTTPException(422, str(exc)) from exc
    with st.db.write() as warehouse, warehouse.transaction():
        for key, value in changes.items():
            set_setting(warehouse, key, value, actor=who.actor, known_retailers=known)
        return dataclasses.asdict(read_thresholds(warehouse))


@router.post("/matches/{pair_id}/label", responses=error_responses(400, 404, 413))
def label_match(
    pair_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$", description="pair_id of a match")],
    body: LabelBody,
    who: Annotated[Principal, Depends(require_key)],
    st: Annotated[ServiceState, Depends(get_state)],
) -> dict[str, Any]:
    """Confirm or reject a proposed match; the matcher's next training reads the label."""
    # The audit record is written after the warehouse connection is released.
    audited = st.auditor.action(who.actor, "match.label", pair_id, decision=body.decision)
    with audited, st.db.write() as warehouse:
        pair = labels.find_pair(warehouse, pair_id)
        if pair is None:
            raise HTTPException(404, f"no match pair {pair_id}")
        return labels.label_pair(warehouse, pair, body.decision == "confirm", who.actor, body.note)
