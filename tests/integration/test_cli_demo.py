"""``arbx demo`` as a newcomer runs it (a real process, embedded defaults), on a small
simulated market (``ARBX_SOURCES``: fewer products, ``--days``: fewer days), then what
the next commands see on that machine: ``arbx status`` counts and lists what the demo
found, and ``arbx config set min_margin_clp`` changes what the next opportunities run
finds, audited."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_process import clean_env
from typer.testing import CliRunner

from arbx_dagster.cli import app
from arbx_dagster.storage.warehouse import DuckDBWarehouse

pytestmark = pytest.mark.slow

DAYS = 4
runner = CliRunner()


@dataclass
class Demo:
    home: Path
    sources: Path
    result: subprocess.CompletedProcess[str]
    seconds: float


def small_market(folder: Path) -> Path:
    path = folder / "sources.yaml"
    path.write_text(
        f"""version: 1
archive: {{root: {folder / "archive"}}}
retailers:
  - name: simulator
    connector: simulator
    retailers: [falabella, paris, ripley]
    seed: 7
    n_products: 60
    days: {DAYS}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    folder = tmp_path_factory.mktemp("demo")
    sources = small_market(folder)
    env = {
        **clean_env(),
        "ARBX_HOME": str(folder / "state"),
        "ARBX_SOURCES": str(sources),
        "COLUMNS": "200",  # the table as a wide terminal shows it
    }
    started = time.monotonic()
    result = subprocess.run(
        [str(Path(sys.executable).with_name("arbx")), "demo", "--days", str(DAYS), "--top", "10"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return Demo(folder / "state", sources, result, time.monotonic() - started)


@pytest.fixture
def on_the_demo_machine(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> Demo:
    """This process pointed at the demo's state, as a shell in that folder would be."""
    for name in ("ARBX_POSTGRES_URL", "ARBX_REDIS_URL", "ARBX_DUCKDB_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARBX_HOME", str(demo.home))
    monkeypatch.setenv("ARBX_SOURCES", str(demo.sources))
    monkeypatch.setenv("DAGSTER_HOME", str(demo.home / "dagster_home"))
    return demo


def test_demo_prints_the_top_opportunities_and_a_one_line_summary(demo: Demo) -> None:
    assert demo.result.returncode == 0, demo.result.stdout[-2000:] + demo.result.stderr[-3000:]
    out = demo.result.stdout
    header = next(line for line in out.splitlines() if "margin CLP" in line)
    columns = ["kind", "product", "buy at", "price", "reference", "ref. price", "margin CLP"]
    assert re.findall(r"\S+(?: \S+)*", header.strip())[: len(columns) + 1] == [
        *columns,
        "ROI / depth",
    ]
    rows = [line for line in out.splitlines() if re.match(r"\s+(spread|glitch)\s", line)]
    assert rows, out
    assert all(re.search(r"\$[\d.]+\s+(falabella|paris|ripley)\s+\$[\d.]+", r) for r in rows)

    summary = re.search(
        r"([\d,]+) observations of ([\d,]+) listings ingested \((\d+) quarantined\) · "
        r"([\d,]+) matches into ([\d,]+) products · (\d+) opportunities "
        r"\((\d+) spreads, (\d+) glitches\) · ([\d.]+) s",
        out,
    )
    assert summary, out
    observations, listings, _, matches, products, found, spreads, glitches, seconds = (
        float(g.replace(",", "")) for g in summary.groups()
    )
    assert observations >= listings > 0 and matches > 0 and products > 0
    assert found == spreads + glitches >= len(rows) > 0
    assert 0 < seconds < demo.seconds
    print(f"arbx demo on {DAYS} days: {demo.seconds:.1f} s in all, {seconds:.1f} s of pipeline")


def test_status_after_the_demo_counts_its_work_and_lists_live_opportunities(
    on_the_demo_machine: Demo,
) -> None:
    result = runner.invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    counts = report["last_24h"]
    assert counts["listings_ingested"] > 0 and counts["matches"] > 0
    assert counts["opportunities"] > 0 and counts["live_opportunities"] > 0
    with DuckDBWarehouse(on_the_demo_machine.home / "warehouse.duckdb") as warehouse:
        live = set(
            warehouse.query("SELECT opportunity_id FROM opportunities WHERE status <> 'expired'")[
                "opportunity_id"
            ]
        )
    listed = {o["opportunity_id"] for o in report["opportunities"]}
    assert listed and listed <= live and len(listed) == min(10, len(live))
    dagster = next(c for c in report["components"] if c["name"] == "dagster")
    assert dagster["ok"] and "last run" in dagster["detail"]  # the demo's run

    text = runner.invoke(app, ["status"], env={"COLUMNS": "200"}).stdout
    assert "Live opportunities" in text and "listings ingested" in text


def test_a_higher_min_margin_changes_what_the_next_opportunities_run_finds(
    on_the_demo_machine: Demo,
) -> None:
    import dagster as dg

    from arbx_dagster.assets import ALL_ASSETS
    from arbx_dagster.assets.opportunities import opportunities
    from arbx_dagster.resources import (
        AlertsResource,
        CacheResource,
        ClockResource,
        SourcesResource,
        WarehouseResource,
    )

    path = on_the_demo_machine.home / "warehouse.duckdb"
    with DuckDBWarehouse(path) as warehouse:
        margins = sorted(
            warehouse.query(
                "SELECT margin_clp FROM opportunities WHERE kind = 'spread' AND status <> 'expired'"
            )["margin_clp"]
        )
    assert len(margins) >= 2, "the demo market needs two spreads for this test"
    threshold = margins[len(margins) // 2]  # the upper half stays, the lower half goes

    changed = runner.invoke(
        app, ["config", "set", "min_margin_clp", str(threshold), "--actor", "analyst"]
    )
    assert changed.exit_code == 0, changed.output
    with dg.instance_for_test() as instance:
        run = dg.materialize(
            ALL_ASSETS,
            selection=[opportunities],
            instance=instance,
            resources={
                "warehouse": WarehouseResource(duckdb_path=str(path)),
                "cache": CacheResource(),
                "clock": ClockResource(),
                "alerts": AlertsResource(),
                "sources": SourcesResource(path=str(on_the_demo_machine.sources)),
            },
        )
    assert run.success

    with DuckDBWarehouse(path) as warehouse:
        spreads = warehouse.query(
            "SELECT margin_clp, status FROM opportunities WHERE kind = 'spread'"
        ).rows()
        audit = warehouse.query(
            "SELECT actor, target, details, outcome FROM audit_log WHERE action = 'config.set'"
        ).rows()
    live = [margin for margin, status in spreads if status != "expired"]
    assert live and min(live) >= threshold  # no spread under the new threshold...
    assert sorted(m for m, s in spreads if s == "expired" and m < threshold)  # ...they expired
    assert audit[-1][:2] == ("analyst", "min_margin_clp") and audit[-1][3] == "ok"
    assert json.loads(audit[-1][2]) == {"from": 10_000, "to": threshold}
