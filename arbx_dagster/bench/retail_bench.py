"""``arbx bench glitches`` on the independent retail generator (``retail_market/``).

Each scenario's market goes through the very path a user's file takes: it is written as a
``--series`` CSV, read back with :func:`load_series` and scored with :func:`score_series`
(walk-forward, each observation judged at its own time, the pipeline's detector, in-stock
observations only). On top of precision and recall, the generator's diagnosis columns say
where the detector is weak: recall per mistake (``mechanism``), per day of a multi-day
glitch and on a listing's first day, and false alarms per ordinary dynamic around them
(promotion, event, card-only dip, recent permanent shift, price matching, ...).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from arbx_dagster.bench.counts import Counts
from arbx_dagster.bench.retail_market.generator import (
    SERIES_COLUMNS,
    RetailMarket,
    generate_retail_market,
)
from arbx_dagster.bench.retail_market.scenarios import scenario_configs
from arbx_dagster.bench.series_bench import OBSERVATION, predict_series, series_counts
from arbx_dagster.bench.series_file import load_series
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.market_events import DEFAULT_CALENDAR, EventCalendar

DIAGNOSIS_COLUMNS = ("dynamics", "mechanism", "glitch_day", "first_day")


def write_series(market: RetailMarket, path: Path, *, diagnosis: bool = False) -> Path:
    """The market as a ``--series`` CSV (with the diagnosis columns when asked: the reader
    ignores columns it does not know)."""
    columns = [*SERIES_COLUMNS, *(DIAGNOSIS_COLUMNS if diagnosis else ())]
    market.series.select(columns).with_columns(
        observed_at=pl.col("observed_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        in_stock=pl.col("in_stock").cast(pl.String).str.to_lowercase(),
        is_glitch=pl.col("is_glitch").cast(pl.Int8),
    ).write_csv(path)
    return path


def _recall_by(found: pl.DataFrame, column: str) -> dict[str, dict[str, Any]]:
    """Labelled in-stock glitches per value of ``column``: how many, how many flagged."""
    groups = (
        found.filter(pl.col("is_glitch") & pl.col("in_stock"))
        .group_by(pl.col(column).cast(pl.String))
        .agg(labelled=pl.len(), flagged=pl.col("flagged").sum())
        .sort(column)
    )
    return {
        str(row[column]): {
            "labelled": row["labelled"],
            "flagged": row["flagged"],
            "recall": round(row["flagged"] / row["labelled"], 4),
        }
        for row in groups.iter_rows(named=True)
    }


def _false_alarms_by_dynamic(found: pl.DataFrame) -> dict[str, int]:
    """False alarms per ordinary dynamic going on around them (one may count in several)."""
    false = found.filter(pl.col("flagged") & ~pl.col("is_glitch"))
    tags = false.select(
        pl.col("dynamics").str.split(",").list.eval(pl.element().filter(pl.element() != ""))
    ).explode("dynamics")
    counts = dict(tags.drop_nulls().group_by("dynamics").len().sort("dynamics").iter_rows())
    counts["none"] = false.filter(pl.col("dynamics") == "").height
    return counts


def score_market(
    market: RetailMarket,
    name: str,
    thresholds: Thresholds,
    calendar: EventCalendar,
    workdir: Path,
) -> dict[str, Any]:
    """One scenario, scored through a ``--series`` CSV, with its diagnosis."""
    started = time.perf_counter()
    frame = load_series(write_series(market, workdir / f"{name}.csv"))
    predicted = predict_series(frame, thresholds, calendar)
    counts = series_counts(frame, predicted)
    found = market.series.join(
        predicted.select(OBSERVATION).with_columns(flagged=pl.lit(True)), on=OBSERVATION, how="left"
    ).with_columns(pl.col("flagged").fill_null(False))
    labelled = found.filter(pl.col("is_glitch"))
    return {
        "scenario": name,
        "glitch": counts.metrics(),
        "observations": frame.height,
        "listings": frame.select("retailer", "sku").n_unique(),
        "labelled_glitches": labelled.height,
        "out_of_stock_glitches": labelled.filter(~pl.col("in_stock")).height,
        "recall_by_mechanism": _recall_by(found, "mechanism"),
        "recall_by_glitch_day": _recall_by(found, "glitch_day"),
        "recall_on_first_day": _recall_by(found, "first_day"),
        "false_alarms_by_dynamic": _false_alarms_by_dynamic(found),
        "events": [
            {"name": n, "start": a.isoformat(), "end": b.isoformat()} for n, a, b in market.events
        ],
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_retail(
    n_products: int = 300,
    days: int = 180,
    thresholds: Thresholds | None = None,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    *,
    write_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every scenario of :data:`retail_market.scenarios.SCENARIOS`; overall metrics (JSON-ready).

    ``write_dir``: keep each scenario's CSV there (with its diagnosis columns), to score
    again with ``--series`` or to read. ``progress`` is told each scenario's name as it
    starts.
    """
    thresholds = thresholds or Thresholds()
    started = time.perf_counter()
    results, total = [], Counts()
    with tempfile.TemporaryDirectory(prefix="arbx-retail-") as scratch:
        for name, config in scenario_configs(n_products, days):
            if progress is not None:
                progress(name)
            market = generate_retail_market(config)
            result = score_market(market, name, thresholds, calendar, Path(scratch))
            if write_dir is not None:
                write_dir.mkdir(parents=True, exist_ok=True)
                write_series(market, write_dir / f"{name}.csv", diagnosis=True)
            results.append(result)
            glitch = result["glitch"]
            total.add(Counts(tp=glitch["tp"], fp=glitch["fp"], fn=glitch["fn"]))
    return {
        "glitch": total.metrics(),
        "scenarios": results,
        "method": {
            "generator": "arbx_dagster/bench/retail_market/, written apart from the detector",
            "unit": "one in-stock observation (either series flagged)",
            "evaluation": "each scenario written as a --series CSV and scored like a user's "
            "file: walk-forward, each observation judged at its own time",
            "thresholds": "pipeline defaults" if thresholds == Thresholds() else "custom",
            "products_per_scenario": n_products,
            "days": days,
        },
        "seconds": round(time.perf_counter() - started, 2),
    }
