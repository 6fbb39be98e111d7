"""A spinner that names the step a long command is on (benchmarks, model builds)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def report_console(json_out: Path | None) -> Console:
    """Where a report's table goes: stderr when its JSON goes to stdout ('-')."""
    to_stdout = json_out is not None and str(json_out) == "-"
    return Console(stderr=to_stdout, width=None if sys.stdout.isatty() else 120)


@contextmanager
def step_progress(console: Console) -> Iterator[Callable[[str], None]]:
    """A transient spinner with the elapsed time; call the yielded function with each
    step's description."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=None)
        yield lambda step: progress.update(task, description=step)


def bench_postgres_url(postgres: bool) -> str | None:
    """The PostgreSQL URL a ``--postgres`` benchmark runs on (``ARBX_POSTGRES_URL``), or
    None without ``--postgres``."""
    url = os.environ.get("ARBX_POSTGRES_URL") if postgres else None
    if postgres and not url:
        raise typer.BadParameter("--postgres needs ARBX_POSTGRES_URL")
    return url
