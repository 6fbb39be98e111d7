"""``arbx bench glitches --series FILE.csv``: the glitch detector scored on a user's series.

The file (columns in ``series_file.py``) runs through the detector the pipeline runs, with
the pipeline's settings (``system_config`` of the configured warehouse over the shipped
defaults, and ``ARBX_MARKET_EVENTS``), and every observation is judged at its own time:
against the daily closes of the days before it, and the other stores' and its segment's
latest prices *at or before* that instant (:func:`observation_panels`) — never something
observed later the same day. An observation is predicted a glitch when either of its series
is flagged. The detector never reports an out-of-stock price (nobody can buy it), so a
labelled glitch on an out-of-stock observation is neither a hit nor a miss: it is left out
of the score and counted in ``out_of_stock_glitches``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from arbx_dagster.bench.counts import Counts, count_hits
from arbx_dagster.bench.series_file import load_series
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitches import MIN_SHELF_PRICE_CLP, glitch_panel
from arbx_dagster.domain.history import daily_close, market_day
from arbx_dagster.domain.market_events import DEFAULT_CALENDAR, EventCalendar
from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, UTC_DATETIME, conform


def could_be_glitches(rows: pl.DataFrame, history: pl.DataFrame, low: float) -> pl.Series:
    """Which observations the segment's move could matter for: it scales the listing's own
    reference, which is at most the highest earlier close of the listing (per series, offer
    or card), so only a price at most ``low`` x that close; and it keeps a whole segment
    under the shelf floor from being flagged, so any price under it."""
    prior = (
        history.sort("retailer", "sku", "day")
        .with_columns(
            pl.col(c).cum_max().over("retailer", "sku").forward_fill().over("retailer", "sku")
            for c in ("price_offer", "price_card")
        )
        .select("retailer", "sku", "day", max_offer="price_offer", max_card="price_card")
    )
    judged = rows.with_row_index("_row").with_columns(
        _before=market_day(pl.col("last_seen")) - timedelta(days=1)
    )
    joined = judged.sort("_before").join_asof(
        prior.sort("day"),
        left_on="_before",
        right_on="day",
        by=["retailer", "sku"],
        strategy="backward",
        check_sortedness=False,
    )
    possible = (
        (pl.col("price_offer") <= low * pl.col("max_offer"))
        | (pl.col("price_card") <= low * pl.col("max_card"))
        | (pl.min_horizontal("price_offer", "price_card") < MIN_SHELF_PRICE_CLP)
    )
    return joined.sort("_row").select(possible.fill_null(False).alias("candidate"))["candidate"]


def observation_panels(rows: pl.DataFrame) -> pl.LazyFrame:
    """One panel per observed instant: the observations made then (``judged``) plus, as
    context, the latest observation at or before that instant of every listing that shares
    their product (the other stores' prices) or their retailer x category (the segment's
    move). Nothing observed later, even minutes later the same day, is visible.

    ``rows``: validated series rows with ``canonical_id``, ``last_seen`` (= observed_at) and
    ``candidate`` (:func:`could_be_glitches`). The segment's move only matters for some
    points, so the segment is gathered only around those; every judged point still sees the
    other stores' prices.
    """
    instants = rows.select(as_of="last_seen").unique().sort("as_of").with_row_index("panel")
    moments = rows.join(instants, left_on="last_seen", right_on="as_of").with_columns(
        as_of=pl.col("last_seen")
    )
    listings = rows.sort("last_seen").unique(subset=["retailer", "sku"], keep="last")
    by_product = (
        moments.select("panel", "as_of", "canonical_id")
        .unique()
        .join(listings.select("retailer", "sku", "canonical_id"), on="canonical_id")
    )
    by_segment = (
        moments.filter(pl.col("candidate"))
        .select("panel", "as_of", "retailer", "category")
        .unique()
        .join(
            listings.select("retailer", "sku", "category"),
            on=["retailer", "category"],
            nulls_equal=True,
        )
    )
    wanted = pl.concat(
        [f.select("panel", "as_of", "retailer", "sku") for f in (by_product, by_segment)]
    ).unique()
    context = (
        wanted.sort("as_of")
        .join_asof(
            rows.sort("last_seen"),
            left_on="as_of",
            right_on="last_seen",
            by=["retailer", "sku"],
            strategy="backward",
            check_sortedness=False,  # sorted by time overall, hence within each listing
        )
        .filter(pl.col("last_seen").is_not_null())
    )
    return context.lazy().with_columns(
        panel=pl.col("panel").cast(pl.Int64),
        judged=pl.col("last_seen") == pl.col("as_of"),
        current_day=market_day(pl.col("last_seen")),
    )


def predict_series(
    frame: pl.DataFrame,
    thresholds: Thresholds | None = None,
    calendar: EventCalendar = DEFAULT_CALENDAR,
) -> pl.DataFrame:
    """The observations of a validated series the pipeline's detector flags, each judged at
    its own time: against the daily closes of the days before, and the other stores' and
    its segment's latest prices at or before it (``retailer, sku, observed_at`` and the
    glitch's ``glitch_type``, ``severity`` and ``reason``)."""
    thresholds = thresholds or Thresholds()
    observations = conform(
        frame.with_columns(fetch_status=pl.lit("ok"), source=pl.lit("series")), RAW_PRICE_SCHEMA
    )
    history = daily_close(observations)
    rows = frame.with_columns(
        canonical_id=pl.col("product_id"),
        match_probability=pl.lit(1.0),
        last_seen=pl.col("observed_at").cast(UTC_DATETIME),
    )
    rows = rows.with_columns(
        candidate=could_be_glitches(rows, history, thresholds.glitch_ratio_low)
    )
    # Every retailer in the file is scored, whatever the pipeline's enabled list says.
    all_retailers = replace(thresholds, enabled_retailers=())
    glitches = glitch_panel(observation_panels(rows), history, all_retailers, calendar)
    return (
        glitches.select(
            "glitch_type",
            "severity",
            "reason",
            retailer="buy_retailer",
            sku="buy_sku",
            observed_at="observed_at",
        )
        .unique(subset=["retailer", "sku", "observed_at"], keep="first", maintain_order=True)
        .sort("observed_at", "retailer", "sku")
    )


