"""``arbx bench opportunities``: two catalogues dropped as files and run through the whole
pipeline in a throwaway home; the spreads it finds are scored against the dataset's truth.

The hand-made catalogue pair below has USD prices with decimals (some written the US way,
``$1,099.00``), products on one side only, unpriced rows, and same-product pairs whose gap
is below the margin or ROI threshold. Its ``matches.csv`` leaves one pair with identical
titles out (say, two regional models): the spread the pipeline finds on it is a false one.
One true pair has no model code: its spread is held for review.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from arbx_dagster.bench.datasets import BenchmarkError
from arbx_dagster.bench.opportunities import run_opportunities_benchmark
from arbx_dagster.cli import app

HEADPHONES = "Sony WH-1000XM4 Wireless Noise Cancelling Headphones - WH1000XM4/B"
CAMERA = "Canon EOS Rebel T7 DSLR Camera Kit with 18-55mm Lens - 2727C002"
WATCH = "Garmin Forerunner 245 GPS Running Smartwatch - 010-02120-00"
MOUSE = "Logitech MX Master 3 Wireless Mouse - 910-005620"
SSD = "Samsung 980 PRO 1TB NVMe Internal SSD - MZ-V8P1T0B/AM"
SPEAKER = "Bose SoundLink Flex Bluetooth Speaker - 865983-0100"
CHARGER = "Anker Nano USB-C Wall Charger 20W White"  # no model code

# (id, title, price) per catalogue; the same product keeps its title on both sides.
NORTH = [
    ("n1", HEADPHONES, "$349.99"),  # 71.99 above south: a true spread
    ("n2", CAMERA, "449.00"),  # 150.95 below south: a true spread, bought here
    ("n3", WATCH, "299.99"),  # 50.49 above south, but not a true match: a false spread
    ("n4", MOUSE, "99.99"),  # 5.00 above south: below the USD 10 margin
    ("n5", SSD, "$1,099.00"),  # 14.00 above south: ROI 1.3 % < 8 %
    ("n6", SPEAKER, ""),  # unpriced: never dropped
    ("n7", "Apple AirPods Pro 2nd Generation with MagSafe Case - MQD83AM/A", "249.00"),
    ("n8", CHARGER, "24.99"),  # 15.00 below south: true, but held for review
]
SOUTH = [
    ("s1", HEADPHONES, "278.00"),
    ("s2", CAMERA, "$599.95"),
    ("s3", WATCH, "249.5"),
    ("s4", MOUSE, "94.99"),
    ("s5", SSD, "1085"),
    ("s6", SPEAKER, "149.00"),
    ("s7", "Nintendo Switch OLED Model Console White - HEG-S-KAAAA", "349.99"),
    ("s8", "JBL Charge 5 Portable Waterproof Speaker - JBLCHARGE5BLK", ""),
    ("s9", CHARGER, "39.99"),
]
TRUTH = [("n1", "s1"), ("n2", "s2"), ("n4", "s4"), ("n5", "s5"), ("n6", "s6"), ("n8", "s9")]


def write_dataset(folder: Path, *, tables: bool = True) -> Path:
    """The catalogue pair as a benchmark folder, attribute names mapped by dataset.json."""
    folder.mkdir(parents=True)
    meta = {
        "name": "handmade",
        "left_name": "north",
        "right_name": "south",
        "fields": {"name": "title", "description": "blurb", "price": "cost"},
    }
    if not tables:
        (folder / "dataset.json").write_text(json.dumps(meta | {"tables": False}))
        return folder
    for file, rows in (("left.csv", NORTH), ("right.csv", SOUTH)):
        pl.DataFrame(
            {
                "id": [r[0] for r in rows],
                "title": [r[1] for r in rows],
                "blurb": [f"{r[1]}, as sold by the store" for r in rows],
                "cost": [r[2] or None for r in rows],
            }
        ).write_csv(folder / file)
    pl.DataFrame(TRUTH, schema=["left_id", "right_id"], orient="row").write_csv(
        folder / "matches.csv"
    )
    (folder / "dataset.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("bench") / "handmade")


@pytest.fixture(scope="module")
def report(dataset: Path) -> dict:
    return run_opportunities_benchmark(dataset, currency_code="USD", workers=1)


def test_the_command_writes_the_report_json(dataset: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "opportunities", str(dataset), "--currency", "USD", "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {
        "spreads",
        "spreads_true",
        "precision",
        "top20_precision",
        "review",
        "match",
        "seconds",
    } <= set(report)
    assert set(report["match"]) == {"precision", "recall", "f1"}
    assert report["retailers"] == {"falabella": "north", "ripley": "south"}
    assert report["currency"] == "USD"
    assert (report["spreads"], report["spreads_true"]) == (4, 3)
    assert report["seconds"] > 0


def test_spreads_and_their_precision_are_what_the_truth_implies(report: dict) -> None:
    # headphones, camera, charger and watch clear USD 10 and 8 %; mouse and SSD do not;
    # the speaker has no price at north
    assert report["spreads"] == 4
    assert report["spreads_true"] == 3
    assert report["precision"] == 0.75
    assert report["top20_precision"] == 0.75  # fewer than 20: all of them
    assert (report["min_margin"], report["min_roi_pct"]) == (1000, 8.0)  # cents


def test_every_priced_row_lands_through_the_file_drop_and_unpriced_rows_are_counted(
    report: dict,
) -> None:
    assert report["listings"] == {
        "falabella": {"catalogue": 8, "unpriced": 1, "stored": 7, "quarantined": 0},
        "ripley": {"catalogue": 9, "unpriced": 1, "stored": 8, "quarantined": 0},
    }


def test_matches_are_scored_on_the_true_pairs_whose_listings_were_ingested(
    report: dict,
) -> None:
    # six products have the same title at both stores and are matched; the truth holds
    # five of them (the watch is not a true pair) plus the speaker, unpriced at north
    assert report["true_pairs"] == {"all": 6, "listed": 5}
    precision = round(5 / 6, 4)
    assert report["match"] == {
        "precision": precision,
        "recall": 1.0,
        "f1": round(2 * (5 / 6) / (1 + 5 / 6), 4),
    }


def test_a_spread_without_a_shared_model_code_is_held_for_review(report: dict) -> None:
    """The charger pair is true, but nothing but its wording stands behind it: it is
    listed and counted, held for a person instead of alerted."""
    assert (report["review"], report["review_true"]) == (1, 1)


def test_confidence_is_reported_for_true_and_false_spreads(report: dict) -> None:
    confidence = report["confidence"]
    assert 0 < confidence["false_spreads"] <= 1 and 0 < confidence["true_spreads"] <= 1


def test_prices_read_in_the_wrong_currency_refuse_the_drop(dataset: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "opportunities", str(dataset)])  # CLP
    assert result.exit_code == 2
    assert "the drop of north (falabella) was refused" in result.output
    assert "are its prices in CLP? see --currency" in result.output


def test_a_dataset_without_catalogues_or_with_a_missing_file_is_a_clear_error(
    tmp_path: Path,
) -> None:
    pairs_only = write_dataset(tmp_path / "pairs_only", tables=False)
    result = CliRunner().invoke(
        app, ["bench", "opportunities", str(pairs_only), "--currency", "USD"]
    )
    assert result.exit_code == 2
    assert '"tables": false' in result.output and "needs left.csv" in result.output

    broken = write_dataset(tmp_path / "broken")
    (broken / "right.csv").unlink()
    result = CliRunner().invoke(app, ["bench", "opportunities", str(broken), "--currency", "USD"])
    assert result.exit_code == 2
    assert "is missing right.csv" in result.output

    with pytest.raises(BenchmarkError, match="currency must be one of"):
        run_opportunities_benchmark(broken, currency_code="pesos")


@pytest.mark.slow
def test_abt_buy_through_the_whole_pipeline(abt_buy_dir: Path) -> None:
    """The shared benchmark, measured as the command does (USD prices; the model never
    trained on abt_buy). The numbers are the command's to report; here they must be
    consistent and sane."""
    report = run_opportunities_benchmark(abt_buy_dir, currency_code="USD")
    priced = {
        retailer: pl.read_csv(abt_buy_dir / file, infer_schema=False)["price"].is_not_null().sum()
        for retailer, file in (("falabella", "left.csv"), ("ripley", "right.csv"))
    }
    for retailer, rows in report["listings"].items():
        assert rows["stored"] + rows["quarantined"] == priced[retailer]
        assert rows["quarantined"] == 0  # every abt and buy price reads as USD
    assert report["retailers"] == {"falabella": "abt", "ripley": "buy"}
    assert 0 < report["spreads_true"] <= report["spreads"]
    assert report["precision"] == round(report["spreads_true"] / report["spreads"], 4)
    assert report["precision"] >= 0.9
    assert 0 <= report["review"] <= report["spreads"]
    assert report["match"]["precision"] >= 0.9
