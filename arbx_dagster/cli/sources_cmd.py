"""``arbx sources``: see what a source (or one dropped file) would give before it lands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from arbx_dagster.pipeline.source_check import SourceCheck
from arbx_dagster.reporting.format import console as make_console
from arbx_dagster.reporting.format import money

app = typer.Typer(help="Check the sources of sources.yaml before they land.", no_args_is_help=True)

SAMPLE_CHARS = 160


@app.command("check")
def check(
    file: Path = typer.Argument(
        None,
        help="One dropped file to parse (with the file-drop source whose landing folder "
        "holds it). Default: every enabled source.",
        show_default=False,
    ),
    retailer: str = typer.Option(None, "--retailer", help="Only the sources of this retailer."),
    rows: int = typer.Option(5, "--rows", min=0, help="Rows shown as ArbX would store them."),
) -> None:
    """Parse a source (or one dropped file) without writing anything: the first rows as
    ArbX would store them, the quarantine reasons with a sample row each, the column
    mapping used, and what is missing for opportunities. Exits 1 when nothing would be
    stored."""
    from arbx_dagster.cli.config_cmd import current_thresholds
    from arbx_dagster.pipeline.source_check import SourceCheckError, check_sources
    from arbx_dagster.resources.sources import resolve_sources

    console = make_console()
    try:
        checks = check_sources(
            resolve_sources(),
            current_thresholds(),
            now=datetime.now(UTC),
            retailer=retailer,
            path=file,
        )
    except SourceCheckError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    for result in checks:
        print_check(console, result, rows)
    if not any(c.stored.height for c in checks):
        console.print("[red]Nothing would be stored.[/] Fix what is said above, then check again.")
        raise typer.Exit(1)


def print_check(console: Console, result: SourceCheck, rows: int = 5) -> None:
    """One source's dry run, as ``arbx sources check`` and ``arbx import`` show it."""
    console.rule(f"{result.source} ({result.kind})")
    for relpath in result.files:
        mapping = ", ".join(f"{c} → {f}" for f, c in result.mapping.get(relpath, {}).items())
        ignored = ", ".join(result.ignored.get(relpath, [])) or "none"
        console.print(f"[bold]{relpath}[/]: columns read {mapping or 'none'}; ignored: {ignored}")
    console.print(
        f"{result.fetched:,} rows read: [green]{result.stored.height:,} would be stored[/], "
        f"[yellow]{result.quarantined.height:,} quarantined[/]"
    )
    for error in result.errors:
        console.print(f"[yellow]fetch:[/] {error}")
    if rows and result.stored.height:
        preview = result.preview(rows)
        table = Table(*preview.columns, title="as ArbX would store them")
        for row in preview.iter_rows(named=True):
            table.add_row(*(_cell(name, value, result.currency) for name, value in row.items()))
        console.print(table)
    for reason, count, where, raw in result.reasons:
        sample = _record(raw)
        console.print(f"[yellow]quarantined x{count:,}[/]: {reason}\n    e.g. {where}: {sample}")
    for note in result.notes:
        console.print(f"[cyan]for opportunities:[/] {note}")


def _cell(column: str, value: object, code: str) -> str:
    if value is None:
        return ""
    if column.startswith("price_"):
        return money(value, code)  # type: ignore[arg-type]
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def _record(raw: str) -> str:
    """A quarantined row's raw record, its empty fields left out, cut to a line."""
    try:
        fields = {k: v for k, v in json.loads(raw).items() if v not in (None, "")}
        text = json.dumps(fields, ensure_ascii=False)
    except (json.JSONDecodeError, AttributeError):
        text = raw
    return text if len(text) <= SAMPLE_CHARS else text[:SAMPLE_CHARS] + "…"
