"""`arbx bench freshness` lands changes on a processed market, refreshes it matching and
evaluating only what changed, and reports the documented keys; the planted changes become
what they are, and the opportunities are a full pass's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from arbx_dagster.bench.freshness import CHANGE_MIX, plant_changes, run_freshness
from arbx_dagster.cli import app
from arbx_dagster.domain.simulator import simulate_snapshot


def test_changes_are_the_planned_mix_and_new_listings_are_held_out() -> None:
    market = simulate_snapshot(1_000, seed=3)
    initial, landed, planted = plant_changes(market.observations, market.truth_listings, 100, 3)
    counts = dict(planted.group_by("kind").len().iter_rows())
    assert counts == {kind: round(share * 100) for kind, share in CHANGE_MIX.items()}
    new = planted.filter(planted["kind"] == "new_listing").select("retailer", "sku")
    assert initial.join(new, on=["retailer", "sku"], how="semi").is_empty()
    assert landed.height == planted.height
    assert (landed["observed_at"] > market.observations["observed_at"].max()).all()


def test_a_small_run_refreshes_incrementally_and_finds_what_was_planted(tmp_path: Path) -> None:
    out = tmp_path / "freshness.json"
    result = CliRunner().invoke(
        app, ["bench", "freshness", "--listings", "1500", "--changes", "100", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["listings"] == 1500 - 20 + 20 and report["changes"] == 100
    assert report["match_mode"] == "incremental"
    opportunities = report["opportunities"]
    assert opportunities["mode"] == "incremental"
    assert 0 < opportunities["evaluated_products"] < 1500 / 2
    assert opportunities["compared_with_full_pass"]["identical"] is True
    seconds = report["seconds"]
    assert set(seconds["incremental_by_stage"]) == {
        "normalize",
        "match",
        "history",
        "opportunities",
    }
    assert seconds["incremental_compute"] == pytest.approx(
        sum(seconds["incremental_by_stage"].values()), abs=0.01
    )
    assert seconds["full_rematch"] > 0 and seconds["api"] is None
    assert report["agreement"] >= 0.97
    found = report["found"]
    assert found["glitch"]["found"] >= 0.8 * found["glitch"]["planted"]
    assert found["spread"]["found"] >= 0.7 * found["spread"]["planted"]
    assert found["new_listing"]["found"] >= 0.7 * found["new_listing"]["planted"]


@pytest.mark.services
def test_the_same_run_works_on_postgres(postgres_url: str) -> None:
    report = run_freshness(800, 50, postgres_url=postgres_url)
    assert report["warehouse"] == "postgres" and report["match_mode"] == "incremental"
    assert report["opportunities"]["compared_with_full_pass"]["identical"] is True
