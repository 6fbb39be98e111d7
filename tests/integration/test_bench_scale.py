"""`arbx bench scale` runs every stage on a small catalogue and reports the documented keys."""

from __future__ import annotations

import pytest

from arbx_dagster.bench.scale import run_scale


def test_a_small_scale_run_reports_every_stage() -> None:
    stages: list[str] = []
    result = run_scale(600, progress=stages.append)
    assert stages == ["generate", "load", "normalize", "train", "match", "history", "opportunities"]
    assert result["listings"] == 600
    reported = {*stages, "blocking", "scoring", "assignment", "total"} - {"match"}
    assert set(result["seconds"]) == reported
    assert result["seconds"]["total"] == pytest.approx(
        sum(v for k, v in result["seconds"].items() if k not in ("generate", "train", "total")),
        abs=0.01,
    )
    assert result["listings_per_second"] > 0
    assert result["candidate_pairs"] >= result["matched_pairs"] > 0
    assert result["peak_rss_mb"] > 0
    # where the memory went: a peak per stage, none above the run's
    by_stage = result["peak_rss_mb_by_stage"]
    assert set(by_stage) <= set(stages) and "match" in by_stage
    assert 0 < max(by_stage.values()) <= result["peak_rss_mb"]
    # the matched pairs are scored against the simulator's truth, and spreads are found
    assert result["match_precision"] > 0.9 and result["match_recall"] > 0.8
    assert result["opportunities"] > 0


@pytest.mark.services
def test_the_same_run_works_on_postgres(postgres_url: str) -> None:
    result = run_scale(300, retailers=2, postgres_url=postgres_url)
    assert result["warehouse"] == "postgres"
    assert result["listings"] == 300 and result["matched_pairs"] > 0
