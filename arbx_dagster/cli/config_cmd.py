"""``arbx config``: read and change business settings at run time (audited)."""

from __future__ import annotations

import getpass

import typer
from rich.console import Console
from rich.table import Table

from arbx_dagster.domain.config import MONEY_SETTINGS, Thresholds, setting_key
from arbx_dagster.reporting.format import money
from arbx_dagster.settings import Settings
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.settings_store import read_thresholds, set_setting
from arbx_dagster.storage.warehouse import Warehouse, open_warehouse

app = typer.Typer(
    help="Show or change thresholds (min margin, min ROI, retailers…).", no_args_is_help=True
)


def open_warehouse_migrated() -> Warehouse:
    """The configured warehouse, schema up to date (for commands that edit settings)."""
    settings = Settings.from_env()
    warehouse = open_warehouse(settings.postgres_url, settings.duckdb_path)
    migrate(warehouse)
    return warehouse


def current_thresholds() -> Thresholds:
    """The configured warehouse's settings, read without creating anything (the shipped
    defaults where no warehouse exists yet)."""
    settings = Settings.from_env()
    if settings.postgres_url is None and not settings.duckdb_path.exists():
        return Thresholds()
    with open_warehouse(settings.postgres_url, settings.duckdb_path) as warehouse:
        if not warehouse.table_exists("system_config"):  # not migrated yet
            return Thresholds()
        return read_thresholds(warehouse)


@app.command("show")
def show() -> None:
    """Print every setting and its current value."""
    with open_warehouse_migrated() as warehouse:
        thresholds = read_thresholds(warehouse)
    table = Table("setting", "value", "in the market's currency", title="ArbX settings")
    for key, value in thresholds.to_rows().items():
        shown = (
            money(getattr(thresholds, key), thresholds.currency) if key in MONEY_SETTINGS else ""
        )
        table.add_row(key, value, shown)
    Console().print(table)


# A value may be negative ("-5"): read it as the value, not as an unknown option, so that
# the setting's own validation answers (no "--" needed before it).
@app.command("set", context_settings={"ignore_unknown_options": True})
def set_(
    key: str = typer.Argument(
        ...,
        help="Setting name, e.g. min_margin (min_margin_clp), an amount in the market's "
        "currency's minor units (whole CLP, USD cents)",
    ),
    value: str = typer.Argument(..., help="New value, e.g. 15000 or falabella,paris"),
    actor: str = typer.Option(None, help="Who is changing it (default: your user name)."),
) -> None:
    """Change one setting; the change is validated and written to the audit log.
    Retailers must be ones an enabled source of sources.yaml (ARBX_SOURCES) provides."""
    from arbx_dagster.resources.sources import configured_retailers

    with open_warehouse_migrated() as warehouse:
        try:
            known = configured_retailers() if key == "enabled_retailers" else None
            thresholds = set_setting(
                warehouse, key, value, actor=actor or getpass.getuser(), known_retailers=known
            )
        except ValueError as exc:  # SourcesError included
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    stored = setting_key(key)
    shown = thresholds.to_rows()[stored]
    if stored in MONEY_SETTINGS:
        shown += f" ({money(getattr(thresholds, stored), thresholds.currency)})"
    typer.echo(f"{stored} = {shown}")
