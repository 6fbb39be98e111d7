"""``arbx bench glitches``: the detectors measured against planted truth and user series."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from arbx_dagster.bench.glitches import run_simulated
from arbx_dagster.bench.series_bench import predict_series, run_series
from arbx_dagster.bench.series_file import SeriesError, load_series
from arbx_dagster.cli.bench_glitches import glitches_command
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.market_events import EventCalendar
from arbx_dagster.domain.simulator import SimulatorConfig, simulate_market
from arbx_dagster.storage.migrations import migrate
from arbx_dagster.storage.settings_store import set_setting
from arbx_dagster.storage.warehouse import DuckDBWarehouse

HEADER = "product_id,retailer,sku,observed_at,price_offer,price_card,in_stock,is_glitch\n"


@pytest.fixture(scope="module")
def simulated() -> dict:
    return run_simulated(n_products=120)


def test_simulated_markets_meet_the_targets_and_promotions_are_not_glitches(simulated):
    for kind in ("glitch", "spread"):
        assert set(simulated[kind]) >= {"precision", "recall", "f1"}
        assert simulated[kind]["precision"] >= 0.95, (kind, simulated[kind])
        assert simulated[kind]["recall"] >= 0.95, (kind, simulated[kind])
    for scenario in simulated["scenarios"]:  # the bar: every scenario, 0.97
        glitch = scenario["glitch"]
        assert glitch["precision"] >= 0.97 and glitch["recall"] >= 0.97, scenario
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


def test_out_of_stock_observations_are_left_out_of_the_score(tmp_path):
    rows = [f"tv,paris,p1,2026-03-{d:02d},199990,,true,0" for d in range(1, 21)]
    rows += [
        "tv,paris,p1,2026-03-21,19999,,false,1",  # sold out: not reported, not scored
        "tv,paris,p1,2026-03-22,19999,,true,1",  # restocked at the mistaken price: found
    ]
    path = tmp_path / "oos.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    result = run_series(path, Thresholds(), EventCalendar())
    assert (result["glitch"]["tp"], result["glitch"]["fp"], result["glitch"]["fn"]) == (1, 0, 0)
    assert (result["labelled_glitches"], result["out_of_stock_glitches"]) == (2, 1)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("product_id,retailer,sku,price_offer\np,paris,1,100\n", "lacks required column"),
        (HEADER + "p,paris,1,2026-03-01,abc,,true,0\n", "line 2: 'abc'"),
        (HEADER + "p,paris,1,2026-03-01,0,,true,0\n", "positive CLP amount"),
        (HEADER + "p,paris,1,2026-03-01,1299.5,,true,0\n", "line 2: '1299.5'"),
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


@pytest.mark.parametrize(
    "written",
    [
        "2026-03-01T15:00:00Z",
        "2026-03-01 15:00:00+00:00",  # pandas, Python's str()
        "2026-03-01T15:00:00.000000+0000",  # polars
        "2026-03-01 15:00:00+00",  # PostgreSQL, DuckDB
        "2026-03-01 15:00:00 UTC",
        "2026-03-01 12:00:00-03",
        "2026-03-01 12:00:00",  # naive: Santiago time (UTC-3 in March)
    ],
)
def test_an_instant_reads_the_same_however_a_program_wrote_it(tmp_path, written):
    path = tmp_path / "s.csv"
    path.write_text(HEADER + f"p,paris,1,{written},100,,true,0\n")
    (instant,) = load_series(path)["observed_at"].to_list()
    assert instant == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def test_a_zero_list_or_card_price_is_no_price_shown_but_a_zero_offer_is_refused(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        "product_id,retailer,sku,observed_at,price_list,price_offer,price_card\n"
        "p,paris,1,2026-03-01,0,100,0\n"
    )
    row = load_series(path).row(0, named=True)
    assert (row["price_list"], row["price_offer"], row["price_card"]) == (None, 100, None)
    path.write_text(HEADER + "p,paris,1,2026-03-01,100,-5,true,0\n")
    with pytest.raises(SeriesError, match="'price_card' expects"):
        load_series(path)


def test_stock_reads_as_schema_org_and_stores_write_it(tmp_path):
    path = tmp_path / "s.csv"
    rows = ["InStock", "OutOfStock", "in_stock", "out of stock", "agotado", "1.0"]
    path.write_text(
        HEADER + "".join(f"p,paris,1,2026-03-{d:02d},100,,{v},0\n" for d, v in enumerate(rows, 1))
    )
    assert load_series(path)["in_stock"].to_list() == [True, False, True, False, False, True]


def test_a_series_written_by_pandas_reads_as_the_same_series(tmp_path):
    # A column with gaps is written as floats (12990.0) and flags as 1.0 / 0.0.
    rows = [
        f"tv,paris,p1,2026-03-{d:02d},199990,{189990 if d % 2 else ''},true,0" for d in range(1, 9)
    ]
    plain = tmp_path / "plain.csv"
    plain.write_text(HEADER + "\n".join(rows) + "\n")
    as_floats = tmp_path / "pandas.csv"
    as_floats.write_text(
        HEADER
        + "\n".join(
            f"tv,paris,p1,2026-03-{d:02d},199990.0,{'189990.0' if d % 2 else ''},True,0.0"
            for d in range(1, 9)
        )
        + "\n"
    )
    assert load_series(as_floats).equals(load_series(plain))


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


# -- a hand-made series: promotion, glitch, pack-size error, stale price ----------------------

HAND_HEADER = "product_id,name,category,retailer,sku,observed_at,price_offer,in_stock,is_glitch"
STORES = ("falabella", "ripley", "paris")


def _at(day: int, hour: int = 10) -> str:
    """March 2026 in Santiago (UTC-3 until April)."""
    return f"2026-03-{day:02d}T{hour:02d}:00:00-03:00"


def _hand_made_rows() -> list[str]:
    """Four products at up to three stores, one crawl a day (10:00) for 20 days."""
    products = {
        "tv": ("Smart TV 55", "tv", 499_990, STORES),
        "phones": ("Audifonos Bluetooth", "audio", 99_990, STORES),
        "beer": ("Cerveza Pack 6", "bebidas", 8_990, STORES),
        "fridge": ("Refrigerador No Frost", "linea blanca", 399_990, ("falabella", "paris")),
    }
    special = {
        # Promotion: every store 55 % off on the 17th. Not a glitch.
        **{("phones", s, 17): (44_990, 0) for s in STORES},
        # A real glitch: paris shows a tenth of the price at 14:00 on the 18th.
        ("tv", "paris", "18-14"): (49_990, 1),
        # A pack sold at the unit price: 1 490 x 6 = 8 940 ~ 8 990.
        ("beer", "ripley", 16): (1_490, 1),
        # paris glitches the fridge on the 10th and is never seen again (delisted); on the
        # 18th falabella glitches too. paris's 8-day-old price is stale: no reference.
        ("fridge", "paris", 10): (39_990, 1),
        ("fridge", "falabella", 18): (39_990, 1),
    }
    rows = []
    for product, (name, category, price, stores) in products.items():
        for store in stores:
            last_day = 10 if (product, store) == ("fridge", "paris") else 20
            for day in range(1, last_day + 1):
                offer, label = special.get((product, store, day), (price, 0))
                sku = f"{store[:3]}-{product}"
                listing = f"{product},{name},{category},{store},{sku}"
                rows.append(f"{listing},{_at(day)},{offer},true,{label}")
                if (product, store, f"{day}-14") in special:
                    offer, label = special[(product, store, f"{day}-14")]
                    rows.append(f"{listing},{_at(day, 14)},{offer},true,{label}")
    return rows


def _write(path: Path, rows: list[str], header: str = HAND_HEADER) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_hand_made_series_is_scored_per_observation(tmp_path):
    series = _write(tmp_path / "hand.csv", _hand_made_rows())
    result = run_series(series, Thresholds(), EventCalendar())
    assert result["labelled_glitches"] == 4
    glitch = result["glitch"]
    assert (glitch["tp"], glitch["fp"], glitch["fn"]) == (4, 0, 0)
    assert glitch["precision"] == 1.0 and glitch["recall"] == 1.0
    # A tenth of the price reads as a lost digit; the beer as a pack at the unit price.
    assert result["glitch_types"] == {"digit_slip": 3, "pack_size": 1}

    flagged = predict_series(load_series(series), Thresholds(), EventCalendar())
    assert flagged.filter(pl.col("sku").str.ends_with("phones")).is_empty(), "the promotion"


def test_a_series_result_shows_where_the_detector_went_wrong(tmp_path):
    rows = _hand_made_rows()
    # Mislabel on purpose: the promotion at paris called a glitch (a miss the detector is
    # right about), the tenth-of-the-price tv at paris called ordinary (a false alarm).
    rows = [r.replace(",44990,true,0", ",44990,true,1") if ",par-phones," in r else r for r in rows]
    rows = [r.replace(",49990,true,1", ",49990,true,0") for r in rows]
    result = run_series(_write(tmp_path / "hand.csv", rows), Thresholds(), EventCalendar())
    errors = result["errors"]
    assert (
        (errors["missed"], errors["false_alarms"])
        == (
            result["glitch"]["fn"],
            result["glitch"]["fp"],
        )
        == (1, 1)
    )
    (missed,) = errors["first_missed"]
    assert (missed["sku"], missed["price_offer"], missed["price_before"]) == (
        "par-phones",
        44_990,
        99_990,
    )
    (false_alarm,) = errors["first_false_alarms"]
    assert (false_alarm["sku"], false_alarm["observed_at"]) == ("par-tv", "2026-03-18T17:00:00Z")
    assert "likely a lost digit" in false_alarm["reason"]


def _first_mover_rows() -> list[str]:
    """A speaker at three stores crawled at 09:00, 11:00 and 14:00; on the 20th all three cut
    it to 19 990, falabella first."""
    hours = {"falabella": 9, "ripley": 11, "paris": 14}
    rows = []
    for store, hour in hours.items():
        for day in range(1, 21):
            offer = 19_990 if day == 20 else 59_990
            label = int(day == 20 and store == "falabella")
            listing = f"speaker,Parlante,audio,{store},{store[:3]}-1"
            rows.append(f"{listing},{_at(day, hour)},{offer},true,{label}")
    return rows


def test_each_observation_sees_only_what_was_observed_at_or_before_it(tmp_path):
    full = load_series(_write(tmp_path / "full.csv", _first_mover_rows()))
    flagged = predict_series(full, Thresholds(), EventCalendar())
    # At 09:00 falabella alone is that low: the other stores still show yesterday's price.
    # (Later the same day they follow, which falabella's judgment must not know.)
    assert flagged.select("retailer", "observed_at").rows() == [
        ("falabella", datetime(2026, 3, 20, 12, tzinfo=UTC))
    ]
    # Cut the file at 09:00 on the 20th: what was judged by then does not change.
    cut = full.filter(pl.col("observed_at") <= datetime(2026, 3, 20, 12, tzinfo=UTC))
    assert predict_series(cut, Thresholds(), EventCalendar()).equals(flagged)


def test_the_series_runs_with_the_pipelines_settings(tmp_path, monkeypatch):
    # 50 days at 100 000, a permanent cut to 70 000, ten days "raised" to 90 000 (the fake
    # discount before an event), then 35 000. A lost digit on day 40.
    start = date(2026, 1, 1)
    prices = [100_000] * 50 + [70_000] * 25 + [90_000] * 10 + [35_000]
    prices[39] = 9_999
    rows = [
        f"tv,TV,tv,paris,p1,{start + timedelta(days=i)}T10:00:00-03:00,{price},true,"
        f"{int(i in (39, 85))}"
        for i, price in enumerate(prices)
    ]
    series = _write(tmp_path / "s.csv", rows)
    last_day = start + timedelta(days=85)
    monkeypatch.delenv("ARBX_POSTGRES_URL", raising=False)
    monkeypatch.delenv("ARBX_MARKET_EVENTS", raising=False)
    monkeypatch.setenv("ARBX_DUCKDB_PATH", str(tmp_path / "w.duckdb"))

    defaults = run_series(series)
    assert defaults["glitch"]["tp"] == 2  # 35 000 is 39 % of the last week's 90 000
    assert defaults["method"]["settings"].startswith("shipped defaults")

    # An event announced for that day: the month before it (70 000 mostly) is the yardstick,
    # and 35 000 is half of it, an event price.
    day = last_day.isoformat()
    event = {"rules": [], "events": [{"name": "Venta", "start": day, "end": day}]}
    monkeypatch.setenv("ARBX_MARKET_EVENTS", json.dumps(event))
    assert run_series(series)["glitch"]["tp"] == 1

    # A stricter threshold set with `arbx config set` applies too.
    monkeypatch.delenv("ARBX_MARKET_EVENTS")
    with DuckDBWarehouse(tmp_path / "w.duckdb") as warehouse:
        migrate(warehouse)
        set_setting(warehouse, "glitch_ratio_low", 0.35, actor="test")
    configured = run_series(series)
    assert configured["glitch"]["tp"] == 1  # 35 000 is no longer <= 0.35 x 90 000
    assert "system_config" in configured["method"]["settings"]
