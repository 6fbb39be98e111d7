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

User series (``--series FILE.csv``) are read by ``series_file.py`` and scored by
``series_bench.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

import polars as pl

from arbx_dagster.bench.counts import Counts, count_hits
from arbx_dagster.domain.config import Thresholds
from arbx_dagster.domain.glitches import glitch_panel
from arbx_dagster.domain.history import MARKET_TZ, daily_close, market_day
from arbx_dagster.domain.market_events import DEFAULT_CALENDAR, EventCalendar
from arbx_dagster.domain.opportunities import drop_glitching_buys, spread_panel
from arbx_dagster.domain.quality import validate_observations
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
    result.glitch = count_hits(found_glitches, truth_glitches, glitch_key)
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
    result.spread = count_hits(found_spreads, truth_spreads, ["retailer", "sku", "day"])

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
