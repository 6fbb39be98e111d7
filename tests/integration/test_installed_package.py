"""ArbX installed from its wheel (``pip install .``, not editable) runs without a checkout:
``arbx demo`` in an empty folder migrates the warehouse from the packaged ``sql/``, writes
its Dagster instance from the packaged ``dagster.yaml``, reads the packaged
``sources.example.yaml`` and prints opportunities; ``arbx serve`` then answers.

The wheel is built from a copy of the files a build reads (so the checkout's own ``build/``
and ``*.egg-info`` neither leak in nor change) and installed without its dependencies into
a fresh venv that sees this venv's site-packages: the test is about what the wheel ships,
and resolving the world again would take minutes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import pytest
from cli_process import clean_env, free_port

from arbx_dagster.storage.warehouse import DuckDBWarehouse

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# What a build reads: the project metadata and the package with the top-level files it links.
BUILD_INPUTS = ("pyproject.toml", "README.md", "arbx_dagster", "sql", "dagster.yaml")
BUILD_INPUTS += ("sources.example.yaml",)


def _uv() -> str:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (make install puts it in .venv)")
    return uv


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, **kwargs
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _build_wheel(uv: str, tmp: Path) -> Path:
    """sdist, then the wheel from the sdist, as an index would serve them."""
    source = tmp / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        origin = REPO / name
        if origin.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(origin, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(origin, source / name, follow_symlinks=False)
    _run(uv, "build", "--quiet", "--out-dir", tmp / "dist", source)
    (wheel,) = (tmp / "dist").glob("arbx-*.whl")
    return wheel


def _install(uv: str, wheel: Path, venv: Path) -> Path:
    """A fresh venv holding the wheel, borrowing this venv's dependencies."""
    _run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    purelib = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    # Appended after the venv's own site-packages: the wheel's arbx_dagster comes first.
    Path(purelib.stdout.strip(), "zz_arbx_dependencies.pth").write_text("\n".join(ours) + "\n")
    _run(uv, "pip", "install", "--quiet", "--no-deps", "--python", python, wheel)
    return venv / "bin"


def _user_env(home: Path, bin_dir: Path) -> dict[str, str]:
    """A shell with the venv activated and nothing of this test run's set."""
    env = clean_env(HOME=str(home), COLUMNS="200", VIRTUAL_ENV=str(bin_dir.parent))
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH"):
        env.pop(name, None)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def _files(folder: Path) -> set[str]:
    return {
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_an_installed_wheel_runs_the_demo_in_an_empty_folder_and_serves(tmp_path: Path) -> None:
    started = time.monotonic()
    uv = _uv()
    bin_dir = _install(uv, _build_wheel(uv, tmp_path), tmp_path / "venv")
    folder = tmp_path / "empty"
    folder.mkdir()
    env = _user_env(folder, bin_dir)

    where = _run(
        bin_dir / "python", "-c", "import arbx_dagster; print(arbx_dagster.__file__)",
        cwd=folder, env=env,
    )  # fmt: skip
    package = Path(where.stdout.strip()).parent
    assert package.is_relative_to(tmp_path / "venv"), package
    shipped = {p.name: p.read_text() for p in (package / "sql").iterdir()}
    assert shipped == {p.name: p.read_text() for p in (REPO / "sql").glob("*.sql")}
    assert not (package / "sql").is_symlink(), "the wheel holds the files, not the link"
    before = _files(package)

    demo = subprocess.run(
        [bin_dir / "arbx", "demo", "--days", "1", "--top", "5"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "x 3 retailers" in demo.stdout  # the three stores of the packaged example
    rows = [line for line in demo.stdout.splitlines() if re.match(r"\s+(spread|glitch)", line)]
    assert 0 < len(rows) <= 5, demo.stdout
    assert re.search(r"· [1-9]\d* opportunities \(\d+ spreads, \d+ glitches\)", demo.stdout)

    state = folder / ".arbx"  # the default state folder, in the folder it ran in
    instance = (state / "dagster_home" / "dagster.yaml").read_text()
    assert "key: dagster/partition/retailer" in instance  # limits of the packaged dagster.yaml
    with DuckDBWarehouse(state / "warehouse.duckdb") as warehouse:
        applied = warehouse.query("SELECT version FROM schema_migrations")["version"]
    assert sorted(applied.to_list()) == sorted(name[:4] for name in shipped)
    assert _files(package) == before, "nothing is written into the installed package"

    port = free_port()
    server = subprocess.Popen(
        [bin_dir / "arbx", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        health = _first_answer(f"http://127.0.0.1:{port}/health", server)
        dashboard = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    # The demo's warehouse, read by the service; no Dagster webserver runs, so "degraded".
    assert health.status_code == 200, output
    assert health.json()["components"]["warehouse"]["state"] == "ok", output
    assert dashboard.status_code == 200 and "<html" in dashboard.text.lower(), output
    print(f"wheel built, installed, demo run and served in {time.monotonic() - started:.1f} s")


def _first_answer(url: str, server: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()[0]
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError(f"arbx serve did not answer {url} within 60 s")
