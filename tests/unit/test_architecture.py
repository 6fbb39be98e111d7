"""The package's shape as a specification: imports point down the layers of
pyproject.toml's [tool.importlinter] (entry points, orchestration, stages, their parts,
the domain) and no module depends on itself through others."""

from __future__ import annotations

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
