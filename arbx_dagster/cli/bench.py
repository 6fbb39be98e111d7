"""``arbx bench matching``: the matcher measured on a two-catalogue benchmark folder.

Trains on ``pairs/train.jsonl``, picks thresholds and capacity on ``pairs/valid.jsonl``,
reports ``pairs/test.jsonl`` (mean over seeds), then blocks, scores and assigns the full
catalogues against ``matches.csv``. Method: ``arbx_dagster/bench/matching.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from arbx_dagster.cli.bench_api import bench_api
from arbx_dagster.cli.bench_freshness import freshness_command
from arbx_dagster.cli.bench_glitches import glitches_command
from arbx_dagster.cli.bench_opportunities import opportunities_command
from arbx_dagster.cli.bench_scale import scale_command
from arbx_dagster.cli.steps import report_console, step_progress

app = typer.Typer(help="Measure the matcher (and detectors) on benchmarks.", no_args_is_help=True)

# Published pairwise F1 on the same test splits, for the summary.
PUBLISHED: dict[str, dict[str, list[tuple[str, str]]]] = {
    "abt_buy": {
        "pairwise": [
            ("Magellan", "0.436"),
            ("DeepMatcher", "0.628"),
            ("Ditto (RoBERTa, fine-tuned)", "0.893"),
            ("HierGAT", "0.898"),
        ],
        "end_to_end": [
            ("pyJedAI (best unsupervised, tuned on truth)", "0.947"),
            ("Splink (EM + one-to-one)", "~0.87-0.90"),
        ],
    },
    # Ditto (Li et al., PVLDB 2021), WDC Product Matching, title only, same training sizes
    "wdc_cameras": {"pairwise": [("Ditto (RoBERTa, fine-tuned, large)", "0.912")]},
    "wdc_computers": {"pairwise": [("Ditto (RoBERTa, fine-tuned, medium)", "0.886")]},
}


def _parse_seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter("seeds are integers separated by commas, e.g. 0,1,2") from None
    if not seeds:
        raise typer.BadParameter("give at least one seed")
    return seeds


def summary_table(report: dict[str, Any], details: dict[str, Any]) -> Table:
    """The readable summary: the report's numbers, per-seed F1s and references."""
    mode = report.get("mode", "trained")
    table = Table(
        "stage", "metric", "value", title=f"bench matching · {report['dataset']} · {mode}"
    )
    pw, bl, e2e, sec = (report[k] for k in ("pairwise", "blocking", "end_to_end", "seconds"))
    seeds = ", ".join(f"{r['f1']:.3f}" for r in details.get("pairwise_runs", []))
    table.add_row(
        "pairwise (test)", "precision / recall", f"{pw['precision']:.3f} / {pw['recall']:.3f}"
    )
    label = "F1 (mean of seeds)" if seeds else "F1"
    table.add_row("", label, f"[bold]{pw['f1']:.3f}[/]" + (f"  ({seeds})" if seeds else ""))
    cut = "threshold (from valid)" if mode == "trained" else "threshold (the model's own)"
    table.add_row("", cut, f"{pw['threshold']:.2f}")
    trees = ", ".join(str(r["trees"]) for r in details.get("pairwise_runs", []) if "trees" in r)
    if trees:
        table.add_row("", "trees per seed (from valid)", trees)
    grams = ", ".join(
        "words + n-grams" if r["token_grams"] else "words"
        for r in details.get("pairwise_runs", [])
        if "token_grams" in r
    )
    if grams:
        table.add_row("", "word weights per seed (from valid)", grams)
    calibration = report.get("calibration") or {}
    if calibration.get("ece") is not None:
        sure = calibration.get("above_0_9")
        table.add_row(
            "calibration (test)",
            "ECE / matches among p ≥ 0.9",
            f"{calibration['ece']:.3f} / " + ("—" if sure is None else f"{sure:.3f}"),
        )
    if bl is None:
        table.add_row("blocking, end to end", "", "[dim]no catalogues (labelled pairs only)[/]")
    else:
        table.add_row("blocking", "pair completeness", f"[bold]{bl['pair_completeness']:.3f}[/]")
        table.add_row(
            "",
            "candidates (per left record)",
            f"{bl['candidates']} ({bl['candidates_per_record']:.2f})",
        )
        table.add_row(
            "end to end", "precision / recall", f"{e2e['precision']:.3f} / {e2e['recall']:.3f}"
        )
        table.add_row("", "F1" + (" (mean of seeds)" if seeds else ""), f"[bold]{e2e['f1']:.3f}[/]")
    unseen = details.get("end_to_end_unseen")
    if unseen and unseen.get("true_pairs"):
        table.add_row(
            "",
            "F1 on records in no training pair",
            f"{unseen['f1']:.3f} ({int(unseen['true_pairs'])} true pairs)",
        )
    matched = details.get("end_to_end_matches_calibration") or {}
    if matched.get("above_0_9") is not None:
        table.add_row("", "true among matches with p ≥ 0.9", f"{matched['above_0_9']:.3f}")
    model = details.get("model")
    if model:
        table.add_row("model", "version (trained without the dataset)", model["version"])
        table.add_row("", "sources", ", ".join(model["sources"]))
    table.add_row(
        "seconds",
        "train / blocking / scoring / total",
        f"{sec['train']:.1f} / {sec['blocking']:.1f} / {sec['scoring']:.1f} / {sec['total']:.1f}",
    )
    for stage, rows in PUBLISHED.get(report["dataset"], {}).items():
        for name, value in rows:
            table.add_row(f"published {stage.replace('_', ' ')}", name, value, style="dim")
    return table


