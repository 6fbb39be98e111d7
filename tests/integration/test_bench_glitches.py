"""``arbx bench glitches``: the detectors measured against planted truth and user series."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from arbx_dagster.bench.glitches import SeriesError, load_series, run_series, run_simulated
from arbx_dagster.cli.bench_glitches import glitches_command
from arbx_dagster.domain.simulator import SimulatorConfig, simulate_market

HEADER = "product_id,retailer,sku,observed_at,price_offer,price_card,in_stock,is_glitch\n"


@pytest.fixture(scope="module")
def simulated() -> dict:
    return run_simulated(n_products=120)


def test_simulated_markets_meet_the_targets_and_promotions_are_not_glitches(simulated):
    for kind in ("glitch", "spread"):
        assert set(simulated[kind]) >= {"precision", "recall", "f1"}
        assert simulated[kind]["precision"] >= 0.95, (kind, simulated[kind])
        assert simulated[kind]["recall"] >= 0.95, (kind, simulated[kind])
    assert simulated["promotion_false_glitches"] == 0
    # Every scenario really contained promotions, glitches and gaps to find.
    for scenario in simulated["scenarios"]:
        assert scenario["event_day_prices"] > 0
        assert scenario["glitch"]["tp"] + scenario["glitch"]["fn"] > 0
        assert scenario["spread"]["tp"] + scenario["spread"]["fn"] > 0
    assert set(simulated["by_noise"]) == {"low", "medium", "high"}
    assert "not matching" in simulated["method"]["canonical_ids"]


def _simulated_series(path: Path) -> Path:
    market = simulate_market(
        SimulatorConfig(
            seed=11,
            n_products=100,
            days=90,
            end=date(2026, 12, 6),
            glitch_rate=0.15,  # enough labelled glitches for a score to mean something
            malformed_rate=0,
        )
    )
    labels = market.truth_glitches.select("retailer", "sku", "observed_at").with_columns(
        is_glitch=pl.lit(1)
    )
    series = (
        market.observations.join(market.truth_listings, on=["retailer", "sku"])
        .join(labels, on=["retailer", "sku", "observed_at"], how="left")
        .filter(pl.col("price_offer").is_not_null())
        .select(
            product_id="true_product_id",
            retailer="retailer",
            sku="sku",
            observed_at=pl.col("observed_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ"),
            price_offer="price_offer",
            price_card="price_card",
            in_stock=pl.col("in_stock").cast(pl.String),
            is_glitch=pl.col("is_glitch").fill_null(0),
        )
    )
    series.write_csv(path)
    return path


def test_user_series_are_scored_per_observation_walking_forward(tmp_path):
    result = run_series(_simulated_series(tmp_path / "series.csv"))
    assert result["labelled_glitches"] > 0
    assert result["glitch"]["precision"] >= 0.95 and result["glitch"]["recall"] >= 0.95
    assert result["days"] == 90


def test_a_glitch_observation_is_judged_only_against_earlier_days(tmp_path):
    rows = [f"tv,paris,p1,2026-03-{d:02d},199990,,true,0" for d in range(1, 21)]
    rows += [
        # Day 21: three observations, the middle one mistaken and fixed within hours.
        "tv,paris,p1,2026-03-21T09:00:00-03:00,199990,,true,0",
        "tv,paris,p1,2026-03-21T11:00:00-03:00,19999,,true,1",
        "tv,paris,p1,2026-03-21T15:00:00-03:00,199990,,true,0",
        # Day 22: the mistake came back and the label was forgotten: a false negative
        # label, which the score must count as a false positive.
        "tv,paris,p1,2026-03-22 10:00,19999,,true,0",
    ]
    path = tmp_path / "small.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    result = run_series(path)
    assert (result["glitch"]["tp"], result["glitch"]["fp"], result["glitch"]["fn"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("product_id,retailer,sku,price_offer\np,paris,1,100\n", "lacks required column"),
        (HEADER + "p,paris,1,2026-03-01,abc,,true,0\n", "line 2: 'abc'"),
        (HEADER + "p,paris,1,2026-03-01,0,,true,0\n", "positive integer"),
        (HEADER + "p,paris,1,yesterday,100,,true,0\n", "ISO date or datetime"),
        (HEADER + "p,paris,1,2026-03-01,100,,maybe,0\n", "true/false"),
        (HEADER + "p,paris,1,2026-03-01,100,,true,2\n", "'is_glitch' expects"),
        (HEADER + "p,paris,,2026-03-01,100,,true,0\n", "'sku' expects a value"),
        (
            HEADER + "p,paris,1,2026-03-01,100,,true,0\np,paris,1,2026-03-01,90,,true,0\n",
            "one observation per retailer, sku and time",
        ),
        (HEADER, "no rows"),
    ],
)
def test_malformed_series_are_refused_with_a_clear_message(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(SeriesError, match=message):
        load_series(path)


def test_the_command_writes_json_and_fails_cleanly_on_bad_input(tmp_path):
    app = typer.Typer()
    app.command()(glitches_command)
    runner = CliRunner()

    rows = [f"tv,paris,p1,2026-03-{d:02d},199990,,true,0" for d in range(1, 21)]
    rows.append("tv,paris,p1,2026-03-21,1999,,true,1")
    series = tmp_path / "s.csv"
    series.write_text(HEADER + "\n".join(rows) + "\n")
    out = tmp_path / "out.json"
    result = runner.invoke(app, ["--series", str(series), "--json", str(out), "--check"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["glitch"]["recall"] == 1.0

    missing = runner.invoke(app, ["--series", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2
    assert "series file not found" in missing.output
