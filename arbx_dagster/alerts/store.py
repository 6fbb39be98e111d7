"""Watch rules, the alert log and (without Redis) the alert memory, in the warehouse."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import polars as pl

from arbx_dagster.alerts import (
    WATCH_RULE_SCHEMA,
    AlertMemory,
    DispatchReport,
    WatchRule,
    rules_frame,
)
from arbx_dagster.domain.schema import UTC_DATETIME
from arbx_dagster.storage.cache import Cache, CacheError
from arbx_dagster.storage.settings_store import audit
from arbx_dagster.storage.warehouse import Warehouse

T = TypeVar("T")


def read_watch_rules(warehouse: Warehouse) -> pl.DataFrame:
    """Enabled and disabled rules as ``WATCH_RULE_SCHEMA`` (retailers stored as CSV text)."""
    stored = warehouse.query("SELECT * FROM watch_rules ORDER BY rule_id")
    if stored.is_empty():
        return pl.DataFrame(schema=WATCH_RULE_SCHEMA)
    return (
        stored.with_columns(
            retailers=pl.col("retailers")
            .fill_null("")
            .str.split(",")
            .list.eval(pl.element().filter(pl.element() != ""))
        )
        .select(list(WATCH_RULE_SCHEMA))
        .cast(WATCH_RULE_SCHEMA)
    )  # type: ignore[arg-type]


def save_watch_rule(warehouse: Warehouse, rule: WatchRule, *, actor: str) -> None:
    """Store (or replace) a rule that says what it watches, on a product that exists;
    raise ``ValueError`` saying what to give otherwise (the refusal is audited)."""
    try:
        rule.check_scope()
        if rule.canonical_id is not None and not warehouse.scalar(
            "SELECT count(*) FROM canonical_products WHERE canonical_id = $1", [rule.canonical_id]
        ):
            raise ValueError(
                f"no product {rule.canonical_id}: a watch rule's product (--product, "
                "canonical_id) is a canonical product id, as in the opportunities' canonical_id"
            )
    except ValueError as exc:
        audit(
            warehouse, actor, "watch.save", rule.rule_id, rule.to_dict(), outcome=f"rejected: {exc}"
        )
        raise
    frame = rules_frame([rule]).with_columns(
        retailers=pl.col("retailers").list.join(","),
        created_at=pl.lit(datetime.now(UTC)).cast(UTC_DATETIME),
    )
    with warehouse.transaction():
        warehouse.upsert("watch_rules", frame, ["rule_id"])
        audit(warehouse, actor, "watch.save", rule.rule_id, rule.to_dict())


def delete_watch_rule(warehouse: Warehouse, rule_id: str, *, actor: str) -> bool:
    with warehouse.transaction():
        existed = bool(
            warehouse.scalar("SELECT count(*) FROM watch_rules WHERE rule_id = $1", [rule_id])
        )
        warehouse.execute("DELETE FROM watch_rules WHERE rule_id = $1", [rule_id])
        audit(warehouse, actor, "watch.delete", rule_id, outcome="ok" if existed else "not found")
    return existed


def record_alerts(
    warehouse: Warehouse, reports: list[DispatchReport], *, now: datetime, run_id: str | None
) -> None:
    """Counts of sent / suppressed / failed alerts by kind (for the alert KPIs)."""
    rows = []
    for report in reports:
        rows += [(kind, "sent", n) for kind, n in report.sent.items()]
        rows += [(reason, "suppressed", n) for reason, n in report.suppressed.items()]
        rows += [(f.kind, "failed", 1) for f in report.failures]
    if not rows:
        return
    frame = pl.DataFrame(rows, schema=["alert_kind", "outcome", "n"], orient="row").with_columns(
        sent_at=pl.lit(now).cast(UTC_DATETIME), run_id=pl.lit(run_id, dtype=pl.String)
    )
    warehouse.insert("alert_events", frame)


class WarehouseAlertMemory:
    """The dispatcher's memory (``alerts.AlertMemory``) in the ``alert_memory`` table: what
    Redis would hold, durable across runs when there is no Redis.

    ``add`` is one ``INSERT … ON CONFLICT`` that takes the key only if it is absent or
    expired, so two workers on one PostgreSQL warehouse never both claim an alert. Time to
    live is wall-clock time, as in Redis. Expired keys are purged when the memory is opened.
    """

    backend = "warehouse"

    def __init__(self, warehouse: Warehouse, clock: Callable[[], datetime] | None = None) -> None:
        self.warehouse = warehouse
        self.clock = clock or (lambda: datetime.now(UTC))
        self._guard(
            lambda: warehouse.execute(
                "DELETE FROM alert_memory WHERE expires_at <= $1", [self.clock()]
            )
        )

    @staticmethod
    def _guard(operation: Callable[[], T]) -> T:
        """Report a warehouse failure as the dispatcher expects a memory failure."""
        try:
            return operation()
        except Exception as exc:  # engines raise several unrelated types
            raise CacheError(f"alert memory in the warehouse failed: {exc}") from exc

    def _expiry(self, now: datetime, ttl_seconds: float | None) -> datetime | None:
        return now + timedelta(seconds=ttl_seconds) if ttl_seconds else None

    def get(self, name: str) -> str | None:
        return self.get_many([name])[0]

    def get_many(self, names: Sequence[str]) -> list[str | None]:
        """The values of ``names``, in order, in one query."""
        if not names:
            return []
        now = self.clock()
        keys = pl.DataFrame({"key": list(names)}, schema={"key": pl.String()})
        found = self._guard(
            lambda: self.warehouse.query_with(
                "SELECT m.key, m.value FROM alert_memory AS m JOIN {staged} AS k "
                "ON m.key = k.key WHERE m.expires_at IS NULL OR m.expires_at > $1",
                keys,
                [now],
            )
        )
        values = dict(found.iter_rows())
        return [values.get(name) for name in names]

    def set(self, name: str, value: str, ttl_seconds: float | None = None) -> None:
        now = self.clock()
        self._guard(
            lambda: self.warehouse.execute(
                "INSERT INTO alert_memory (key, value, expires_at, updated_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, expires_at = excluded.expires_at, "
                "updated_at = excluded.updated_at",
                [name, value, self._expiry(now, ttl_seconds), now],
            )
        )

    def add(self, name: str, value: str, ttl_seconds: float | None = None) -> bool:
        now = self.clock()
        taken = self._guard(
            lambda: self.warehouse.query(
                "INSERT INTO alert_memory (key, value, expires_at, updated_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, expires_at = excluded.expires_at, "
                "updated_at = excluded.updated_at "
                "WHERE alert_memory.expires_at IS NOT NULL AND alert_memory.expires_at <= $4 "
                "RETURNING key",
                [name, value, self._expiry(now, ttl_seconds), now],
            )
        )
        return taken.height == 1

    def delete(self, *names: str) -> int:
        def run() -> int:
            with self.warehouse.transaction():
                gone = 0
                for name in names:
                    gone += self.warehouse.query(
                        "DELETE FROM alert_memory WHERE key = $1 RETURNING key", [name]
                    ).height
                return gone

        return self._guard(run) if names else 0

    def describe(self) -> str:
        return f"alert memory in {self.warehouse.describe()}"


def alert_memory(cache: Cache, warehouse: Warehouse) -> AlertMemory:
    """Where alert dedup and cooldowns live: the shared Redis cache when configured (fast,
    across workers), else the warehouse — an in-process cache forgets them between runs."""
    return cache if cache.backend == "redis" else WarehouseAlertMemory(warehouse)
