"""The Dagster instance the CLI uses: embedded SQLite by default, PostgreSQL when configured."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from arbx_dagster.settings import Settings

# Package data (a link to the repository's top-level dagster.yaml), so that an installed
# package can write it into an instance folder without a checkout.
PRODUCTION_INSTANCE_YAML = resources.files("arbx_dagster") / "dagster.yaml"
# The code location the CLI starts Dagster on: what the top-level workspace.yaml loads, as
# a module, so it needs no workspace file (nor its working directory) next to the package.
CODE_LOCATION = ("-m", "arbx_dagster.definitions")
LOCATION_NAME = "arbx_dagster.definitions"  # the name Dagster gives that location

# The embedded instance goes with the DuckDB warehouse, which allows one writing process:
# runs of different retailers (one schedule tick launches one per retailer) take turns too.
EMBEDDED_MAX_CONCURRENT_RUNS = 1


def production_run_limits() -> list[dict[str, Any]]:
    """The tag concurrency limits of the top-level dagster.yaml (one run per retailer)."""
    config = yaml.safe_load(PRODUCTION_INSTANCE_YAML.read_text(encoding="utf-8"))
    return config["concurrency"]["runs"]["tag_concurrency_limits"]


_EMBEDDED_HEADER = """\
# Written by ArbX: an embedded Dagster instance (SQLite under this folder) so that the
# demo and the UI need no server. Set ARBX_POSTGRES_URL to use ArbX's production
# dagster.yaml instead. Its run limits, one run at a time (DuckDB has a single writer).
"""


def _embedded_instance_yaml() -> str:
    config = {
        "concurrency": {
            "runs": {
                "max_concurrent_runs": EMBEDDED_MAX_CONCURRENT_RUNS,
                "tag_concurrency_limits": production_run_limits(),
            }
        },
        "telemetry": {"enabled": False},
    }
    return _EMBEDDED_HEADER + yaml.safe_dump(config, sort_keys=False)


EMBEDDED_INSTANCE_YAML = _embedded_instance_yaml()


def prepare_dagster_home(settings: Settings) -> Path:
    """Point DAGSTER_HOME at an instance folder holding the right dagster.yaml.

    A DAGSTER_HOME the user set is respected as is. Otherwise ArbX manages
    ``.arbx/dagster_home``: SQLite storage, or a copy of the top-level dagster.yaml
    (PostgreSQL storage) when ARBX_POSTGRES_URL is set.
    """
    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    wanted = (
        PRODUCTION_INSTANCE_YAML.read_text(encoding="utf-8")
        if settings.postgres_url
        else EMBEDDED_INSTANCE_YAML
    )
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text(encoding="utf-8") != wanted:
        config.write_text(wanted, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    return home
