"""``arbx bench matching`` on a small subset of the shared benchmark: the JSON contract,
sane numbers, attribute names read only through ``dataset.json``, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from arbx_dagster.bench.matching import run_matching_benchmark
from arbx_dagster.cli import app

LIMIT = 150  # pairs per split: a few seconds, not comparable with the full numbers
RENAMED = {"name": "title", "description": "blurb", "price": "cost"}


def renamed_copy(source: Path, target: Path, *, left: str, right: str) -> Path:
    """The dataset with other attribute and catalogue names, mapped through ``fields``."""
    meta = json.loads((source / "dataset.json").read_text())
    rename = {src: RENAMED[field] for field, src in meta["fields"].items()}
    (target / "pairs").mkdir(parents=True)
    for name in ("left.csv", "right.csv"):
        pl.read_csv(source / name, infer_schema=False).rename(rename).write_csv(target / name)
    (target / "matches.csv").write_bytes((source / "matches.csv").read_bytes())
    for split in ("train", "valid", "test"):
        lines = []
        for line in (source / "pairs" / f"{split}.jsonl").read_text().splitlines():
            obj = json.loads(line)
            for side in ("left", "right"):
                obj[side] = {rename.get(k, k): v for k, v in obj[side].items()}
            lines.append(json.dumps(obj))
        (target / "pairs" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    meta |= {
        "name": "renamed",
        "left_name": left,
        "right_name": right,
        "fields": {field: RENAMED[field] for field in meta["fields"]},
    }
    (target / "dataset.json").write_text(json.dumps(meta))
    return target


@pytest.fixture(scope="module")
def original(abt_buy_dir: Path) -> dict:
    return run_matching_benchmark(abt_buy_dir, seeds=(0,), limit=LIMIT).report


def test_the_command_writes_the_report_json(abt_buy_dir: Path, tmp_path: Path) -> None:
    data = renamed_copy(abt_buy_dir, tmp_path / "data", left="shop_a", right="shop_b")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        app,
        ["bench", "matching", str(data), "--json", str(out), "--limit", str(LIMIT), "--seeds", "0"],
    )
    assert result.exit_code == 0, result.output
    assert "pair completeness" in result.output
    report = json.loads(out.read_text())
    assert set(report) == {
        "dataset",
        "mode",
        "pairwise",
        "blocking",
        "end_to_end",
        "calibration",
        "seconds",
    }
    assert report["mode"] == "trained"
    assert set(report["calibration"]) == {"pairs", "ece", "above_0_9", "bins"}
    assert 0 <= report["calibration"]["ece"] <= 1
    assert set(report["pairwise"]) == {"precision", "recall", "f1", "threshold"}
    assert set(report["blocking"]) == {"pair_completeness", "candidates", "candidates_per_record"}
    assert set(report["end_to_end"]) == {"precision", "recall", "f1"}
    assert set(report["seconds"]) == {"train", "blocking", "scoring", "total"}
    assert report["dataset"] == "renamed"
    assert isinstance(report["blocking"]["candidates"], int)
    # sane values on the subset (the full dataset is measured by the command, not here)
    assert report["pairwise"]["f1"] > 0.6
    assert report["blocking"]["pair_completeness"] > 0.95
    assert report["blocking"]["candidates_per_record"] <= 10
    assert report["end_to_end"]["f1"] > 0.85
    assert 0 < report["seconds"]["total"] < 120


def test_attribute_names_only_come_from_the_dataset_json(
    abt_buy_dir: Path, tmp_path: Path, original: dict
) -> None:
    """Same data under other column names (same catalogue order): the same numbers."""
    data = renamed_copy(abt_buy_dir, tmp_path / "data", left="shop_a", right="shop_b")
    renamed = run_matching_benchmark(data, seeds=(0,), limit=LIMIT).report
    for stage in ("pairwise", "blocking", "end_to_end"):
        assert renamed[stage] == pytest.approx(original[stage]), stage


def test_catalogue_order_does_not_matter_much(
    abt_buy_dir: Path, tmp_path: Path, original: dict
) -> None:
    """Names that sort the other way round put the right catalogue on the pairs' left."""
    data = renamed_copy(abt_buy_dir, tmp_path / "data", left="zulu", right="alpha")
    flipped = run_matching_benchmark(data, seeds=(0,), limit=LIMIT).report
    assert flipped["blocking"] == pytest.approx(original["blocking"])
    assert flipped["pairwise"]["f1"] == pytest.approx(original["pairwise"]["f1"], abs=0.08)
    assert flipped["end_to_end"]["f1"] == pytest.approx(original["end_to_end"]["f1"], abs=0.05)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_folder", "is not a directory"),
        ("no_matches", "missing matches.csv"),
        ("no_matches_pairs_only", "pairs/train.jsonl is missing or empty"),
        ("bad_json", "dataset.json is not valid JSON"),
        ("no_fields", "needs a 'fields' object"),
        ("no_pairs", "pairs/train.jsonl is missing or empty"),
        ("bad_pair", "train.jsonl:1: expected"),
        ("wrong_column", "has no column 'title'"),
    ],
)
def test_a_malformed_folder_exits_non_zero_with_a_clear_message(
    tmp_path: Path, breakage: str, message: str
) -> None:
    folder = tmp_path / "bad"
    (folder / "pairs").mkdir(parents=True)
    (folder / "left.csv").write_text("id,title\n1,Sony TV\n")
    (folder / "right.csv").write_text("id,title\n9,Sony TV KDL\n")
    (folder / "matches.csv").write_text("left_id,right_id\n1,9\n")
    (folder / "dataset.json").write_text(json.dumps({"name": "bad", "fields": {"name": "title"}}))
    pair = {"left": {"title": "sony tv"}, "right": {"title": "sony tv kdl"}, "label": 1}
    for split in ("train", "valid", "test"):
        (folder / "pairs" / f"{split}.jsonl").write_text(json.dumps(pair) + "\n")
    target = folder
    if breakage == "no_folder":
        target = tmp_path / "nowhere"
    elif breakage == "no_matches":
        (folder / "matches.csv").unlink()
    elif breakage == "no_matches_pairs_only":  # "tables": false needs no catalogues...
        (folder / "matches.csv").unlink()
        meta = {"name": "bad", "tables": False, "fields": {"name": "title"}}
        (folder / "dataset.json").write_text(json.dumps(meta))
        (folder / "pairs" / "train.jsonl").unlink()  # ...but its pairs
    elif breakage == "bad_json":
        (folder / "dataset.json").write_text("{nope")
    elif breakage == "no_fields":
        (folder / "dataset.json").write_text(json.dumps({"name": "bad"}))
    elif breakage == "no_pairs":
        (folder / "pairs" / "train.jsonl").unlink()
    elif breakage == "bad_pair":
        (folder / "pairs" / "train.jsonl").write_text('{"left": {}}\n')
    elif breakage == "wrong_column":
        (folder / "left.csv").write_text("id,name\n1,Sony TV\n")
    result = CliRunner().invoke(app, ["bench", "matching", str(target)])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_dataset_of_pairs_only_reports_pairwise_quality_and_calibration(
    wdc_computers_dir: Path, tmp_path: Path
) -> None:
    """No catalogues: blocking and end to end are null, pairwise and calibration are not."""
    out = tmp_path / "out.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "matching",
            str(wdc_computers_dir),
            "--json",
            str(out),
            "--limit",
            "400",
            "--seeds",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "no catalogues" in result.output
    assert "trees per seed (from valid)" in result.output  # the capacity validation chose
    report = json.loads(out.read_text())
    assert report["blocking"] is None and report["end_to_end"] is None
    assert report["pairwise"]["f1"] > 0.5
    bins = report["calibration"]["bins"]
    assert sum(b["pairs"] for b in bins) == report["calibration"]["pairs"] == 400
    assert all(0 <= b["match_rate"] <= 1 for b in bins)


