"""Data-quality rules over the warehouse, as plain functions (the asset checks call them).

Each returns a :class:`CheckOutcome`: whether it passed, how bad a failure is, a one-line
summary a user can act on, and the numbers behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from arbx_dagster.alerts import AlertDispatcher, DispatchReport
from arbx_dagster.domain.history import MARKET_TZ, day_of
from arbx_dagster.domain.money import max_plausible_price
from arbx_dagster.domain.schema import TIERS
from arbx_dagster.domain.simulator.market import SOURCE as SIMULATOR_SOURCE
from arbx_dagster.storage.settings_store import read_thresholds
from arbx_dagster.storage.warehouse import Warehouse

# Above this share of quarantined rows the source is broken (e.g. a layout change).
MAX_QUARANTINE_SHARE = 0.5
WARN_QUARANTINE_SHARE = 0.05
# ...or well above what recent runs usually quarantine.
QUARANTINE_SPIKE_FACTOR = 3.0
RECENT_RUN_DAYS = 7
MIN_RECENT_RUNS = 3
# A day with less than this share of a retailer's usual volume lost most of its listings.
LOW_VOLUME_SHARE = 0.5
# ...and more than this multiple, that it reads junk or duplicates.
HIGH_VOLUME_SHARE = 2.0
VOLUME_BASELINE_DAYS = 7
MIN_BASELINE_DAYS = 3
# A listing priced this many times its category's median is a unit or currency mistake.
CATEGORY_PRICE_FACTOR = 20
# A whole retailer "glitching" at once is a scraper bug, not an opportunity.
MAX_GLITCH_SHARE = 0.05
MIN_GLITCHES_FOR_SPIKE = 5
# The simulator observes each listing once per simulated day.
SIMULATOR_CADENCE_MINUTES = 24 * 60
# A tier is stale when listings were last seen more than twice its interval ago.
STALE_FACTOR = 2
MAX_STALE_SHARE = 0.1
# Sources that cannot be read more often than this (minutes between their observations).
SOURCE_CADENCE_MINUTES: dict[str, int] = {SIMULATOR_SOURCE: SIMULATOR_CADENCE_MINUTES}


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    summary: str
    severity: str = "error"  # error / warn (how bad a failure is)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def fails_hard(self) -> bool:
        """Failed at ERROR severity: what raises a 🚨 alert (WARN is shown in the UI)."""
        return not self.passed and self.severity == "error"


def _count(warehouse: Warehouse, sql: str, params: list[Any] | None = None) -> int:
    return int(warehouse.scalar(sql, params or []) or 0)


def raw_prices_are_plausible(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """Stored prices are above zero and below the plausible ceiling of the market's
    currency."""
    currency = read_thresholds(warehouse).currency
    bad = _count(
        warehouse,
        "SELECT count(*) FROM raw_prices WHERE price_offer <= 0 OR price_list <= 0 "
        "OR price_card <= 0 OR price_offer > $1 OR price_list > $1 OR price_card > $1",
        [max_plausible_price(currency)],
    )
    return CheckOutcome(
        bad == 0,
        f"{bad} stored prices are not plausible {currency} prices",
        metadata={"implausible_rows": bad},
    )


# Rows each ingestion run stored and quarantined (problems apart from rows that merely show
# no price), as the run recorded them (``ingest_runs``): the runs of the last
# ``RECENT_RUN_DAYS`` days, and the run judged whenever it was. Counting them in raw_prices
# read a week of rows in every ingestion run.
_RUN_ROWS_SQL = """
SELECT run_id, CAST(sum(stored) AS BIGINT) AS stored,
       CAST(sum(quarantined) AS BIGINT) AS quarantined,
       CAST(sum(unpriced) AS BIGINT) AS unpriced
