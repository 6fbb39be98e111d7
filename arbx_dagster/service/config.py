"""The service's settings, read once from the environment.

Secrets (API keys, the webhook secret) are kept out of ``repr`` so that a settings object
can be logged or shown in a traceback without leaking them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from arbx_dagster.settings import Settings

# The webhook signature contract: a signed timestamp older (or newer) than this is refused.
SIGNATURE_TOLERANCE_SECONDS = 300


class ServiceConfigError(ValueError):
    """An ARBX_* service variable is malformed; the message names it."""


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
        try:
            env = _ServiceEnv()
        except ValidationError as exc:
            first = exc.errors()[0]
            variable = f"ARBX_{str(first['loc'][0]).upper()}"
            raise ServiceConfigError(f"{variable}: {first['msg']}") from None
        base = base or Settings.from_env()
        return cls(
            base=base,
            api_keys=parse_api_keys(env.api_keys),
            webhook_secret=env.webhook_secret,
            webhook_source=env.webhook_source,
            cors_origins=_origins(env.cors_origins),
            rate_limit_per_key=env.rate_limit_per_key,
            rate_limit_per_client=env.rate_limit_per_client,
            max_body_bytes=env.max_body_bytes,
            max_webhook_observations=env.webhook_max_observations,
            dagster_url=env.dagster_url.rstrip("/"),
            sse_heartbeat_seconds=env.sse_heartbeat_seconds,
            sse_max_clients=env.sse_max_clients,
            opportunities_cache_seconds=env.opportunities_cache_seconds,
            run_watch_seconds=env.run_watch_seconds,
            warehouse_pool_size=env.warehouse_pool_size,
            redis_prefix=base.redis_prefix,
        )


class _ServiceEnv(BaseSettings):
    """The service's ``ARBX_*`` variables as the environment gives them (typed, bounded)."""

    model_config = SettingsConfigDict(env_prefix="ARBX_", env_ignore_empty=True, extra="ignore")

    api_keys: str | None = None
    webhook_secret: str | None = None
    webhook_source: str | None = None
    cors_origins: str | None = None
    rate_limit_per_key: int = Field(default=600, ge=0)
    rate_limit_per_client: int = Field(default=1200, ge=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    webhook_max_observations: int = Field(default=5_000, ge=1)
    dagster_url: str = "http://127.0.0.1:3000"
    sse_heartbeat_seconds: float = Field(default=15.0, gt=0)
    sse_max_clients: int = Field(default=2_000, ge=1)
    opportunities_cache_seconds: int = Field(default=30, ge=0)
    run_watch_seconds: float = Field(default=5.0, ge=0)
    warehouse_pool_size: int = Field(default=8, ge=1)
