"""``arbx bench glitches``: precision and recall of glitch and spread detection.

**Simulated markets.** The simulator plants glitches, cross-store gaps and malformed rows in
markets that also carry real promotions (CyberDay, CyberMonday, Black Friday: a whole market
10-30 % down, list prices inflated beforehand). Each scenario runs the pipeline's own steps —
row validation (malformed rows go to quarantine), daily closes, then the detectors with
default ``Thresholds`` — on every simulated day, walking forward: day *d* is judged at the end
of *d* with the listings as the pipeline would hold them (each listing's latest close up to
*d*, so a listing whose observation was quarantined is judged on its older, possibly stale
price) and the history before *d*.

* Glitch unit: one observed price of one series — (retailer, sku, day, offer|card). Positives
  are the simulator's ``truth_glitches``; a detection counts on the day of the price it flags
  (a price carried over to the next day is the same observation, counted once).
* Spread unit: (cheap listing, day) while a planted gap is live — ``truth_gaps`` expanded to
  each day of ``[start_day, end_day]``; a detection is a spread whose buy listing is that
  listing on that day, after the pipeline's rule that a listing caught glitching is reported
  as a glitch, not a spread. Canonical products are the simulator's ``true_product_id`` with
  match probability 1: this measures *detection*, not matching (see ``arbx bench matching``).
* Promotions: ``promotion_false_glitches`` counts glitches flagged on event days that were not
  planted (the target is 0).

Nothing here is tuned on these scenarios: the detectors run with the defaults the pipeline
ships, and the scenarios only vary the simulator's own knobs (see ``NOISE_LEVELS``). A second
suite, on markets from a generator written apart from the detector, is in ``retail_bench.py``.

**Out of stock.** The detector never reports an out-of-stock price (nobody can buy it), so
a labelled glitch on an out-of-stock observation is neither a hit nor a miss: it is left out
of the score and counted in ``out_of_stock_glitches`` (the simulator plants none).

**User series** (``--series FILE.csv``): columns ``product_id, retailer, sku, observed_at``
(ISO date or datetime; a bare date is taken as noon in Santiago), ``price_offer`` (integer
CLP), optional ``price_list``, ``price_card``, ``in_stock`` (true/false), ``category``,
``name`` (the title; pack sizes are read from it; default: the product id) and ``is_glitch``
(1/0). ``product_id`` names the product across stores (it is used as the canonical id, so
stores selling the same product must share it). It runs the detector the pipeline runs, with
the pipeline's settings (``system_config`` of the configured warehouse over the shipped
defaults, and ``ARBX_MARKET_EVENTS``), and judges every observation at its own time: against
the daily closes of the days before it, and the other stores' and its segment's latest
prices *at or before* that instant (:func:`observation_panels`) — never something observed
later the same day. An observation is predicted a glitch when either of its series is
flagged (in-stock observations only, as above).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import polars as pl

from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitches import MIN_SHELF_PRICE_CLP, glitch_panel
from arbx_dagster.domain.history import MARKET_TZ, daily_close, market_day
from arbx_dagster.domain.market_events import DEFAULT_CALENDAR, EventCalendar
from arbx_dagster.domain.opportunities import drop_glitching_buys, spread_panel
from arbx_dagster.domain.quality import validate_observations
from arbx_dagster.domain.schema import RAW_PRICE_SCHEMA, UTC_DATETIME, conform
from arbx_dagster.domain.simulator import SimulatedMarket, SimulatorConfig, simulate_market

# Scenario windows chosen so that events fall inside, after enough history to judge them.
WINDOWS: dict[str, tuple[date, int]] = {
    "cyberday": (date(2026, 6, 21), 75),  # CyberDay 1-3 June 2026
    "cybermonday_black_friday": (date(2026, 12, 6), 100),  # 5-7 Oct and 27-29 Nov 2026
}
# Simulator knobs per noise level: more broken rows, stock-outs, marketplace listings, late
# listings, event participation and fake discounts as the level rises.
NOISE_LEVELS: dict[str, dict[str, float]] = {
    "low": {
        "malformed_rate": 0.002,
        "stockout_rate": 0.01,
        "marketplace_rate": 0.10,
        "late_listing_rate": 0.05,
        "event_participation": 0.5,
        "fake_discount_rate": 0.3,
    },
    "medium": {
        "malformed_rate": 0.01,
        "stockout_rate": 0.03,
        "marketplace_rate": 0.15,
        "late_listing_rate": 0.10,
        "event_participation": 0.75,
        "fake_discount_rate": 0.5,
    },
    "high": {
        "malformed_rate": 0.03,
        "stockout_rate": 0.06,
        "marketplace_rate": 0.25,
        "late_listing_rate": 0.20,
        "event_participation": 1.0,
        "fake_discount_rate": 0.8,
    },
}
DEFAULT_PRODUCTS = 500


class SeriesError(ValueError):
    """A user-supplied series file that cannot be scored (message says what to fix)."""


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, other: Counts) -> None:
        self.tp, self.fp, self.fn = self.tp + other.tp, self.fp + other.fp, self.fn + other.fn

    def metrics(self) -> dict[str, float | int]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def _count(predicted: pl.DataFrame, truth: pl.DataFrame, key: list[str]) -> Counts:
    predicted, truth = predicted.select(key).unique(), truth.select(key).unique()
    tp = predicted.join(truth, on=key, how="semi").height
    return Counts(tp=tp, fp=predicted.height - tp, fn=truth.height - tp)


def end_of_day(day: pl.Expr) -> pl.Expr:
    """The last instant of a Santiago calendar day, in UTC (when day *d* is judged)."""
    # 23:59:59.999999 local always exists (Chile changes clocks at midnight); on the autumn
    # change it occurs twice and the later one is the day's end.
    local = day.cast(pl.Datetime("us")) + pl.duration(days=1, microseconds=-1)
    return local.dt.replace_time_zone(MARKET_TZ, ambiguous="latest").dt.convert_time_zone("UTC")


def pipeline_view(
    observations: pl.DataFrame, now: datetime
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What the pipeline keeps of raw observations: (accepted rows, daily closes, last row of
    each listing-day with its time as ``last_seen``)."""
    accepted = validate_observations(observations, now=now).accepted
    history = daily_close(accepted)
    last_rows = (
        accepted.filter(pl.col("fetch_status") == "ok")
        .with_columns(day=market_day(pl.col("observed_at")), last_seen=pl.col("observed_at"))
        .sort("observed_at")
        .unique(subset=["retailer", "sku", "day"], keep="last")
        .sort("retailer", "sku", "day")
    )
    return accepted, history, last_rows


