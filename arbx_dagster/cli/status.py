"""``arbx status``: is every component up, and what did the pipeline do lately."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import typer
from rich.table import Table

from arbx_dagster.domain.money import DEFAULT_CURRENCY
from arbx_dagster.instance import prepare_dagster_home
from arbx_dagster.reporting.format import console as make_console
from arbx_dagster.reporting.format import opportunities_table
from arbx_dagster.settings import Settings
from arbx_dagster.storage.cache import open_cache
from arbx_dagster.storage.migrations import current_version
from arbx_dagster.storage.queries import activity_since, expiry_note, live_opportunities
from arbx_dagster.storage.settings_store import read_thresholds
from arbx_dagster.storage.warehouse import open_warehouse


@dataclass
class ComponentHealth:
    name: str
    backend: str
    ok: bool
    configured: bool  # explicitly configured (a server), not the embedded default
    detail: str


@dataclass
class StatusReport:
    components: list[ComponentHealth]
    last_24h: dict[str, int] = field(default_factory=dict)
    opportunities: pl.DataFrame | None = None
    currency: str = DEFAULT_CURRENCY
    expired_note: str = ""  # why opportunities went away, when they all expired

    @property
    def healthy(self) -> bool:
        """Down only counts for components the user configured (the embedded ones are
        always "up" or simply empty)."""
        return all(c.ok for c in self.components if c.configured or c.name == "warehouse")


def _warehouse_health(settings: Settings, report: StatusReport) -> None:
    configured = settings.postgres_url is not None
    if not configured and not settings.duckdb_path.exists():
        report.components.append(
            ComponentHealth(
                "warehouse",
                "duckdb",
                True,
                False,
                f"{settings.duckdb_path} not created yet (run `arbx demo`)",
            )
        )
        return
    try:
        with open_warehouse(settings.postgres_url, settings.duckdb_path) as warehouse:
            version = current_version(warehouse)
            if version is not None:
                report.last_24h = activity_since(warehouse, datetime.now(UTC) - timedelta(hours=24))
                report.opportunities = live_opportunities(warehouse, limit=10)
                thresholds = read_thresholds(warehouse)
                report.currency = thresholds.currency
                report.expired_note = expiry_note(warehouse, thresholds)
            report.components.append(
                ComponentHealth(
                    "warehouse",
                    warehouse.engine,
                    True,
                    configured,
                    f"{warehouse.describe()} · schema {version or 'not migrated'}",
                )
            )
    except Exception as exc:  # any failure to reach the store is what status reports
        report.components.append(
            ComponentHealth("warehouse", settings.warehouse_engine, False, configured, str(exc))
        )


def _cache_health(settings: Settings, report: StatusReport) -> None:
    cache = open_cache(settings.redis_url, settings.redis_prefix)
    try:
        ok = cache.ping()
        report.components.append(
            ComponentHealth(
                "cache",
                cache.backend,
                ok,
                settings.redis_url is not None,
                cache.describe() + ("" if ok else " · not answering"),
            )
        )
    finally:
        cache.close()


def _dagster_health(settings: Settings, report: StatusReport) -> None:
    home = prepare_dagster_home(settings)
    try:
        from dagster import DagsterInstance

        with DagsterInstance.get() as instance:
            runs = instance.get_runs(limit=1)
            last = (
                f"last run {runs[0].run_id[:8]} {runs[0].status.value}" if runs else "no runs yet"
            )
            report.components.append(
                ComponentHealth(
                    "dagster",
                    type(instance.run_storage).__name__,
                    True,
                    settings.postgres_url is not None,
                    f"{home} · {last}",
                )
            )
    except Exception as exc:
        report.components.append(
            ComponentHealth(
                "dagster", "instance", False, settings.postgres_url is not None, str(exc)
            )
        )


def collect_status(settings: Settings) -> StatusReport:
    report = StatusReport(components=[])
    # An instance folder of ArbX's (not the user's DAGSTER_HOME) keeps Dagster's storage in
    # the warehouse's PostgreSQL: if that is down, asking again only waits through
    # dagster-postgres' connection retries to say the same.
    shared_postgres = settings.postgres_url is not None and not os.environ.get("DAGSTER_HOME")
    _warehouse_health(settings, report)
    _cache_health(settings, report)
    if shared_postgres and not report.components[0].ok:
        report.components.append(
            ComponentHealth(
                "dagster",
                "PostgresRunStorage",
                False,
                True,
                "not reachable: its storage is the warehouse's PostgreSQL, which is down",
            )
        )
    else:
        _dagster_health(settings, report)
    return report


def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Health of the warehouse, cache and Dagster instance; last 24 h; live opportunities.

    Exits 1 when a configured component is down.
    """
    report = collect_status(Settings.from_env())
    if as_json:
        payload: dict[str, Any] = {
            "healthy": report.healthy,
            "components": [asdict(c) for c in report.components],
            "last_24h": report.last_24h,
            "opportunities": []
            if report.opportunities is None
            else report.opportunities.to_dicts(),
        }
        typer.echo(json.dumps(payload, default=str, indent=2))
    else:
        console = make_console()
        table = Table("component", "backend", "state", "detail", title="ArbX status")
        for c in report.components:
            state = "[green]up[/]" if c.ok else "[red]down[/]"
            table.add_row(c.name, c.backend, state, c.detail)
        console.print(table)
        if report.last_24h:
            console.print(
                "Last 24 h: "
                + " · ".join(
                    f"{k.replace('_', ' ')} [bold]{v:,}[/]" for k, v in report.last_24h.items()
                )
            )
        if report.opportunities is not None and report.opportunities.height:
            console.print(
                opportunities_table(report.opportunities, "Live opportunities", report.currency)
            )
        if report.expired_note:
            console.print(f"[yellow]{report.expired_note}[/]")
    if not report.healthy:
        down = [f"{c.name} ({c.backend})" for c in report.components if not c.ok]
        typer.echo(f"ArbX is not healthy: {', '.join(down)} down.", err=True)
        raise typer.Exit(1)
