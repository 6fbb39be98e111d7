"""``arbx backfill``: rebuild historical raw prices for a date range, then refresh."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import typer
from rich.console import Console

from arbx_dagster.instance import prepare_dagster_home
from arbx_dagster.reporting.format import console as make_console
from arbx_dagster.settings import Settings


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def backfill_batches(days: list[date], chosen: list[str], retailers: list[str]) -> list[list[str]]:
    """The raw-price partitions of each run, in order: every retailer is one contiguous range
    (one run); a subset of retailers is one run per retailer and day, since a partition range
    cannot skip retailers."""
    if set(chosen) == set(retailers):
        return [[f"{d.isoformat()}|{r}" for d in days for r in retailers]]
    return [[f"{d.isoformat()}|{r}"] for d in days for r in chosen]


def backfill(
    start: str = typer.Option(
        None,
        "--from",
        metavar="YYYY-MM-DD",
        help="First day, Chilean calendar. Default: today.",
    ),
    end: str = typer.Option(
        None, "--to", metavar="YYYY-MM-DD", help="Last day, inclusive. Default: --from."
    ),
    retailer: list[str] = typer.Option(
        None,
        "--retailer",
        metavar="NAME",
        help="Only this retailer (repeat for more). Default: all.",
    ),
    refresh: bool = typer.Option(
        True, help="Refresh listings, matches, history and opportunities afterwards."
    ),
) -> None:
    """Backfill raw prices (today: live sources and today's dropped files; a past day: the
    archive, re-parsed with the current sources.yaml, or that day's exports); re-running
    replaces a day's rows, never duplicates them. Exits 1 when nothing was stored.

    A dropped file belongs to the day its name dates (walmart/2026-12-01.csv), else to the
    day it was written."""
    from arbx_dagster.assets.partitions import DAY_PARTITIONS
    from arbx_dagster.domain.history import day_of
    from arbx_dagster.resources.sources import configured_retailers

    today = day_of(datetime.now(UTC))
    first = _day(start) if start else today
    last = _day(end) if end else first
    if last < first:
        raise typer.BadParameter("--to is before --from")
    if first < DAY_PARTITIONS.start.date():
        raise typer.BadParameter(
            f"--from is before the first partition ({DAY_PARTITIONS.start.date()}); "
            "set ARBX_HISTORY_START to reach further back"
        )
    provided = configured_retailers()
    unknown = sorted(set(retailer or []) - set(provided))
    if unknown:
        raise typer.BadParameter(f"unknown retailer(s) {unknown}; sources.yaml has {provided}")
    chosen = [r for r in provided if not retailer or r in retailer]
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    run_days(make_console(), days, chosen, refresh=refresh)


def run_days(console: Console, days: list[date], chosen: list[str], *, refresh: bool) -> None:
    """Ingest ``days`` x ``chosen`` retailers (then refresh downstream), printing what was
    stored and why a partition stored nothing; exit 1 on a failed run or nothing stored."""
    from dagster import DagsterInstance

    from arbx_dagster.assets.partitions import add_retailers
    from arbx_dagster.cli.runner import run_with_progress

    prepare_dagster_home(Settings.from_env())
    with DagsterInstance.get() as instance:
        partitioned = add_retailers(instance, chosen)  # the order ranges follow
    stored = quarantined = 0
    empty: dict[str, str] = {}
    for partitions in backfill_batches(days, chosen, partitioned):
        outcome = run_with_progress(
            "backfill_raw_prices",
            console,
            partitions=partitions,
            tags={"arbx/trigger": "backfill"},
        )
        if not outcome.success:
            console.print(f"[red]Backfill run {outcome.run_id} failed:[/] {outcome.error}")
            raise typer.Exit(1)
        raw = outcome.metadata.get("raw_prices", {})
        totals = raw.get("run_totals") or {}  # the run's; "stored" is one partition's
        stored += int(totals.get("stored", 0))
        quarantined += int(totals.get("quarantined", 0))
        empty.update(raw.get("nothing_stored") or {})
    console.print(
        f"Backfilled {len(days)} day(s) x {len(chosen)} retailer(s): "
        f"[bold]{stored:,}[/] observations stored, {quarantined:,} quarantined."
    )
    for why in empty.values():
        console.print(f"[yellow]nothing stored:[/] {why}")
    if not stored:
        console.print(
            "[red]The backfill stored no observation.[/] See why above; `arbx sources check` "
            "shows what each source reads without storing anything."
        )
        raise typer.Exit(1)
    if refresh:
        outcome = run_with_progress("refresh_downstream", console)
        if not outcome.success:
            console.print(f"[red]Refresh run {outcome.run_id} failed:[/] {outcome.error}")
            raise typer.Exit(1)
        console.print(f"Downstream assets refreshed in {outcome.seconds:.1f} s.")
