"""Component states for ``/health``: what is up, what is busy, what is down."""

from __future__ import annotations

from typing import Any

from arbx_dagster.service.dagster_api import DagsterUnavailable
from arbx_dagster.service.db import WarehouseBusy
from arbx_dagster.service.state import ServiceState
from arbx_dagster.storage.migrations import current_version


def check(st: ServiceState) -> tuple[int, dict[str, Any]]:
    """200 while the API can serve (warehouse and, when configured, Redis up); 503 if not.

    A DuckDB warehouse locked by a running pipeline is ``busy``, not down; the Dagster
    webserver is needed only for pipeline control, so its absence degrades, not fails.
    """
    components: dict[str, dict[str, Any]] = {}
    try:
        with st.db.read() as warehouse:
            version = current_version(warehouse)
        components["warehouse"] = {"state": "ok", "engine": st.db.engine, "schema": version}
    except WarehouseBusy as exc:
        components["warehouse"] = {"state": "busy", "engine": st.db.engine, "detail": str(exc)}
    except Exception as exc:
        components["warehouse"] = {"state": "down", "engine": st.db.engine, "detail": str(exc)}
    redis = st.cache.backend == "redis"
    components["cache"] = {
        "state": "ok" if st.cache.ping() else "down",
        "backend": st.cache.backend,
    }
    components["events"] = {
        "state": "ok" if st.broadcaster.healthy else "starting",
        "sse_clients": st.broadcaster.clients,
        "last_event_id": st.broadcaster.last_id,
    }
    try:
        info = st.dagster.ping()
        components["dagster"] = {"state": "ok", "version": info.get("dagster_version")}
    except DagsterUnavailable as exc:
        components["dagster"] = {"state": "unreachable", "detail": str(exc)}
    down = components["warehouse"]["state"] == "down" or (
        redis and components["cache"]["state"] == "down"
    )
    degraded = any(c["state"] not in ("ok",) for c in components.values())
    status = "down" if down else "degraded" if degraded else "ok"
    return (503 if down else 200), {"status": status, "components": components}