def daily_panels(last_rows: pl.DataFrame, first: date, last: date) -> pl.LazyFrame:
    """One panel per day in ``[first, last]``: every listing's latest row up to that day."""
    days = pl.DataFrame({"eval_day": pl.date_range(first, last, eager=True)})
    listings = last_rows.select("retailer", "sku").unique()
    grid = listings.join(days, how="cross").sort("eval_day")
    panel = grid.join_asof(
        last_rows.sort("day"),
        left_on="eval_day",
        right_on="day",
        by=["retailer", "sku"],
        strategy="backward",
        check_sortedness=False,  # sorted by day overall, hence within each listing
    ).filter(pl.col("day").is_not_null())
    return panel.lazy().with_columns(
        panel=(pl.col("eval_day") - pl.lit(date(1970, 1, 1))).dt.total_days(),
        as_of=end_of_day(pl.col("eval_day")),
        current_day=pl.col("day"),
        match_probability=pl.lit(1.0),
        volatility=pl.lit(0.0),
    )


@dataclass
class ScenarioResult:
    name: str
    noise: str
    glitch: Counts = field(default_factory=Counts)
    spread: Counts = field(default_factory=Counts)
    promotion_false_glitches: int = 0
    event_day_prices: int = 0
    glitch_types: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "noise": self.noise,
            "glitch": self.glitch.metrics(),
            "spread": self.spread.metrics(),
            "promotion_false_glitches": self.promotion_false_glitches,
            "event_day_prices": self.event_day_prices,
            "glitch_types": self.glitch_types,
            "seconds": round(self.seconds, 2),
        }


def score_simulated(
    market: SimulatedMarket,
    config: SimulatorConfig,
    thresholds: Thresholds,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    name: str = "scenario",
    noise: str = "",
) -> ScenarioResult:
    """Walk-forward detection on one simulated market, scored against its ground truth."""
    started = time.perf_counter()
    now = datetime.combine(config.end + timedelta(days=1), dtime(12), tzinfo=UTC)
    _, history, last_rows = pipeline_view(market.observations, now)
    canonical = market.truth_listings.rename({"true_product_id": "canonical_id"})
    last_rows = last_rows.join(canonical, on=["retailer", "sku"], how="left")
    points = daily_panels(last_rows, config.first_day, config.end)

    glitches = glitch_panel(points, history, thresholds, calendar)
    spreads = drop_glitching_buys(
        spread_panel(points, thresholds).collect(), glitches, by=["panel"]
    )

    found_glitches = glitches.select(
        retailer="buy_retailer",
        sku="buy_sku",
        day=market_day(pl.col("observed_at")),
        price_type="buy_price_type",
        glitch_type="glitch_type",
    ).unique(subset=["retailer", "sku", "day", "price_type"])
    truth_glitches = market.truth_glitches.select(
        "retailer", "sku", "price_type", day=market_day(pl.col("observed_at"))
    )
    glitch_key = ["retailer", "sku", "day", "price_type"]
    result = ScenarioResult(name=name, noise=noise)
    result.glitch = _count(found_glitches, truth_glitches, glitch_key)
    result.glitch_types = dict(
        found_glitches.group_by("glitch_type").len().sort("glitch_type").iter_rows()
    )

    found_spreads = spreads.select(
        retailer="buy_retailer",
        sku="buy_sku",
        day=pl.lit(date(1970, 1, 1)) + pl.duration(days=pl.col("panel")),
    ).with_columns(pl.col("day").cast(pl.Date))
    truth_spreads = (
        market.truth_gaps.with_columns(day=pl.date_ranges("start_day", "end_day"))
        .explode("day")
        .select(retailer="cheap_retailer", sku="cheap_sku", day="day")
    )
    result.spread = _count(found_spreads, truth_spreads, ["retailer", "sku", "day"])

    events = calendar.events(config.first_day, config.end)
    on_event = pl.lit(False)
    for event in events:
        on_event = on_event | pl.col("day").is_between(event.start, event.end)
    false_glitches = found_glitches.join(truth_glitches, on=glitch_key, how="anti")
    result.promotion_false_glitches = false_glitches.filter(on_event).height
    result.event_day_prices = history.filter(on_event).height
    result.seconds = time.perf_counter() - started
    return result