FROM ingest_runs WHERE ingested_at >= $1 OR run_id = $2 GROUP BY run_id
"""


def run_row_counts(warehouse: Warehouse, run_id: str, now: datetime) -> pl.DataFrame:
    """``run_id, stored, quarantined, unpriced, share`` of ``run_id`` and of every run of the
    last ``RECENT_RUN_DAYS`` days (``share``: quarantined problems over stored + those)."""
    params = [now - timedelta(days=RECENT_RUN_DAYS), run_id]
    counts = warehouse.query(_RUN_ROWS_SQL, params).with_columns(
        pl.col("stored", "quarantined", "unpriced").fill_null(0).cast(pl.Int64)
    )
    total = pl.col("stored") + pl.col("quarantined")
    return counts.with_columns(
        share=pl.when(total > 0).then(pl.col("quarantined") / total).otherwise(0.0)
    )


def quarantine_rate(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """This run quarantined few rows compared with recent runs (a spike means the source or
    its parser broke). Rows that merely show no price are not counted: stores list products
    without one.

    ERROR above the fixed ceiling ``MAX_QUARANTINE_SHARE`` whatever the history. WARN on a
    spike: above ``WARN_QUARANTINE_SHARE`` *and* above ``QUARANTINE_SPIKE_FACTOR`` times the
    median of the recent runs (with at least ``MIN_RECENT_RUNS`` of them; without, above the
    floor is enough). A source that always sends a few bad rows is not a new problem each run.
    """
    counts = run_row_counts(warehouse, run_id, now)
    this = counts.filter(pl.col("run_id") == pl.lit(run_id, dtype=pl.String))
    row = this.row(0, named=True) if this.height else dict.fromkeys(this.columns, 0)
    stored, quarantined, unpriced = row["stored"], row["quarantined"], row["unpriced"]
    share = float(row["share"])
    reasons = warehouse.query(
        "SELECT reason, count(*) AS n FROM quarantine WHERE run_id = $1 GROUP BY reason "
        "ORDER BY n DESC LIMIT 5",
        [run_id],
    )
    others = counts.filter(pl.col("run_id").ne_missing(pl.lit(run_id, dtype=pl.String)))
    recent = others.filter(pl.col("stored") + pl.col("quarantined") > 0)["share"]
    usual = float(recent.median()) if recent.len() >= MIN_RECENT_RUNS else None  # type: ignore[arg-type]
    spike_level = max(WARN_QUARANTINE_SHARE, QUARANTINE_SPIKE_FACTOR * (usual or 0.0))
    usual_text = (
        f"usual {usual:.1%} over {recent.len()} recent runs"
        if usual is not None
        else ("too few recent runs to compare")
    )
    return CheckOutcome(
        share <= spike_level,
        f"{share:.1%} of this run's rows were quarantined ({usual_text})",
        "error" if share > MAX_QUARANTINE_SHARE else "warn",
        {
            "stored": stored,
            "quarantined": quarantined,
            "unpriced": unpriced,  # quarantined too, but not counted as a problem
            "share": round(share, 4),
            "recent_runs": recent.len(),
            "usual_share": None if usual is None else round(usual, 4),
            "spike_level": round(spike_level, 4),
            "top_reasons": dict(reasons.rows()),
        },
    )


# Listings with a successful fetch per retailer and market day (Santiago calendar), of the
# days before today (today is never judged, nor a baseline: a catalogue scraped today is
# most of the table at a fresh deployment, and every ingestion run asks).
_VOLUME_SQL = f"""
SELECT retailer, CAST(timezone('{MARKET_TZ}', observed_at) AS DATE) AS day,
       count(DISTINCT CASE WHEN fetch_status = 'ok' THEN sku END) AS listings,
       CAST(sum(CASE WHEN run_id = $2 THEN 1 ELSE 0 END) AS BIGINT) AS this_run
