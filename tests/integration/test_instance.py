"""Dagster itself runs on PostgreSQL through the top-level dagster.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from arbx_dagster.instance import EMBEDDED_INSTANCE_YAML, prepare_dagster_home
from arbx_dagster.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]


@dg.asset(description="A tiny asset to prove runs land in the configured instance.")
def probe() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": 1})


@pytest.mark.services
def test_top_level_dagster_yaml_stores_runs_in_postgres(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ARBX_POSTGRES_URL", postgres_url)
    # An instance folder holding exactly the shipped config (local artifacts land there).
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = dg.materialize([probe], instance=instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored is not None and stored.is_success
        latest = instance.get_latest_materialization_event(dg.AssetKey("probe"))
        assert latest is not None and latest.run_id == result.run_id


def test_the_cli_uses_an_embedded_sqlite_instance_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("ARBX_POSTGRES_URL", raising=False)
    monkeypatch.setenv("ARBX_HOME", str(tmp_path / "state"))
    home = prepare_dagster_home(Settings.from_env())
    assert home == tmp_path / "state" / "dagster_home"
    assert (home / "dagster.yaml").read_text() == EMBEDDED_INSTANCE_YAML
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"


def test_the_cli_copies_the_production_config_when_postgres_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("ARBX_POSTGRES_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("ARBX_HOME", str(tmp_path / "state"))
    home = prepare_dagster_home(Settings.from_env())
    assert (home / "dagster.yaml").read_text() == (REPO_ROOT / "dagster.yaml").read_text()
