"""API keys: ``Authorization: Bearer <key>`` on every ``/api/*`` route but the webhook.

Keys come from ``ARBX_API_KEYS`` and from the ``api_keys`` table, which stores only the
SHA-256 of each key (a key is shown once, when issued). Comparisons run in constant time
over every configured key, so response timing says nothing about how close a guess was.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from arbx_dagster.service.db import Database, WarehouseBusy, WarehouseUnavailable
from arbx_dagster.storage.warehouse import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's name (never the key) is what the audit log records."""

    name: str
    source: str  # env / table

    @property
    def actor(self) -> str:
        return f"api:{self.name}"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyRing:
    """Environment keys plus the table's hashes (re-read every ``refresh_seconds``)."""

    def __init__(self, env_keys: dict[str, str], db: Database, refresh_seconds: float = 30):
        self._env = [(name, digest(key)) for name, key in env_keys.items()]
        self._db = db
        self._refresh = refresh_seconds
        self._table: list[tuple[str, str]] = []
        self._loaded_at = float("-inf")

    def refresh(self) -> None:
        """Re-read the table's keys (the app does it at start and every few seconds, off
        the request path); on failure the last copy stays in use."""
        try:
            with self._db.read() as warehouse:
                self._table = active_keys(warehouse)
        except (WarehouseBusy, WarehouseUnavailable) as exc:
            log.info("api_keys table not readable (%s); using the last copy", exc)
        except Exception as exc:  # table missing before migrations: env keys only
            log.info("api_keys table not readable: %s", exc)
        self._loaded_at = time.monotonic()

    def due(self, missed: bool = False) -> bool:
        """Time to re-read the table: only while table keys are in use (so revocations
        apply), or after an unknown key was presented — never just because time passed
        (on DuckDB every read competes with the pipeline for the file)."""
        stale = time.monotonic() - self._loaded_at >= self._refresh
        return stale and (missed or bool(self._table))

    def _table_keys(self) -> list[tuple[str, str]]:
        return self._table

    @property
    def configured(self) -> bool:
        return bool(self._env or self._table_keys())

    def verify(self, token: str | None) -> Principal | None:
        """The principal owning ``token``, comparing against every key (constant time)."""
        presented = digest(token or "")
        found: Principal | None = None
        for source, keys in (("env", self._env), ("table", self._table_keys())):
            for name, expected in keys:
                if hmac.compare_digest(presented, expected) and token:
                    found = found or Principal(name, source)
        return found


def active_keys(warehouse: Warehouse) -> list[tuple[str, str]]:
    rows = warehouse.query(
        "SELECT name, key_sha256 FROM api_keys WHERE revoked_at IS NULL ORDER BY name"
    )
    return list(rows.iter_rows())


def issue_key(warehouse: Warehouse, name: str) -> str:
    """Create a key named ``name``; returns the key itself, which is not stored anywhere."""
    key = "arbx_" + secrets.token_urlsafe(32)
    warehouse.upsert(
        "api_keys",
        pl.DataFrame(
            {"key_sha256": [digest(key)], "name": [name], "created_at": [datetime.now(UTC)]}
        ),
        ["key_sha256"],
    )
    return key


def revoke_key(warehouse: Warehouse, name: str) -> int:
    before = warehouse.scalar(
        "SELECT count(*) FROM api_keys WHERE name = $1 AND revoked_at IS NULL", [name]
    )
    warehouse.execute(
        "UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL",
        [datetime.now(UTC), name],
    )
    return int(before or 0)
