"""The independent retail generator and ``arbx bench glitches`` on its scenarios."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from arbx_dagster.bench import retail_market
from arbx_dagster.bench.retail_bench import run_retail, write_series
from arbx_dagster.bench.retail_market.config import RetailMarketConfig
from arbx_dagster.bench.retail_market.generator import generate_retail_market
from arbx_dagster.bench.retail_market.scenarios import SCENARIOS, scenario_configs
from arbx_dagster.bench.series_bench import score_series
from arbx_dagster.bench.series_file import load_series
from arbx_dagster.cli.bench_glitches import glitches_command
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.market_events import EventCalendar

SMALL = RetailMarketConfig(seed=3, n_products=40, days=70)


def test_the_generator_knows_nothing_of_the_detector():
    package = retail_market.__name__
    modules = sorted(Path(retail_market.__file__).parent.glob("*.py"))
    assert len(modules) > 1
    imported: set[str] = set()
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{module.name}: relative import"
                imported.add(node.module or "")
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    outside = {n for n in imported if n.startswith("arbx_dagster")} - {
        n for n in imported if n.startswith(f"{package}.")
    }
    assert not outside, outside


def test_the_same_config_gives_the_same_market_and_another_seed_another():
    first, again = generate_retail_market(SMALL), generate_retail_market(SMALL)
    assert first.series.equals(again.series)
    other = generate_retail_market(replace(SMALL, seed=4))
    assert not first.series.equals(other.series)


def test_each_scenario_plants_the_dynamic_it_is_named_after():
    configs = dict(scenario_configs(n_products=60, days=120))
    assert set(configs) == set(SCENARIOS)

    def series(name: str) -> pl.DataFrame:
        return generate_retail_market(configs[name]).series

    def tagged(frame: pl.DataFrame, tag: str) -> int:
        return frame.filter(pl.col("dynamics").str.contains(tag)).height

    glitches = series("multi_day_glitches").filter(pl.col("is_glitch"))
    assert set(glitches["glitch_day"].drop_nulls()) == {1, 2, 3}
    assert series("first_day_glitches").filter(pl.col("first_day")).height > 0
    out = series("stock_outs").filter(pl.col("is_glitch") & ~pl.col("in_stock"))
    assert out.height > 0
    assert tagged(series("price_matching"), "matched") > tagged(series("everyday"), "matched")
    assert tagged(series("card_only_dips"), "card_dip") > tagged(series("everyday"), "card_dip")
    shifts = series("level_shifts_then_promotions")
    assert tagged(shifts, "promotion") > 0 and tagged(shifts, "recent_shift") > 0
    assert tagged(series("event_days"), "event") > 0

    def crawled_days(frame: pl.DataFrame) -> int:
        return frame.select("sku", pl.col("observed_at").dt.date()).n_unique()

    assert crawled_days(series("missed_crawls")) < 0.9 * crawled_days(series("everyday"))


def test_what_a_labelled_glitch_shows_is_far_below_what_the_listing_showed_the_day_before():
    s = generate_retail_market(replace(SMALL, glitch_rate=1.0)).series.sort(
        "retailer", "sku", "observed_at"
    )
    before = {
        "before": pl.col("price_offer").shift(1).over("retailer", "sku"),
        "was_glitch": pl.col("is_glitch").shift(1).over("retailer", "sku"),
    }
    offer_glitches = s.with_columns(**before).filter(
        pl.col("is_glitch")
        & pl.col("price_card").is_null()  # an offer mistake hides the card price
        & ~pl.col("was_glitch")
        & (pl.col("glitch_day") == 1)
    )
    # One in ten may sit near a promotion's depth (a pack of two at the unit price, a 60 %
    # typo, the day after a sale): most are far below.
    far = offer_glitches.filter(pl.col("price_offer") <= 0.4 * pl.col("before")).height
    assert far >= 0.8 * offer_glitches.height


def test_a_scenario_written_as_csv_scores_like_a_users_series(tmp_path):
    market = generate_retail_market(SMALL)
    path = write_series(market, tmp_path / "market.csv", diagnosis=True)
    frame = load_series(path)  # the diagnosis columns are simply ignored
    assert frame.height == market.series.height
    assert frame["is_glitch"].sum() == market.series["is_glitch"].sum()
    result = score_series(frame, Thresholds(), EventCalendar())
    assert result["labelled_glitches"] == market.series["is_glitch"].sum()
    assert result["glitch"]["tp"] + result["glitch"]["fn"] > 0


@pytest.fixture(scope="module")
def retail() -> dict:
    return run_retail(n_products=40, days=90)


def test_the_retail_bench_reports_every_scenario_and_where_it_is_weak(retail):
    assert [s["scenario"] for s in retail["scenarios"]] == list(SCENARIOS)
    totals = {k: sum(s["glitch"][k] for s in retail["scenarios"]) for k in ("tp", "fp", "fn")}
    assert totals == {k: retail["glitch"][k] for k in ("tp", "fp", "fn")}
    for scenario in retail["scenarios"]:
        labelled = scenario["labelled_glitches"] - scenario["out_of_stock_glitches"]
        assert scenario["glitch"]["tp"] + scenario["glitch"]["fn"] == labelled
        by_mechanism = scenario["recall_by_mechanism"]
        assert sum(m["labelled"] for m in by_mechanism.values()) == labelled
        assert set(scenario["recall_by_glitch_day"]) <= {"1", "2", "3"}
        assert "none" in scenario["false_alarms_by_dynamic"]
    assert "written apart from the detector" in retail["method"]["generator"]


def test_the_command_scores_the_retail_suite_and_writes_its_series(tmp_path):
    app = typer.Typer()
    app.command()(glitches_command)
    out, kept = tmp_path / "out.json", tmp_path / "series"
    args = ["--suite", "retail", "--products", "20", "--json", str(out)]
    result = CliRunner().invoke(app, [*args, "--write-series", str(kept)])
    assert result.exit_code == 0, result.output
    assert "all glitches" in result.output
    written = json.loads(out.read_text())
    assert set(written) == {"retail", "seconds"}
    assert sorted(p.stem for p in kept.glob("*.csv")) == sorted(SCENARIOS)
    rescored = CliRunner().invoke(app, ["--series", str(kept / "everyday.csv")])
    assert rescored.exit_code == 0, rescored.output