OBSERVATION = ["retailer", "sku", "observed_at"]


def _judged(frame: pl.DataFrame, predicted: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the in-stock observations, the flags among them): what is scored. An out-of-stock
    price is never reported as a glitch (nobody can buy it; see ``domain/glitches.py``), so
    a labelled glitch on an out-of-stock observation is neither a hit nor a miss."""
    in_stock = frame.filter(pl.col("in_stock"))
    return in_stock, predicted.join(in_stock.select(OBSERVATION), on=OBSERVATION, how="semi")


def series_counts(frame: pl.DataFrame, predicted: pl.DataFrame) -> Counts:
    """Per-observation counts of ``predicted`` (:func:`predict_series`) against the series'
    ``is_glitch`` labels, in-stock observations only (:func:`_judged`)."""
    in_stock, flagged = _judged(frame, predicted)
    truth = in_stock.filter(pl.col("is_glitch")).select(OBSERVATION)
    return count_hits(flagged, truth, OBSERVATION)


ERRORS_SHOWN = 20
_SHOWN_COLUMNS = ["product_id", *OBSERVATION, "price_list", "price_offer", "price_card"]


def series_errors(frame: pl.DataFrame, predicted: pl.DataFrame) -> dict[str, Any]:
    """The first ``ERRORS_SHOWN`` missed glitches and false alarms (in-stock observations,
    in time order), each with its prices, the listing's price the observation before, and a
    false alarm's ``reason``: where the detector is weak on this series."""
    before = pl.col("price_offer").shift(1).over("retailer", "sku")
    in_stock, flagged = _judged(
        frame.sort("observed_at").with_columns(price_before=before), predicted
    )
    missed = in_stock.filter(pl.col("is_glitch")).join(flagged, on=OBSERVATION, how="anti")
    alarms = in_stock.filter(~pl.col("is_glitch")).join(
        flagged.select(*OBSERVATION, "glitch_type", "severity", "reason"), on=OBSERVATION
    )
    columns = [*_SHOWN_COLUMNS, "price_before"]

    def rows(found: pl.DataFrame, extra: list[str]) -> list[dict[str, Any]]:
        shown = found.sort("observed_at", "retailer", "sku").head(ERRORS_SHOWN)
        shown = shown.with_columns(pl.col("observed_at").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return shown.select(*columns, *extra).to_dicts()

    return {
        "missed": missed.height,
        "false_alarms": alarms.height,
        "first_missed": rows(missed, []),
        "first_false_alarms": rows(alarms, ["glitch_type", "severity", "reason"]),
    }


def score_series(
    frame: pl.DataFrame,
    thresholds: Thresholds | None = None,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    settings: str = "pipeline defaults",
) -> dict[str, Any]:
    """Per-observation glitch precision / recall of a validated series (:func:`load_series`)."""
    started = time.perf_counter()
    predicted = predict_series(frame, thresholds, calendar)
    counts = series_counts(frame, predicted)
    labelled = frame.filter(pl.col("is_glitch"))
    return {
        "glitch": counts.metrics(),
        "observations": frame.height,
        "listings": frame.select("retailer", "sku").n_unique(),
        "days": frame.select(market_day(pl.col("observed_at"))).n_unique(),
        "labelled_glitches": labelled.height,
        "out_of_stock_glitches": labelled.filter(~pl.col("in_stock")).height,
        "glitch_types": dict(predicted.group_by("glitch_type").len().sort("glitch_type").rows()),
        "errors": series_errors(frame, predicted),
        "method": {
            "unit": "one in-stock observation (either series flagged)",
            "evaluation": "walk-forward: each observation judged at its own time, against the "
            "daily closes of the days before it and the latest prices of the other stores "
            "and of its segment at or before it",
            "out_of_stock": "never reported as glitches, so labelled glitches on out-of-stock "
            "observations are left out of the score (counted in out_of_stock_glitches)",
            "settings": settings,
        },
        "seconds": round(time.perf_counter() - started, 2),
    }


def pipeline_settings() -> tuple[Thresholds, EventCalendar, str]:
    """The settings the pipeline would use now: ``system_config`` of the configured warehouse
    over the shipped defaults (``read_thresholds``), and ``ARBX_MARKET_EVENTS``
    (``ARBX_MARKET_EVENTS``). A warehouse that does not exist yet is not created: its
    settings are the defaults; so are those of one that cannot be read (the description
    says why)."""
    from arbx_dagster.settings import Settings
    from arbx_dagster.storage.settings_store import read_thresholds
    from arbx_dagster.storage.warehouse import DuckDBWarehouse, PostgresWarehouse, WarehouseError

    calendar = EventCalendar.from_setting(Settings.from_env().market_events)
    env = Settings.from_env()
    if not env.postgres_url and not env.duckdb_path.exists():
        return Thresholds(), calendar, f"shipped defaults (no warehouse at {env.duckdb_path})"
    try:
        warehouse = (
            PostgresWarehouse(env.postgres_url)
            if env.postgres_url
            else DuckDBWarehouse(env.duckdb_path, read_only=True)
        )
    except WarehouseError as exc:  # e.g. a pipeline holds the DuckDB file: say so, go on
        return Thresholds(), calendar, f"shipped defaults (warehouse unreadable: {exc})"
    with warehouse:
        if not warehouse.table_exists("system_config"):
            where = warehouse.describe()
            return Thresholds(), calendar, f"shipped defaults (no system_config in {where})"
        return read_thresholds(warehouse), calendar, f"system_config of {warehouse.describe()}"


def run_series(
    path: str | Path,
    thresholds: Thresholds | None = None,
    calendar: EventCalendar | None = None,
) -> dict[str, Any]:
    """Load and score a user-supplied series CSV with the pipeline's settings (given ones,
    e.g. in tests, replace them)."""
    frame = load_series(path)
    if thresholds is None or calendar is None:
        configured, from_env, settings = pipeline_settings()
        thresholds, calendar = thresholds or configured, calendar or from_env
    else:
        settings = "given"
    return {"series": str(path), **score_series(frame, thresholds, calendar, settings)}
