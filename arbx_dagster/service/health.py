"""Component states for ``/health``: what is up, what is busy, what is down.

Anyone may ask (probes carry no key), so the answer to an anonymous caller is only the
overall status and each component's state: the detail — engines, versions, and error
texts that name database hosts, users, databases and the Dagster webserver's URL — is
for callers with an API key (:func:`public`)."""

from __future__ import annotations

from typing import Any

from arbx_dagster.service.dagster_api import DagsterError, DagsterUnavailable
from arbx_dagster.service.db import WarehouseBusy
from arbx_dagster.service.state import ServiceState
from arbx_dagster.storage.migrations import current_version


def check(st: ServiceState) -> tuple[int, dict[str, Any]]:
    """200 while the deployment works (the warehouse, and Dagster's run storage when its
    webserver answers); 503 if not.

    Redis only accelerates and relays (page cache, shared rate limits, live events): the
    data routes answer from the warehouse without it, so its loss degrades. A DuckDB
    warehouse locked by a running pipeline is ``busy``, not down; the Dagster webserver is
    needed only for pipeline control, so its absence (a restart, a UI not started)
    degrades, not fails. A webserver that answers but cannot read its instance's
    run storage is another matter: no run can be launched, recorded or watched — ``down``.
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
    components["cache"] = {
        "state": "ok" if st.cache.ping() else "down",
        "backend": st.cache.backend,
    }
    components["events"] = {
        "state": "ok" if st.broadcaster.healthy else "starting",
        "sse_clients": st.broadcaster.clients,
        "last_event_id": st.broadcaster.last_id,
    }
    components["dagster"] = _dagster(st)
    down = components["warehouse"]["state"] == "down" or components["dagster"]["state"] == "down"
    degraded = any(c["state"] not in ("ok",) for c in components.values())
    status = "down" if down else "degraded" if degraded else "ok"
    return (503 if down else 200), {"status": status, "components": components}


def public(body: dict[str, Any]) -> dict[str, Any]:
    """What an anonymous caller may see of :func:`check`'s answer: the states only."""
    return {
        "status": body["status"],
        "components": {
            name: {"state": component["state"]} for name, component in body["components"].items()
        },
    }


def _dagster(st: ServiceState) -> dict[str, Any]:
    """The webserver (reachable?) and the instance behind it (run storage readable?)."""
    try:
        info = st.dagster.ping()
    except DagsterUnavailable as exc:
        return {"state": "unreachable", "run_storage": "unknown", "detail": str(exc)}
    state = {"state": "ok", "version": info.get("dagster_version"), "run_storage": "ok"}
    try:
        st.dagster.check_run_storage()
    except DagsterError as exc:
        return {**state, "state": "down", "run_storage": "down", "detail": exc.message[:300]}
    except DagsterUnavailable as exc:  # answered /server_info, then no answer: say so only
        return {**state, "state": "unreachable", "run_storage": "unknown", "detail": str(exc)}
    return state