FROM raw_prices WHERE observed_at >= $1 AND observed_at < $3
GROUP BY 1, 2
"""


def volume_versus_recent_days(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """Each retailer's latest complete day (and every past day this run landed) saw about
    its usual number of listings: far fewer means a scraper lost them, far more that it is
    reading junk or duplicates.

    The measure is *distinct listings with a successful fetch* per market day, not rows: tier
    runs re-scrape hot listings many times a day, so row counts follow the tiers, while a
    complete day sees the whole catalogue once (the daily tracking run). Today is not judged:
    its count grows until the tracking run has walked the catalogue; yesterday, the latest
    complete day, is judged on every run (so live runs are checked within a day). A day is
    compared with the median of the ``VOLUME_BASELINE_DAYS`` days before it (at least
    ``MIN_BASELINE_DAYS`` of them with data). Drops fail at ERROR, spikes at WARN.
    """
    today = day_of(now)
    since = now - timedelta(days=3 * VOLUME_BASELINE_DAYS)
    today_starts = datetime.combine(today, time(), ZoneInfo(MARKET_TZ))
    per_day = warehouse.query(_VOLUME_SQL, [since, run_id, today_starts]).with_columns(
        pl.col("day").cast(pl.Date), pl.col("listings", "this_run").cast(pl.Int64)
    )
    latest_complete = (
        per_day.select("retailer").unique().with_columns(day=pl.lit(today - timedelta(days=1)))
    )
    touched = per_day.filter((pl.col("this_run") > 0) & (pl.col("day") < today))
    judged = pl.concat([latest_complete, touched.select("retailer", "day")]).unique()
    past = per_day.select("retailer", past_day="day", past_n="listings")
    baseline = (
        judged.join(past, on="retailer")
        .filter(
            (pl.col("past_day") < pl.col("day"))
            & (pl.col("past_day") >= pl.col("day") - pl.duration(days=VOLUME_BASELINE_DAYS))
        )
        .group_by("retailer", "day")
        .agg(baseline=pl.col("past_n").median(), baseline_days=pl.len())
        .filter(pl.col("baseline_days") >= MIN_BASELINE_DAYS)
    )
    compared = (
        baseline.join(
            per_day.select("retailer", "day", "listings"), on=["retailer", "day"], how="left"
        )
        .with_columns(pl.col("listings").fill_null(0))
        .with_columns(share=pl.col("listings") / pl.col("baseline"))
        .sort("retailer", "day")
    )
    low = compared.filter(pl.col("share") < LOW_VOLUME_SHARE)
    high = compared.filter(pl.col("share") > HIGH_VOLUME_SHARE)

    def described(frame: pl.DataFrame) -> list[str]:
        return [
            f"{r['day']}|{r['retailer']}: {r['listings']} listings, {r['share']:.0%} of usual"
            for r in frame.head(10).iter_rows(named=True)
        ]

    return CheckOutcome(
        low.is_empty() and high.is_empty(),
        f"{low.height} retailer-day(s) under {LOW_VOLUME_SHARE:.0%} and {high.height} over "
        f"{HIGH_VOLUME_SHARE:.0%} of their usual listings",
        "error" if not low.is_empty() else "warn",
        {
            "compared_days": compared.height,
            "low_days": described(low),
            "high_days": described(high),
        },
    )


def listings_have_unique_keys(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """Every listing has a key, a title, and appears once."""
    missing = _count(
        warehouse,
        "SELECT count(*) FROM listings WHERE retailer IS NULL OR sku IS NULL "
        "OR name_norm IS NULL OR name_norm = ''",
    )
    repeated = _count(
        warehouse,
        "SELECT count(*) FROM (SELECT retailer, sku FROM listings GROUP BY retailer, sku "
        "HAVING count(*) > 1) AS d",
    )
    return CheckOutcome(
        missing == 0 and repeated == 0,
        f"{missing} listings without key or title, {repeated} repeated keys",
        metadata={"missing_keys": missing, "repeated_keys": repeated},
    )


def prices_plausible_for_category(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """No listing costs many times its category's median (unit or currency mistakes)."""
    listings = warehouse.query(
        "SELECT retailer, sku, name, category, price_offer FROM listings "
        "WHERE price_offer IS NOT NULL"
    )
    outliers = listings.with_columns(median=pl.col("price_offer").median().over("category")).filter(
        pl.col("price_offer") > CATEGORY_PRICE_FACTOR * pl.col("median")
    )
    return CheckOutcome(
        outliers.is_empty(),
        f"{outliers.height} listings cost over {CATEGORY_PRICE_FACTOR}x their category median",
        "warn",
        {
            "outliers": [
                f"{r['retailer']}/{r['sku']} {r['name']}: {r['price_offer']}"
                for r in outliers.head(10).iter_rows(named=True)
            ]
        },
    )


