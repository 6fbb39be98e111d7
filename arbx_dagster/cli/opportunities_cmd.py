"""``arbx opportunities``: the spreads that wait for a person before anyone is alerted.

A spread resting on weak identity evidence, or with a gap implausible for its category, is
held for review (``domain/review.py``). Labelling its two listings settles it:
``arbx matches label BUY REF --match`` confirms the spread (it is alerted from the next
run on), ``--no-match`` splits the products (the spread disappears).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from arbx_dagster.cli.config_cmd import open_warehouse_migrated
from arbx_dagster.reporting.format import console as make_console
from arbx_dagster.reporting.format import money
from arbx_dagster.storage.settings_store import read_thresholds

app = typer.Typer(help="Opportunities: the spreads held for review.", no_args_is_help=True)


@app.command("review")
def review(
    limit: Annotated[
        int, typer.Option(help="Show at most this many, most money first.", min=1)
    ] = 50,
) -> None:
    """List live spreads held for review, why, and the command that settles each."""
    with open_warehouse_migrated() as warehouse:
        held = warehouse.query(
            "SELECT * FROM opportunities WHERE status <> 'expired' AND review IS NOT NULL "
            "ORDER BY margin_clp DESC, opportunity_id LIMIT $1",
            [limit],
        )
        code = read_thresholds(warehouse).currency
    console = make_console()
    if held.height == 0:
        console.print("no spread is waiting for review")
        return
    table = Table(
        "product", "buy", "reference", "margin", "why", "settle with", title="Held for review"
    )
    for row in held.iter_rows(named=True):
        buy = f"{row['buy_retailer']}:{row['buy_sku']}"
        ref = f"{row['ref_retailer']}:{row['ref_sku']}"
        table.add_row(
            row["product_name"] or row["canonical_id"],
            f"{buy} {money(row['buy_price'], code)}",
            f"{ref} {money(row['ref_price'], code)}",
            money(row["margin_clp"], code),
            row["review"],
            f"arbx matches label {buy} {ref} --match | --no-match",
        )
    console.print(table)
