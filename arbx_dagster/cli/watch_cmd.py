"""``arbx watch``: watch rules (target price, % drop, N-day low, back in stock)."""

from __future__ import annotations

import getpass
import uuid

import typer
from rich.table import Table

from arbx_dagster.alerts import WatchRule
from arbx_dagster.alerts.store import delete_watch_rule, read_watch_rules, save_watch_rule
from arbx_dagster.cli.config_cmd import open_warehouse_migrated
from arbx_dagster.reporting.format import console

app = typer.Typer(help="Alerts on the prices you care about.", no_args_is_help=True)


@app.command("add")
def add(
    kind: str = typer.Argument(..., help="target_price, pct_drop, lowest_in_days or back_in_stock"),
    product: str = typer.Option(None, help="Canonical product id."),
    sku: str = typer.Option(None, help="One retailer SKU."),
    retailer: list[str] = typer.Option(
        None, metavar="NAME", help="Only this retailer (repeat for more)."
    ),
    category: str = typer.Option(None, help="A category (any level of the path)."),
    target_price: int = typer.Option(None, help="CLP, for target_price."),
    pct: float = typer.Option(None, help="Percent drop, for pct_drop."),
    days: int = typer.Option(None, help="Look-back window in days."),
    first_party_only: bool = typer.Option(False, help="Ignore marketplace sellers."),
    include_card: bool = typer.Option(False, help="Count store-card prices."),
    rule_id: str = typer.Option(None, "--id", help="Rule id (default: generated)."),
) -> None:
    """Add (or replace, with --id) a watch rule; hits alert through ARBX_ALERT_URLS.
    Give what it watches: --product (an existing product id), --sku, --retailer or
    --category."""
    try:
        rule = WatchRule(
            rule_id=rule_id or f"w-{uuid.uuid4().hex[:8]}",
            kind=kind,
            owner=getpass.getuser(),
            canonical_id=product,
            sku=sku,
            retailers=tuple(r.lower() for r in retailer or ()),
            category=category,
            target_price=target_price,
            pct=pct,
            days=days,
            first_party_only=first_party_only,
            include_card=include_card,
        )
    except ValueError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    with open_warehouse_migrated() as warehouse:
        try:
            save_watch_rule(warehouse, rule, actor=getpass.getuser())
        except ValueError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    typer.echo(f"saved watch rule {rule.rule_id}")


@app.command("list")
def list_() -> None:
    """Show every watch rule."""
    with open_warehouse_migrated() as warehouse:
        rules = read_watch_rules(warehouse)
    table = Table(*rules.columns, title="Watch rules")
    for row in rules.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    console().print(table)


@app.command("remove")
def remove(rule_id: str = typer.Argument(..., help="The rule's id.")) -> None:
    """Delete a watch rule."""
    with open_warehouse_migrated() as warehouse:
        existed = delete_watch_rule(warehouse, rule_id, actor=getpass.getuser())
    if not existed:
        typer.secho(f"no watch rule {rule_id}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {rule_id}")