@app.command("matching")
def matching(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="A dataset folder (dataset.json, pairs/*.jsonl and, unless it says "
            '"tables": false, left.csv, right.csv, matches.csv).'
        ),
    ],
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write the report as JSON to this file ('-': stdout)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            help="Use only the first N pairs of each split and N true matches "
            "(a quick check; the numbers are not comparable).",
            min=20,
        ),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Training seeds, comma-separated.")] = "0,1,2",
    zero_shot: Annotated[
        bool,
        typer.Option(
            "--zero-shot",
            help="Score the pipeline's own model, never trained on DATASET (the shipped "
            "model, rebuilt without DATASET when it learned from it), through the "
            "pipeline's blocking, scoring and assignment.",
        ),
    ] = False,
    implied: Annotated[
        bool,
        typer.Option(
            "--implied/--labelled-only",
            help="Train also on the pairs the training labels imply (A = B and B = C "
            "make A = C; a non-match extends to both sides' matches). Trained mode only.",
        ),
    ] = True,
) -> None:
    """Pairwise, blocking and end-to-end quality of the matcher on DATASET.

    Without --zero-shot the matcher is trained on DATASET's training pairs (threshold
    and number of trees chosen on its validation pairs, test reported). A dataset of
    labelled pairs only ("tables": false) reports pairwise quality and calibration;
    blocking and end to end are null."""
    from arbx_dagster.bench.datasets import BenchmarkError
    from arbx_dagster.bench.matching import run_matching_benchmark
    from arbx_dagster.domain.matching.shipped import ShippedModelError

    seed_list = _parse_seeds(seeds)
    to_stdout = json_out is not None and str(json_out) == "-"
    console = report_console(json_out)
    try:
        with step_progress(console) as step:
            result = run_matching_benchmark(
                dataset,
                seeds=seed_list,
                limit=limit,
                zero_shot=zero_shot,
                implied=implied,
                progress=step,
            )
    except (BenchmarkError, ShippedModelError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    console.print(summary_table(result.report, result.details))
    text = json.dumps(result.report, indent=2)
    if to_stdout:
        typer.echo(text)
    elif json_out is not None:
        json_out.write_text(text + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")


# The other measurements live in modules of their own; the `bench` group gathers them.
app.command("glitches")(glitches_command)
app.command("scale")(scale_command)
app.command("opportunities")(opportunities_command)
app.command("api")(bench_api)
app.command("freshness")(freshness_command)