def one_listing_per_retailer(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """A canonical product holds at most one listing per retailer; every listing has one."""
    conflicts = _count(
        warehouse,
        "SELECT count(*) FROM (SELECT canonical_id, retailer FROM product_matches "
        "GROUP BY canonical_id, retailer HAVING count(*) > 1) AS c",
    )
    unmatched = _count(
        warehouse,
        "SELECT count(*) FROM listings AS l LEFT JOIN product_matches AS m "
        "ON m.retailer = l.retailer AND m.sku = l.sku WHERE m.canonical_id IS NULL",
    )
    return CheckOutcome(
        conflicts == 0 and unmatched == 0,
        f"{conflicts} products with two listings of one retailer, {unmatched} unmatched listings",
        metadata={"conflicting_products": conflicts, "listings_without_product": unmatched},
    )


def opportunities_are_consistent(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """Live opportunities buy below their reference, for a profit, with a sane confidence."""
    bad = _count(
        warehouse,
        "SELECT count(*) FROM opportunities WHERE status <> 'expired' AND "
        "(buy_price >= ref_price OR margin_clp <= 0 OR confidence < 0 OR confidence > 1)",
    )
    return CheckOutcome(
        bad == 0, f"{bad} live opportunities are inconsistent", metadata={"inconsistent_rows": bad}
    )


def glitching_retailers(warehouse: Warehouse) -> pl.DataFrame:
    """Retailers with an implausible share of their listings glitching right now."""
    return (
        warehouse.query(
            """
        SELECT l.retailer, count(*) AS listings, count(o.opportunity_id) AS glitches
        FROM listings AS l
        LEFT JOIN opportunities AS o
          ON o.buy_retailer = l.retailer AND o.buy_sku = l.sku
         AND o.kind = 'glitch' AND o.status <> 'expired'
        GROUP BY l.retailer
        """
        )
        .with_columns(share=pl.col("glitches") / pl.col("listings"))
        .filter(
            (pl.col("glitches") >= MIN_GLITCHES_FOR_SPIKE) & (pl.col("share") > MAX_GLITCH_SHARE)
        )
    )


def no_retailer_wide_glitching(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """No retailer is "glitching" wholesale (that is a scraper bug; its glitches are not
    alerted while this fails)."""
    spiking = glitching_retailers(warehouse)
    return CheckOutcome(
        spiking.is_empty(),
        f"{spiking.height} retailer(s) with over {MAX_GLITCH_SHARE:.0%} of listings glitching",
        metadata={
            "retailers": {
                r["retailer"]: round(r["share"], 3) for r in spiking.iter_rows(named=True)
            }
        },
    )


def tier_freshness(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """Each tier's listings were seen within twice its scrape interval (critical: 1 h).

    Twice the interval of the tier, or of the *source* when the source cannot be read more
    often: the simulator publishes one observation per listing per day (its "stores" are
    crawled once a day), so a simulated listing last seen this morning is as fresh as it can
    be, not a scraping outage. A listing's source is that of its latest observation; every
    other source (the real connectors, file drops) is judged by its tier alone.
    """
    tiers = warehouse.query(
        """
        SELECT t.tier, l.last_seen, r.source
        FROM listing_tiers AS t
        JOIN listings AS l ON l.retailer = t.retailer AND l.sku = t.sku
        LEFT JOIN raw_prices AS r
          ON r.retailer = l.retailer AND r.sku = l.sku AND r.observed_at = l.last_seen
        """
    )
    limits = pl.DataFrame({"tier": list(TIERS), "tier_minutes": [int(m) for m in TIERS.values()]})
    source_minutes = pl.col("source").replace_strict(
        SOURCE_CADENCE_MINUTES, default=0, return_dtype=pl.Int64
    )
    stale = (
        tiers.join(limits, on="tier")
        .with_columns(
            max_age=STALE_FACTOR * pl.max_horizontal("tier_minutes", source_minutes),
            by_source=source_minutes > pl.col("tier_minutes"),
        )
        .with_columns(
            stale=pl.lit(now) - pl.col("last_seen") > pl.duration(minutes=pl.col("max_age"))
        )
        .group_by("tier")
        .agg(
            listings=pl.len(),
            stale=pl.col("stale").sum(),
            judged_by_source=pl.col("by_source").sum(),
        )
        .with_columns(share=pl.col("stale") / pl.col("listings"))
        .sort("tier")
    )
    failing = stale.filter(pl.col("share") > MAX_STALE_SHARE)
    critical = "critical" in failing["tier"].to_list()
    return CheckOutcome(
        failing.is_empty(),
        "stale tiers: "
        + (
            ", ".join(f"{r['tier']} {r['share']:.0%}" for r in failing.iter_rows(named=True))
            or "none"
        ),
        "error" if critical else "warn",
        {
            "by_tier": {
                r["tier"]: {
                    "listings": r["listings"],
                    "stale": r["stale"],
                    "judged_by_source_cadence": r["judged_by_source"],
                }
                for r in stale.iter_rows(named=True)
            }
        },
    )


# Below this precision on the pairs users labelled, matches are inventing opportunities.
MIN_LABELLED_PRECISION = 0.9


def match_quality_on_labels(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """The current matches agree with the pairs users confirmed or rejected."""
    judged = warehouse.query(
        """
        SELECT l.is_match, a.canonical_id = b.canonical_id AS matched
        FROM match_labels AS l
        JOIN product_matches AS a ON a.retailer = l.left_retailer AND a.sku = l.left_sku
        JOIN product_matches AS b ON b.retailer = l.right_retailer AND b.sku = l.right_sku
        """
    )
    predicted = judged.filter(pl.col("matched"))
    true_positive = predicted.filter(pl.col("is_match")).height
    positives = judged.filter(pl.col("is_match")).height
    precision = true_positive / predicted.height if predicted.height else 1.0
    recall = true_positive / positives if positives else 1.0
    return CheckOutcome(
        precision >= MIN_LABELLED_PRECISION,
        f"precision {precision:.3f} and recall {recall:.3f} on {judged.height} labelled pairs",
        metadata={
            "labelled_pairs": judged.height,
            "precision": round(precision, 4),
            "recall": round(recall, 4),
        },
    )


# -- price history ------------------------------------------------------------------------------

# The most recent days of closes checked against raw observations (the slices a run rebuilds).
RECENT_HISTORY_DAYS = 7


def price_history_is_plausible(warehouse: Warehouse, run_id: str, now: datetime) -> CheckOutcome:
    """Closes have unique (retailer, sku, day) keys and a price, every price above zero and
    under the plausible ceiling of the market's currency."""
    repeated = _count(
        warehouse,
        "SELECT count(*) FROM (SELECT retailer, sku, day FROM price_history "
        "GROUP BY retailer, sku, day HAVING count(*) > 1) AS d",
    )
    implausible = _count(
        warehouse,
        "SELECT count(*) FROM price_history WHERE price_offer <= 0 OR price_list <= 0 "
        "OR price_card <= 0 OR price_offer > $1 OR price_list > $1 OR price_card > $1 "
        "OR (price_offer IS NULL AND price_list IS NULL AND price_card IS NULL)",
        [max_plausible_price(read_thresholds(warehouse).currency)],
    )
    return CheckOutcome(
        repeated == 0 and implausible == 0,
        f"{repeated} repeated (retailer, sku, day) keys, {implausible} closes without a "
        "plausible price",
        metadata={"repeated_keys": repeated, "implausible_closes": implausible},
    )


def closes_come_from_successful_fetches(
    warehouse: Warehouse, run_id: str, now: datetime
) -> CheckOutcome:
    """Every recent close is exactly the prices a successful fetch showed that day: a failed
    fetch (or a day without one) never becomes a price, and no price is carried over."""
    sample = warehouse.query(
        f"""
        SELECT h.retailer, h.sku, h.day, h.price_offer FROM price_history AS h
        WHERE h.day >= $1 AND NOT EXISTS (
            SELECT 1 FROM raw_prices AS r
            WHERE r.retailer = h.retailer AND r.sku = h.sku AND r.fetch_status = 'ok'
              AND r.observed_at >= timezone('{MARKET_TZ}', CAST(h.day AS TIMESTAMP))
              AND r.observed_at < timezone('{MARKET_TZ}', CAST(h.day AS TIMESTAMP)
                                                          + INTERVAL '1 day')
              AND r.price_offer IS NOT DISTINCT FROM h.price_offer
              AND r.price_list IS NOT DISTINCT FROM h.price_list
              AND r.price_card IS NOT DISTINCT FROM h.price_card
        )
        ORDER BY h.day DESC, h.retailer, h.sku
        """,
        [day_of(now) - timedelta(days=RECENT_HISTORY_DAYS)],
    )
    return CheckOutcome(
        sample.is_empty(),
        f"{sample.height} closes of the last {RECENT_HISTORY_DAYS} days match no successful "
        "fetch of that day",
        metadata={
            "unbacked_closes": sample.height,
            "examples": [
                f"{r['day']}|{r['retailer']}/{r['sku']}: {r['price_offer']}"
                for r in sample.head(10).iter_rows(named=True)
            ],
        },
    )


# -- match model -------------------------------------------------------------------------------

# The model behind product_matches must find true pairs without inventing false ones: below
# these on its validation pairs it would hide spreads or invent them.
MIN_VALIDATION_PRECISION = 0.9
MIN_VALIDATION_RECALL = 0.85


def match_model_is_accurate(metrics: dict[str, float]) -> CheckOutcome:
    """The match model's precision and recall on its validation pairs clear their floors."""
    precision, recall = metrics.get("precision"), metrics.get("recall")
    if precision is None or recall is None:
        return CheckOutcome(False, "the match model reports no validation precision / recall")
    low = [
        f"{name} {value:.3f} < {floor}"
        for name, value, floor in (
            ("precision", precision, MIN_VALIDATION_PRECISION),
            ("recall", recall, MIN_VALIDATION_RECALL),
        )
        if value < floor
    ]
    return CheckOutcome(
        not low,
        "validation "
        + ("; ".join(low) if low else f"precision {precision:.3f}, recall {recall:.3f}"),
        metadata={
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "valid_pairs": int(metrics.get("valid_pairs", 0)),
            "min_precision": MIN_VALIDATION_PRECISION,
            "min_recall": MIN_VALIDATION_RECALL,
        },
    )


# -- alerts ------------------------------------------------------------------------------------


def alert_if_failed(
    name: str, outcome: CheckOutcome, dispatcher: AlertDispatcher, run_id: str | None = None
) -> DispatchReport | None:
    """Raise the 🚨 alert of a check that failed at ERROR severity (a WARN failure is shown
    in the UI only); the same check alerts at most once per error cooldown."""
    if not outcome.fails_hard:
        return None
    return dispatcher.system_error(
        f"Data-quality check {name} failed", outcome.summary, key=f"check:{name}", run_id=run_id
    )
