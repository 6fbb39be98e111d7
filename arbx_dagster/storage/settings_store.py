"""Business settings in ``system_config`` and every change to them in ``audit_log``."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import polars as pl

from arbx_dagster.domain.config import Thresholds, coerce_setting, rebased_money, setting_key
from arbx_dagster.storage.warehouse import Warehouse


def read_thresholds(warehouse: Warehouse) -> Thresholds:
    """Current settings: stored values over the shipped defaults."""
    rows = warehouse.query("SELECT key, value FROM system_config")
    return Thresholds.from_rows(dict(rows.iter_rows()))


def set_setting(
    warehouse: Warehouse,
    key: str,
    value: Any,
    *,
    actor: str,
    known_retailers: Collection[str] | None = None,
) -> Thresholds:
    """Validate and store one setting, recording who changed it from what to what.

    ``known_retailers``: the retailers sources.yaml provides (see ``coerce_setting``)."""
    key = setting_key(key)
    try:
        coerced = coerce_setting(key, value, known_retailers=known_retailers)
    except ValueError as exc:
        audit(warehouse, actor, "config.set", key, {"value": value}, outcome=f"rejected: {exc}")
        raise
    current = read_thresholds(warehouse)
    changes = {key: coerced}
    if key == "currency":  # defaults follow the currency's minor units; choices stay
        changes.update(rebased_money(current, coerced))
    now = datetime.now(UTC)
    with warehouse.transaction():
        warehouse.upsert(
            "system_config",
            pl.DataFrame(
                {
                    "key": list(changes),
                    "value": [json.dumps(v) for v in changes.values()],
                    "updated_at": [now] * len(changes),
                    "updated_by": [actor] * len(changes),
                }
            ),
            ["key"],
        )
        for name, value in changes.items():
            before = getattr(current, name)
            audit(warehouse, actor, "config.set", name, {"from": before, "to": value})
    return read_thresholds(warehouse)


def audit(
    warehouse: Warehouse,
    actor: str,
    action: str,
    target: str | None,
    details: dict[str, Any] | None = None,
    *,
    outcome: str = "ok",
) -> None:
    warehouse.execute(
        "INSERT INTO audit_log (actor, action, target, details, outcome) "
        "VALUES ($1, $2, $3, $4, $5)",
        [actor, action, target, json.dumps(details or {}, default=str), outcome],
    )