def test_trained_mode_also_learns_from_the_pairs_the_training_labels_imply(
    wdc_computers_dir: Path,
) -> None:
    """Only the training split grows; validation and test pairs are scored as labelled."""
    kept = run_matching_benchmark(wdc_computers_dir, seeds=(0,), limit=400, implied=False)
    grown = run_matching_benchmark(wdc_computers_dir, seeds=(0,), limit=400)
    assert grown.details["pairs"]["train"] > kept.details["pairs"]["train"] == 400
    for split in ("valid", "test"):
        assert grown.details["pairs"][split] == kept.details["pairs"][split] == 400
    assert grown.report["pairwise"]["f1"] > 0.5
    assert {run["trees"] for run in grown.details["pairwise_runs"]} <= {100, 300}


def test_zero_shot_scores_the_pipelines_model_trained_without_the_dataset(
    abt_buy_dir: Path,
) -> None:
    """The shipped model learned from abt_buy, so --zero-shot rebuilds it without it and
    runs the pipeline's own engine on the catalogues."""
    from arbx_dagster.domain.matching.shipped import read_recipe

    assert "abt_buy" in read_recipe().sources
    result = run_matching_benchmark(abt_buy_dir, limit=LIMIT, zero_shot=True)
    report, details = result.report, result.details
    assert report["mode"] == "zero-shot"
    assert "abt_buy" not in details["model"]["sources"]
    assert {"simulator", "wdc_cameras", "wdc_computers"} <= set(details["model"]["sources"])
    assert details["model"]["version"] != read_recipe().version
    assert report["end_to_end"]["precision"] > 0.9
    assert report["blocking"]["candidates_per_record"] <= 10
    assert report["calibration"]["pairs"] > 0
