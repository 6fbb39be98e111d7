"""``arbx bench glitches``: how well glitch and spread detection work, measured.

Without ``--series`` it scores the detectors on simulated markets with planted glitches, gaps
and real promotions; with ``--series FILE.csv`` it scores the glitch detector on the user's
own labelled price series. Method and definitions: ``arbx_dagster/bench/glitches.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

TARGET = 0.95


def _table(result: dict[str, Any]) -> Table:
    table = Table("detector", "precision", "recall", "f1", "tp", "fp", "fn", title="bench glitches")
    for kind in ("glitch", "spread"):
        if kind in result:
            m = result[kind]
            table.add_row(
                kind,
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['f1']:.3f}",
                *(str(m[k]) for k in ("tp", "fp", "fn")),
            )
    return table


def _meets_target(result: dict[str, Any]) -> bool:
    scores = [result[k] for k in ("glitch", "spread") if k in result]
    ok = all(s["precision"] >= TARGET and s["recall"] >= TARGET for s in scores)
    return ok and result.get("promotion_false_glitches", 0) == 0


def glitches_command(
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write the full result as JSON to this file ('-': stdout)."),
    ] = None,
    series: Annotated[
        Path | None,
        typer.Option(
            "--series",
            help="Score the glitch detector on your own CSV (product_id, retailer, sku, "
            "observed_at, price_offer[, price_list, price_card, in_stock, category, name, "
            "is_glitch]), with the pipeline's settings (system_config, ARBX_MARKET_EVENTS).",
        ),
    ] = None,
    products: Annotated[
        int, typer.Option(help="Simulated products per scenario (without --series).", min=20)
    ] = 500,
    check: Annotated[
        bool,
        typer.Option(help="Exit 1 unless precision and recall reach 0.95 (for CI)."),
    ] = False,
) -> None:
    """Precision and recall of glitch (and spread) detection against ground truth."""
    from arbx_dagster.bench.glitches import SeriesError, run_series, run_simulated

    console = Console(stderr=json_out is not None and str(json_out) == "-")
    try:
        result = run_series(series) if series is not None else run_simulated(products)
    except SeriesError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    console.print(_table(result))
    if series is None:
        console.print(
            f"promotions flagged as glitches: {result['promotion_false_glitches']} · "
            f"{len(result['scenarios'])} scenarios in {result['seconds']} s"
        )
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if json_out is not None and str(json_out) == "-":
        typer.echo(text)
    elif json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
    if check and not _meets_target(result):
        typer.secho(f"below target ({TARGET})", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


if __name__ == "__main__":  # python -m arbx_dagster.cli.bench_glitches
    typer.run(glitches_command)
