"""``arbx matches``: confirm or reject that two listings are the same product (audited).

The decisions land in ``match_labels``. The next match run treats each as settled (a
confirmed pair is matched, a rejected one never is), and the match model learns from
them (``domain.matching.shipped.pipeline_model(labels=...)``).
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from arbx_dagster.cli.config_cmd import open_warehouse_migrated
from arbx_dagster.reporting.format import console as make_console
from arbx_dagster.storage.labels import LabelError, label_pair, parse_listing_key, read_labels

app = typer.Typer(
    help="Label pairs of listings as the same product or not (feeds the match model).",
    no_args_is_help=True,
)


@app.command("label")
def label(
    left: Annotated[str, typer.Argument(help="A listing as RETAILER:SKU, e.g. falabella:123")],
    right: Annotated[str, typer.Argument(help="The other listing, e.g. paris:456")],
    is_match: Annotated[
        bool,
        typer.Option(
            "--match/--no-match",
            help="Whether the two listings are the same product.",
            show_default=False,
        ),
    ],
    actor: Annotated[
        str | None, typer.Option(help="Who decides (default: your user name).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
) -> None:
    """Record a decision on one pair; labelling the same pair again replaces it."""
    try:
        a, b = parse_listing_key(left), parse_listing_key(right)
    except LabelError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    with open_warehouse_migrated() as warehouse:
        try:
            row = label_pair(
                warehouse, a, b, is_match=is_match, actor=actor or getpass.getuser(), note=note
            )
        except LabelError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
    verdict = "same product" if row["is_match"] else "different products"
    previous = row["previous"]
    was = "" if previous is None else f" (was: {'match' if previous else 'no match'})"
    typer.echo(
        f"{row['left_retailer']}:{row['left_sku']} ~ {row['right_retailer']}:{row['right_sku']}"
        f" -> {verdict}{was}"
    )


@app.command("labels")
def labels(
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.", min=1)] = 50,
) -> None:
    """List the labelled pairs, newest first."""
    with open_warehouse_migrated() as warehouse:
        frame = read_labels(warehouse)
    console = make_console()
    if frame.height == 0:
        console.print("no labelled pairs yet: `arbx matches label LEFT RIGHT --match`")
        return
    table = Table(
        "left",
        "right",
        "decision",
        "by",
        "when (UTC)",
        "note",
        title=f"labelled pairs ({frame.height})",
    )
    for row in frame.head(limit).iter_rows(named=True):
        table.add_row(
            f"{row['left_retailer']}:{row['left_sku']}",
            f"{row['right_retailer']}:{row['right_sku']}",
            "[green]match[/]" if row["is_match"] else "[red]no match[/]",
            row["labelled_by"],
            row["labelled_at"].strftime("%Y-%m-%d %H:%M"),
            row["note"] or "",
        )
    console.print(table)
