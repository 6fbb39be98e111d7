"""``arbx ui``: the Dagster UI on this project."""

from __future__ import annotations

import os
import shutil
import sys

import typer

from arbx_dagster.instance import CODE_LOCATION, prepare_dagster_home
from arbx_dagster.settings import Settings


def ui(
    port: int = typer.Option(3000, help="Port for the Dagster webserver."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
) -> None:
    """Open the Dagster UI (`dagster dev`): asset graph, runs, checks and materializations."""
    settings = Settings.from_env()
    home = prepare_dagster_home(settings)
    dagster = shutil.which("dagster", path=os.path.dirname(sys.executable)) or "dagster"
    typer.echo(f"Dagster instance: {home}\nOpen http://{host}:{port} (Ctrl-C to stop)")
    # Run from the instance folder (so Dagster does not mistake the top-level production
    # dagster.yaml for this instance's), with ArbX's state folder pinned absolutely.
    os.environ["ARBX_HOME"] = str(settings.home)
    os.chdir(home)
    os.execv(dagster, [dagster, "dev", *CODE_LOCATION, "-h", host, "-p", str(port)])
