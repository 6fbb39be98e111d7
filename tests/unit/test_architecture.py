"""The package's shape as a specification: imports point down the layers of
pyproject.toml's [tool.importlinter] (entry points, orchestration, stages, their parts,
the domain) and no module depends on itself through others."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_imports_point_down_and_never_go_round_in_a_cycle() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    checked = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout[-4000:] + checked.stderr[-2000:]
    assert "2 kept, 0 broken" in checked.stdout


# Modules that are data, not logic (a catalogue of products to simulate).
DATA_TABLES = {"arbx_dagster/domain/simulator/catalogue_data.py"}
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def test_modules_and_functions_stay_small_enough_to_read() -> None:
    too_long: list[str] = []
    for path in sorted((ROOT / "arbx_dagster").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        if name not in DATA_TABLES and text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    assert not too_long, "\n".join(too_long)


# Below the resources nothing reads its configuration from the environment: it is given
# it. Two uses of os.environ are not configuration: sources.yaml's own ${VAR} expansion,
# and the thread count the matcher sets for the worker processes it spawns.
LOWER_LAYERS = ("domain", "pipeline", "storage", "alerts", "ingestion", "reporting")
NOT_CONFIGURATION = {
    "arbx_dagster/ingestion/sources_file.py",
    "arbx_dagster/domain/matching/engine.py",
}


def test_the_layers_below_the_resources_never_read_the_environment() -> None:
    readers = []
    for package in LOWER_LAYERS:
        for path in sorted((ROOT / "arbx_dagster" / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            text = path.read_text(encoding="utf-8")
            if name in NOT_CONFIGURATION:
                continue
            if "os.environ" in text or "os.getenv" in text or "Settings.from_env" in text:
                readers.append(name)
    assert readers == []