def scenarios(n_products: int = DEFAULT_PRODUCTS) -> list[tuple[str, str, SimulatorConfig]]:
    """(window, noise level, simulator config) of every benchmark scenario."""
    found = []
    for index, (noise, knobs) in enumerate(NOISE_LEVELS.items()):
        for offset, (window, (end, days)) in enumerate(WINDOWS.items()):
            config = SimulatorConfig(
                seed=101 + 10 * index + offset,
                n_products=n_products,
                days=days,
                end=end,
                **knobs,  # type: ignore[arg-type]
            )
            found.append((window, noise, config))
    return found


def run_simulated(
    n_products: int = DEFAULT_PRODUCTS,
    thresholds: Thresholds | None = None,
    calendar: EventCalendar = DEFAULT_CALENDAR,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every scenario of :func:`scenarios`; overall and per-noise-level metrics (JSON-ready).
    ``progress`` is told each scenario's name as it starts."""
    thresholds = thresholds or Thresholds()
    started = time.perf_counter()
    results = []
    for window, noise, config in scenarios(n_products):
        if progress is not None:
            progress(f"{window} ({noise} noise)")
        market = simulate_market(config)
        results.append(score_simulated(market, config, thresholds, calendar, window, noise))
    total_glitch, total_spread = Counts(), Counts()
    by_noise: dict[str, dict[str, Counts]] = {}
    for r in results:
        total_glitch.add(r.glitch)
        total_spread.add(r.spread)
        level = by_noise.setdefault(r.noise, {"glitch": Counts(), "spread": Counts()})
        level["glitch"].add(r.glitch)
        level["spread"].add(r.spread)
    return {
        "glitch": total_glitch.metrics(),
        "spread": total_spread.metrics(),
        "promotion_false_glitches": sum(r.promotion_false_glitches for r in results),
        "by_noise": {
            noise: {kind: counts.metrics() for kind, counts in kinds.items()}
            for noise, kinds in by_noise.items()
        },
        "scenarios": [r.as_dict() for r in results],
        "method": {
            "glitch_unit": "observed price of one series: (retailer, sku, day, offer|card)",
            "spread_unit": "(cheap listing, day) on each day a planted gap is live",
            "evaluation": "walk-forward: each day judged at its end with the history before it",
            "canonical_ids": "simulator true_product_id, match probability 1: measures "
            "detection, not matching",
            "thresholds": "pipeline defaults" if thresholds == Thresholds() else "custom",
            "products_per_scenario": n_products,
        },
        "seconds": round(time.perf_counter() - started, 2),
    }


# ---------------------------------------------------------------------------------------------
# User-supplied series

REQUIRED_COLUMNS = ("product_id", "retailer", "sku", "observed_at", "price_offer")
OPTIONAL_COLUMNS = ("price_list", "price_card", "in_stock", "is_glitch", "category", "name")
_TRUE = {"true", "1", "yes", "t", "y"}
_FALSE = {"false", "0", "no", "f", "n", ""}


def _bad_rows(frame: pl.DataFrame, bad: pl.Expr, column: str, expected: str) -> None:
    rows = frame.with_row_index("row", offset=2).filter(bad)  # header is line 1
    if rows.height:
        sample = ", ".join(
            f"line {r['row']}: {r[column]!r}" for r in rows.head(3).iter_rows(named=True)
        )
        more = f" (and {rows.height - 3} more)" if rows.height > 3 else ""
        raise SeriesError(f"column {column!r} expects {expected}; got {sample}{more}")


def _parse_time(text: pl.Expr) -> pl.Expr:
    """ISO datetime (offset-aware, 'Z', or naive = Santiago time) or bare date (noon)."""
    value = text.str.strip_chars()
    is_date = value.str.len_chars() == 10
    local_noon = (
        value.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")) + pl.duration(hours=12)
    ).dt.replace_time_zone(MARKET_TZ, ambiguous="earliest", non_existent="null")
    normalized = value.str.replace("Z$", "+00:00").str.replace(" ", "T")
    has_offset = normalized.str.contains(r"[+-]\d{2}:?\d{2}$")
    aware = normalized.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="us"
    ).dt.convert_time_zone("UTC")
    naive = (
        normalized.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
        .fill_null(normalized.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us"))
        .dt.replace_time_zone(MARKET_TZ, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return (
        pl.when(is_date)
        .then(local_noon.dt.convert_time_zone("UTC"))
        .when(has_offset)
        .then(aware)
        .otherwise(naive)
    )


def load_series(path: str | Path) -> pl.DataFrame:
    """Read and validate a series CSV; raise :class:`SeriesError` saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise SeriesError(f"series file not found: {path}")
    try:
        raw = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        raise SeriesError(f"cannot read {path} as CSV with a header: {exc}") from None
    raw = raw.rename({c: c.strip().lower() for c in raw.columns})
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise SeriesError(
            f"{path.name} lacks required column(s) {', '.join(missing)}; expected "
            f"{', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}"
        )
    if raw.is_empty():
        raise SeriesError(f"{path.name} has a header but no rows")
    for column in ("product_id", "retailer", "sku"):
        _bad_rows(raw, pl.col(column).str.strip_chars().fill_null("") == "", column, "a value")

    frame = raw.with_columns(
        pl.col("retailer").str.strip_chars().str.to_lowercase(),
        pl.col("sku").str.strip_chars(),
        pl.col("product_id").str.strip_chars(),
        _observed_at=_parse_time(pl.col("observed_at")),
    )
    _bad_rows(frame, pl.col("_observed_at").is_null(), "observed_at", "an ISO date or datetime")
    for column in ("price_offer", "price_list", "price_card"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=pl.Int64).alias(column))
            continue
        text = pl.col(column).str.strip_chars().fill_null("")
        value = text.cast(pl.Int64, strict=False)
        required = column == "price_offer"
        bad = (value.is_null() & ((text != "") | required)) | (value <= 0).fill_null(False)
        _bad_rows(
            frame, bad, column, "a positive integer CLP amount" + ("" if required else " or empty")
        )
        frame = frame.with_columns(value.alias(column))
    for column, default in (("in_stock", "true"), ("is_glitch", "0")):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(default).alias(column))
        text = pl.col(column).fill_null(default).str.strip_chars().str.to_lowercase()
        _bad_rows(frame, ~text.is_in([*_TRUE, *_FALSE]), column, "true/false or 1/0")
        frame = frame.with_columns(text.is_in(list(_TRUE)).alias(column))
    if "category" not in frame.columns:
        frame = frame.with_columns(category=pl.lit(None, dtype=pl.String))
    frame = frame.with_columns(observed_at=pl.col("_observed_at")).drop("_observed_at")
    duplicated = frame.select("retailer", "sku", "observed_at").is_duplicated()
    if duplicated.any():
        _bad_rows(
            frame.with_columns(dup=duplicated),
            pl.col("dup"),
            "observed_at",
            "one observation per retailer, sku and time",
        )
    name = pl.col("name").fill_null(pl.col("product_id")) if "name" in frame.columns else None
    return frame.with_columns(
        name=pl.col("product_id") if name is None else name,
        url=pl.lit(None, dtype=pl.String),
        currency=pl.lit("CLP"),
    )


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
    glitch's ``glitch_type`` / ``severity``)."""
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
            retailer="buy_retailer",
            sku="buy_sku",
            observed_at="observed_at",
        )
        .unique(subset=["retailer", "sku", "observed_at"], keep="first", maintain_order=True)
        .sort("observed_at", "retailer", "sku")
    )


OBSERVATION = ["retailer", "sku", "observed_at"]


def series_counts(frame: pl.DataFrame, predicted: pl.DataFrame) -> Counts:
    """Per-observation counts of ``predicted`` (:func:`predict_series`) against the series'
    ``is_glitch`` labels, in-stock observations only: an out-of-stock price is never reported
    as a glitch (nobody can buy it; see ``domain/glitches.py``), so a labelled glitch on an
    out-of-stock observation is neither a hit nor a miss."""
    in_stock = frame.filter(pl.col("in_stock"))
    truth = in_stock.filter(pl.col("is_glitch")).select(OBSERVATION)
    scored = predicted.join(in_stock.select(OBSERVATION), on=OBSERVATION, how="semi")
    return _count(scored, truth, OBSERVATION)


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
