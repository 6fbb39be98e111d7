"""``arbx bench glitches``: how well glitch and spread detection work, measured.

Without ``--series`` it scores the detectors on two kinds of markets, scenario by scenario:
the simulator's (planted glitches, gaps and real promotions) and an independent retail
generator's (permanent level shifts then promotions, multi-day and first-day glitches,
event days, card-only dips, stock-outs, price matching, missed crawls). With
``--series FILE.csv`` it scores the glitch detector on the user's own labelled price series.
Method and definitions:
``arbx_dagster/bench/glitches.py``, ``series_bench.py`` and ``retail_bench.py``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

# Targets (issue 15): every simulated scenario >= 0.97; the retail generator and a user's
# series >= 0.95 overall; spreads >= 0.95; no promotion flagged as a glitch.
SIMULATOR_TARGET = 0.97
TARGET = 0.95


class Suite(StrEnum):
    all = "all"
    simulator = "simulator"
    retail = "retail"


def _cells(m: dict[str, Any]) -> list[str]:
    return [f"{m['precision']:.3f}", f"{m['recall']:.3f}", *(str(m[k]) for k in ("tp", "fp", "fn"))]


def _series_table(result: dict[str, Any]) -> Table:
    table = Table("detector", "precision", "recall", "tp", "fp", "fn", title="bench glitches")
    table.add_row("glitch", *_cells(result["glitch"]))
    return table


def _print_errors(errors: dict[str, Any], console: Console, shown: int = 5) -> None:
    """The first missed glitches and false alarms of a user's series (all counted; the first
    twenty of each in the JSON's ``errors``)."""
    from arbx_dagster.reporting.format import clp

    prices = ("price_offer", "price_before", "price_list", "price_card")
    for kind in ("missed", "false_alarms"):
        rows = errors[f"first_{kind}"][:shown]
        if not rows:
            continue
        table = Table(title=f"first {len(rows)} of {errors[kind]} {kind.replace('_', ' ')}")
        table.add_column("observed (UTC)", no_wrap=True)
        for name in ("retailer", "sku", "offer", "before", "list", "card"):
            table.add_column(name)
        for row in rows:
            table.add_row(
                row["observed_at"][:16].replace("T", " "),
                row["retailer"],
                row["sku"],
                *("" if row[c] is None else clp(row[c]) for c in prices),
            )
        console.print(table)


def _suites_table(result: dict[str, Any]) -> Table:
    """One row per scenario, then each suite's total (glitches; spreads for the simulator)."""
    table = Table(
        "suite", "scenario", "precision", "recall", "tp", "fp", "fn", title="bench glitches"
    )
    simulated = result.get("simulator")
    if simulated:
        for s in simulated["scenarios"]:
            table.add_row("simulator", f"{s['scenario']} · {s['noise']}", *_cells(s["glitch"]))
        table.add_row("simulator", "[b]all glitches[/b]", *_cells(simulated["glitch"]))
        table.add_row("simulator", "[b]all spreads[/b]", *_cells(simulated["spread"]))
    retail = result.get("retail")
    if retail:
        for s in retail["scenarios"]:
            table.add_row("retail", s["scenario"], *_cells(s["glitch"]))
        table.add_row("retail", "[b]all glitches[/b]", *_cells(retail["glitch"]))
    return table


def _reaches(m: dict[str, Any], target: float) -> bool:
    return m["precision"] >= target and m["recall"] >= target


def meets_targets(result: dict[str, Any]) -> bool:
    """Whether a result reaches the targets above (for ``--check``)."""
    if "glitch" in result and "simulator" not in result and "retail" not in result:
        return _reaches(result["glitch"], TARGET)  # a user's series
    simulated, retail = result.get("simulator"), result.get("retail")
    ok = True
    if simulated:
        ok &= all(_reaches(s["glitch"], SIMULATOR_TARGET) for s in simulated["scenarios"])
        ok &= _reaches(simulated["spread"], TARGET)
        ok &= simulated["promotion_false_glitches"] == 0
    if retail:
        ok &= _reaches(retail["glitch"], TARGET)
    return ok


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
    suite: Annotated[
        Suite,
        typer.Option(
            help="Without --series: the simulator's scenarios, the independent retail "
            "generator's, or both."
        ),
    ] = Suite.all,
    products: Annotated[
        int | None,
        typer.Option(help="Products per scenario (default: 500 simulated, 300 retail).", min=20),
    ] = None,
    write_series: Annotated[
        Path | None,
        typer.Option(
            "--write-series",
            help="Keep each retail scenario as a --series CSV (with diagnosis columns) here.",
            file_okay=False,
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            help="Exit 1 unless the targets are reached: every simulated scenario 0.97, "
            "retail and --series 0.95 (for CI)."
        ),
    ] = False,
) -> None:
    """Precision and recall of glitch (and spread) detection against ground truth, per
    scenario."""
    from arbx_dagster.bench.series_bench import run_series
    from arbx_dagster.bench.series_file import SeriesError

    console = Console(stderr=json_out is not None and str(json_out) == "-")
    try:
        if series is not None:
            result = run_series(series)
        else:
            result = _run_suites(suite, products, write_series, console)
    except SeriesError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    if series is not None:
        console.print(_series_table(result))
        _print_errors(result["errors"], console)
    else:
        _print_suites(result, write_series, console)
    _write_json(result, json_out, console)
    if check and not meets_targets(result):
        typer.secho("below target", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)


def _run_suites(
    suite: Suite, products: int | None, write_series: Path | None, console: Console
) -> dict[str, Any]:
    """The chosen suites' results (``simulator``, ``retail``) and their total ``seconds``,
    with the scenario being scored on the console."""
    from arbx_dagster.bench.glitches import run_simulated
    from arbx_dagster.bench.retail_bench import run_retail

    result: dict[str, Any] = {}
    with console.status("scoring…") as status:

        def progress(name: str) -> None:
            status.update(f"scoring {name}…")

        if suite in (Suite.all, Suite.simulator):
            sim_products = products or 500
            result["simulator"] = run_simulated(sim_products, progress=progress)
        if suite in (Suite.all, Suite.retail):
            result["retail"] = run_retail(
                products or 300, write_dir=write_series, progress=progress
            )
    result["seconds"] = round(sum(r["seconds"] for r in result.values()), 2)
    return result


def _print_suites(result: dict[str, Any], write_series: Path | None, console: Console) -> None:
    """One row per scenario and suite totals, then promotions flagged and the time taken."""
    console.print(_suites_table(result))
    if "simulator" in result:
        console.print(
            "promotions flagged as glitches (simulator): "
            f"{result['simulator']['promotion_false_glitches']}"
        )
    console.print(f"done in {result['seconds']} s")
    if write_series is not None and "retail" in result:
        console.print(f"retail scenarios written to {write_series}")


def _write_json(result: dict[str, Any], json_out: Path | None, console: Console) -> None:
    """The full result as JSON: to stdout for ``-``, else to the file (and say so)."""
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if json_out is not None and str(json_out) == "-":
        typer.echo(text)
    elif json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")


if __name__ == "__main__":  # python -m arbx_dagster.cli.bench_glitches
    typer.run(glitches_command)
