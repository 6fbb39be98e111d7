"""Watch rules and the alert log in the warehouse."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from arbx_dagster.alerts import WATCH_RULE_SCHEMA, DispatchReport, WatchRule, rules_frame
from arbx_dagster.domain.schema import UTC_DATETIME
from arbx_dagster.storage.settings_store import audit
from arbx_dagster.storage.warehouse import Warehouse


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
