"""``arbx bench opportunities``: the spreads the whole pipeline finds on two real catalogues,
scored against the dataset's true matches. Method: ``arbx_dagster/bench/opportunities.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from arbx_dagster.cli.steps import report_console, step_progress
from arbx_dagster.domain.money import CURRENCIES


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _amount(value: int, currency: str) -> str:
    digits = CURRENCIES[currency].minor_digits
    return f"{value / 10**digits:,.{digits}f} {currency}"


def summary_table(report: dict[str, Any]) -> Table:
    """The readable summary of the report."""
    table = Table("measure", "value", title=f"bench opportunities · {report['dataset']}")
    table.add_row("retailers", ", ".join(f"{r} = {c}" for r, c in report["retailers"].items()))
    for retailer, rows in report["listings"].items():
        table.add_row(
            f"listings at {retailer}",
            f"{rows['stored']:,} stored of {rows['catalogue']:,} "
            f"({rows['unpriced']:,} unpriced, {rows['quarantined']:,} quarantined)",
        )
    table.add_row(
        "thresholds",
        f"margin ≥ {_amount(report['min_margin'], report['currency'])}, "
        f"ROI ≥ {report['min_roi_pct']:g} %",
    )
    table.add_row("spreads (true)", f"{report['spreads']:,} ({report['spreads_true']:,})")
    table.add_row("precision", f"[bold]{_ratio(report['precision'])}[/]")
    table.add_row(
        "precision of the 20 largest margins", f"[bold]{_ratio(report['top20_precision'])}[/]"
    )
    table.add_row(
        "held for review (of them true)", f"{report['review']:,} ({report['review_true']:,})"
    )
    confidence = report["confidence"]
    table.add_row(
        "mean confidence: true / false spreads",
        f"{_ratio(confidence['true_spreads'])} / {_ratio(confidence['false_spreads'])}",
    )
    match, pairs = report["match"], report["true_pairs"]
    table.add_row(
        "matches: precision / recall / F1",
        f"{match['precision']:.3f} / {match['recall']:.3f} / {match['f1']:.3f} "
        f"(on {pairs['listed']:,} of {pairs['all']:,} true pairs, both listings ingested)",
    )
    table.add_row("model", report["model"])
    table.add_row("seconds", f"{report['seconds']:.1f}")
    return table


def opportunities_command(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="A dataset folder with left.csv, right.csv, matches.csv and dataset.json "
            "(whose 'fields' map the columns, 'price' included)."
        ),
    ],
    currency: Annotated[
        str,
        typer.Option(
            help="The currency the catalogues' prices are in: "
            + ", ".join(CURRENCIES)
            + " (abt_buy: USD). Minimum margin: 10 whole units of it (CLP: 10,000)."
        ),
    ] = "CLP",
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write the report as JSON to this file ('-': stdout)."),
    ] = None,
) -> None:
    """Spread precision of the whole pipeline on DATASET's two catalogues.

    left.csv plays falabella and right.csv ripley: both are dropped as files
    and ingested by the file-drop path (prices read in --currency, every
    listing in stock, rows without a price left out); then listings,
    matching (the shipped model, never trained on DATASET), price history
    and opportunities run in a throwaway home (a temporary DuckDB
    warehouse; your .arbx is never touched).

    Thresholds: minimum margin 10 whole units of the currency (USD 10;
    CLP keeps the default 10,000), minimum ROI the default 8 %.

    A spread is true when its buy and reference listings are a pair of
    matches.csv. JSON: spreads, spreads_true, precision, top20_precision
    (the 20 largest margins), review (spreads held for review), match
    (precision / recall / F1 of the matched pairs), seconds."""
    from arbx_dagster.bench.datasets import BenchmarkError
    from arbx_dagster.bench.opportunities import run_opportunities_benchmark
    from arbx_dagster.domain.matching.shipped import ShippedModelError

    to_stdout = json_out is not None and str(json_out) == "-"
    console = report_console(json_out)
    try:
        with step_progress(console) as step:
            report = run_opportunities_benchmark(dataset, currency_code=currency, progress=step)
    except (BenchmarkError, ShippedModelError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    console.print(summary_table(report))
    text = json.dumps(report, indent=2)
    if to_stdout:
        typer.echo(text)
    elif json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
