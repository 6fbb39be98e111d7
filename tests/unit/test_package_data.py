"""The files ArbX ships from the repository's top level have one copy each: Dagster
deployments and readers find ``sql/``, ``dagster.yaml`` and ``sources.example.yaml`` at the
top, and ``arbx_dagster/`` links to them, so a build puts them in the package (what an
installed ArbX reads; tests/integration/test_installed_package.py runs one)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from arbx_dagster.instance import CODE_LOCATION, PRODUCTION_INSTANCE_YAML
from arbx_dagster.storage.migrations import SQL_DIR, discover

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "arbx_dagster"


@pytest.mark.parametrize("name", ["sql", "dagster.yaml", "sources.example.yaml"])
def test_the_package_links_to_the_top_level_file_instead_of_copying_it(name: str) -> None:
    link = PACKAGE / name
    assert link.is_symlink(), f"arbx_dagster/{name} must be a link to ../{name}, not a copy"
    assert link.resolve() == (REPO / name).resolve()


def test_the_code_reads_the_packaged_files() -> None:
    assert Path(str(SQL_DIR)).resolve() == (REPO / "sql").resolve()
    assert [m.version for m in discover()] == sorted(p.name[:4] for p in REPO.glob("sql/*.sql"))
    assert Path(str(PRODUCTION_INSTANCE_YAML)).resolve() == (REPO / "dagster.yaml").resolve()
    assert (resources.files("arbx_dagster") / "sources.example.yaml").is_file()


def test_the_cli_starts_dagster_on_the_code_location_workspace_yaml_loads() -> None:
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text(encoding="utf-8"))
    modules = [entry["python_module"]["module_name"] for entry in workspace["load_from"]]
    assert list(CODE_LOCATION) == ["-m", *modules]
