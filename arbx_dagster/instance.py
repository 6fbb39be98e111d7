"""The Dagster instance the CLI uses: embedded SQLite by default, PostgreSQL when configured."""

from __future__ import annotations

import os
from pathlib import Path

from arbx_dagster.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_INSTANCE_YAML = REPO_ROOT / "dagster.yaml"
WORKSPACE_YAML = REPO_ROOT / "workspace.yaml"

EMBEDDED_INSTANCE_YAML = """\
# Written by ArbX: an embedded Dagster instance (SQLite under this folder) so that the
# demo and the UI need no server. Set ARBX_POSTGRES_URL to use ../../dagster.yaml instead.
telemetry:
  enabled: false
"""


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
