"""``arbx model``: the match model ArbX ships — build it from public data, show it.

``arbx model build`` is the documented, reproducible way the files in
``arbx_dagster/models`` are made (``bench/shipped_model.py``): the same datasets and
seed give the same corpus, calibration, threshold and version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from arbx_dagster.cli.steps import step_progress

app = typer.Typer(help="The shipped match model: build it from public data, show it.")


def _recipe_table(recipe) -> Table:
    table = Table("", "", title=f"match model {recipe.version}")
    table.add_row(
        "sources (labelled pairs)", ", ".join(f"{k} {v:,}" for k, v in recipe.sources.items())
    )
    table.add_row("threshold", f"{recipe.threshold:.2f}")
    a, b = recipe.calibration
    table.add_row("calibration", f"p = 1 / (1 + exp(-({a:.3f} · raw + {b:.3f})))")
    for source in recipe.sources:
        f1 = recipe.metrics.get(f"loso_{source}_f1")
        if f1 is None:
            continue
        precision = recipe.metrics[f"loso_{source}_precision"]
        recall = recipe.metrics[f"loso_{source}_recall"]
        table.add_row(
            f"held out: {source}",
            f"precision {precision:.3f} · recall {recall:.3f} · F1 {f1:.3f}",
        )
    if "precision" in recipe.metrics:
        table.add_row(
            "simulated market (unseen seed)",
            f"precision {recipe.metrics['precision']:.3f} · recall {recipe.metrics['recall']:.3f}",
        )
    table.add_row("features", str(len(recipe.columns)))
    return table


@app.command("build")
def build(
    datasets: Annotated[
        list[str] | None,
        typer.Argument(
            help="Benchmark datasets to learn from (folders, or names under "
            "ARBX_DATASETS_DIR / ../shared/datasets). Default: the shipped set."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder to write into (default: the package's models folder)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
) -> None:
    """Build the shipped match model: corpus, held-out calibration and threshold."""
    from arbx_dagster.bench.datasets import BenchmarkError
    from arbx_dagster.bench.shipped_model import build as build_model
    from arbx_dagster.domain.matching.shipped import MODEL_DIR, SHIPPED_DATASETS

    console = Console()
    try:
        with step_progress(console) as step:
            recipe = build_model(
                datasets or SHIPPED_DATASETS, out=out or MODEL_DIR, seed=seed, progress=step
            )
    except BenchmarkError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    console.print(_recipe_table(recipe))
    console.print(f"wrote {out or MODEL_DIR}")


@app.command("show")
def show() -> None:
    """What the shipped match model learned from and how it did on held-out markets."""
    from arbx_dagster.domain.matching.shipped import ShippedModelError, read_recipe

    try:
        recipe = read_recipe()
    except ShippedModelError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    Console().print(_recipe_table(recipe))
