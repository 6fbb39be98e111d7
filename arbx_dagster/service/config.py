"""The service's settings, read once from the environment.

Secrets (API keys, the webhook secret) are kept out of ``repr`` so that a settings object
can be logged or shown in a traceback without leaking them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from arbx_dagster.settings import Settings

# The webhook signature contract: a signed timestamp older (or newer) than this is refused.
SIGNATURE_TOLERANCE_SECONDS = 300


class ServiceConfigError(ValueError):
    """An ARBX_* service variable is malformed; the message names it."""


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ServiceConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError:
        raise ServiceConfigError(f"{name} must be a number, got {raw!r}") from None


def parse_api_keys(raw: str | None) -> dict[str, str]:
    """``ARBX_API_KEYS``: comma-separated ``key`` or ``name=key``; returns name -> key.

    Unnamed keys are called ``key1``, ``key2``… in the order given (the audit log records
    the name, never the key).
    """
    keys: dict[str, str] = {}
    for i, item in enumerate(p.strip() for p in (raw or "").split(",")):
        if not item:
            continue
        name, sep, key = item.partition("=")
        if not sep:
            name, key = f"key{i + 1}", item
        name, key = name.strip(), key.strip()
        if len(key) < 16:
            raise ServiceConfigError(
                f"ARBX_API_KEYS entry {name!r}: keys must be at least 16 characters"
            )
        keys[name] = key
    return keys


def _origins(raw: str | None) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in (raw or "").split(",") if o.strip())


@dataclass(frozen=True)
class ServiceSettings:
    base: Settings
    api_keys: dict[str, str] = field(default_factory=dict, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_source: str | None = None  # file_drop source that receives webhook batches
    cors_origins: tuple[str, ...] = ()
    rate_limit_per_key: int = 600  # requests per minute per API key
    rate_limit_per_client: int = 1200  # requests per minute per client address
    max_body_bytes: int = 1_048_576
    max_webhook_observations: int = 5_000
    dagster_url: str = "http://127.0.0.1:3000"
    sse_heartbeat_seconds: float = 15.0
    sse_max_clients: int = 2_000
    opportunities_cache_seconds: int = 30
    run_watch_seconds: float = 5.0  # 0 disables pushing run status changes
    warehouse_pool_size: int = 8
    # Namespace of every Redis key; must match the pipeline's CacheResource prefix.
    redis_prefix: str = "arbx:"

    @classmethod
    def from_env(cls, base: Settings | None = None) -> ServiceSettings:
        return cls(
            base=base or Settings.from_env(),
            api_keys=parse_api_keys(os.environ.get("ARBX_API_KEYS")),
            webhook_secret=os.environ.get("ARBX_WEBHOOK_SECRET") or None,
            webhook_source=os.environ.get("ARBX_WEBHOOK_SOURCE") or None,
            cors_origins=_origins(os.environ.get("ARBX_CORS_ORIGINS")),
            rate_limit_per_key=_int("ARBX_RATE_LIMIT_PER_KEY", 600),
            rate_limit_per_client=_int("ARBX_RATE_LIMIT_PER_CLIENT", 1200),
            max_body_bytes=_int("ARBX_MAX_BODY_BYTES", 1_048_576, minimum=1024),
            max_webhook_observations=_int("ARBX_WEBHOOK_MAX_OBSERVATIONS", 5_000, minimum=1),
            dagster_url=(os.environ.get("ARBX_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
            sse_heartbeat_seconds=_float("ARBX_SSE_HEARTBEAT_SECONDS", 15.0),
            sse_max_clients=_int("ARBX_SSE_MAX_CLIENTS", 2_000, minimum=1),
            opportunities_cache_seconds=_int("ARBX_OPPORTUNITIES_CACHE_SECONDS", 30),
            run_watch_seconds=_float("ARBX_RUN_WATCH_SECONDS", 5.0),
            warehouse_pool_size=_int("ARBX_WAREHOUSE_POOL_SIZE", 8, minimum=1),
            redis_prefix=os.environ.get("ARBX_REDIS_PREFIX") or "arbx:",
        )
