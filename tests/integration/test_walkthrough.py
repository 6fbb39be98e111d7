"""README "Your own catalogues", run as written: two exports of any two retailers (USD
prices, unpriced rows, no stock column) to a table of opportunities in one command, and
the error paths a user meets on the way (the CLI in a subprocess, a throwaway ARBX_HOME)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_process import clean_env, run_arbx

from arbx_dagster.storage.warehouse import DuckDBWarehouse

pytestmark = pytest.mark.slow  # each CLI call imports the code location (~10 s)


def _arbx(home: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env(ARBX_HOME=str(home), COLUMNS="200")
    return run_arbx(env, *args, cwd=cwd, timeout=600)


def test_two_exports_become_opportunities_in_one_command(abt_buy_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "state"
    done = _arbx(
        home,
        "import",
        f"abt={abt_buy_dir / 'left.csv'}",
        f"buy={abt_buy_dir / 'right.csv'}",
        "--currency",
        "USD",
        "--assume-in-stock",
        cwd=tmp_path,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "columns read id → sku, name → name, price → price_offer; ignored: description" in out
    assert "quarantined x660: no price on a successful fetch" in out  # abt's unpriced rows
    assert "Top 20 opportunities" in out and "margin USD" in out
    with DuckDBWarehouse(home / "warehouse.duckdb") as warehouse:
        retailers = warehouse.query("SELECT DISTINCT retailer FROM raw_prices ORDER BY 1")
        spreads = warehouse.scalar(
            "SELECT count(*) FROM opportunities WHERE kind = 'spread' AND status <> 'expired'"
        )
        currency = warehouse.scalar("SELECT value FROM system_config WHERE key = 'currency'")
    assert retailers["retailer"].to_list() == ["abt", "buy"]
    assert spreads >= 50 and currency == '"USD"'
    assert "USD" in (home / "sources.yaml").read_text()

    status = _arbx(home, "status", cwd=tmp_path)
    assert "Live opportunities" in status.stdout, status.stdout + status.stderr


def test_what_a_new_user_gets_wrong_is_said_before_anything_lands(tmp_path: Path) -> None:
    home = tmp_path / "state"
    landing = home / "landing" / "walmart"
    landing.mkdir(parents=True)
    (landing / "export.csv").write_text("id,title,price\nW-1,Sony Turntable,58.45\n")
    check = _arbx(home, "sources", "check", "--retailer", "walmart", cwd=tmp_path)
    out = check.stdout + check.stderr
    assert check.returncode == 1, out
    assert "1 rows read: 0 would be stored, 1 quarantined" in out
    assert "unparsable price_offer: '58.45' (not a CLP amount)" in out
    assert "most prices are not CLP amounts" in out
    assert not (home / "warehouse.duckdb").exists()  # a dry run writes nothing

    empty = _arbx(home, "backfill", "--from", "2026-03-01", "--retailer", "walmart", cwd=tmp_path)
    out = empty.stdout + empty.stderr
    assert empty.returncode == 1, out
    assert "nothing stored: walmart 2026-03-01: no source had rows for it" in out
    assert "The backfill stored no observation." in out
