"""Request dependencies: the caller's API key, checked and rate-limited."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from arbx_dagster.service.auth import Principal
from arbx_dagster.service.state import ServiceState
from arbx_dagster.storage.cache import CacheError

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from ARBX_API_KEYS or the api_keys table",
)


async def _principal(st: ServiceState, token: str | None) -> Principal | None:
    """Whose key ``token`` is (None if nobody's), re-reading the table on a miss."""
    principal = st.keys.verify(token)
    if principal is None and token and st.keys.due(missed=True):
        await to_thread.run_sync(st.keys.refresh)  # a key issued since the last look?
        principal = st.keys.verify(token)
    return principal


async def require_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """401 without a valid key, 429 past the key's rate limit."""
    st: ServiceState = request.app.state.arbx
    token = credentials.credentials if credentials else None
    principal = await _principal(st, token)
    if principal is None:
        st.metrics.inc("arbx_auth_failures_total")
        raise HTTPException(
            401, "missing or invalid API key", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        decision = await st.limiter.check("key", principal.name, st.settings.rate_limit_per_key)
    except CacheError:
        decision = None  # fail open: the limiter protects the API, it must not stop it
    if decision is not None and not decision.allowed:
        st.metrics.inc("arbx_rate_limited_total", scope="key")
        raise HTTPException(
            429,
            "rate limit for this API key exceeded",
            headers={"Retry-After": str(decision.retry_after)},
        )
    request.state.principal = principal
    return principal


async def optional_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The caller if a valid key came with the request, else None — never a 401 or a 429:
    for routes that answer everyone (load-balancer probes carry no key) and tell key
    holders more. A wrong key still counts as an authentication failure."""
    st: ServiceState = request.app.state.arbx
    token = credentials.credentials if credentials else None
    principal = await _principal(st, token)
    if principal is None and token:
        st.metrics.inc("arbx_auth_failures_total")
    return principal
