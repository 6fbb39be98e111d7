"""``arbx bench freshness``: seconds from a price landing to its opportunity, at N listings.

Builds a one-day simulated market of N listings and processes it fully (the stages the
assets run: normalize, a full match, history, opportunities), then lands K changes ten
minutes later — ordinary price moves, new listings (each with a counterpart at another
store), new spreads (an offer cut to 60 % at one store of a product several stores carry)
and new glitches (a price at 10 %) — and runs the stages again as a price refresh does:
every stage in its default mode (normalising, matching and evaluating only what changed).
It reports the seconds of that pass per stage, the seconds of a full re-match of the same
catalogue, ``agreement`` (share of listings whose product is the same in both), how the
pass's opportunities compare with a full opportunities pass over the same data
(``opportunities.compared_with_full_pass``), and how many planted changes the pass turned
into what the simulator says they are.

In process, every change lands in one batch, so each change's latency is the pass's
seconds (``seconds.incremental_compute``); the time to the API, the alert and the SSE event
needs the daemon and the service (``--daemon``, not built yet: those keys are null).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from arbx_dagster.bench.memory import StageTimer
from arbx_dagster.bench.scale import GAP_RATE, scratch_warehouse
from arbx_dagster.domain.matching.incremental import agreement
from arbx_dagster.domain.simulator import simulate_snapshot
from arbx_dagster.pipeline.history import refresh_price_history
from arbx_dagster.pipeline.ingest import ingest_observations
from arbx_dagster.pipeline.listings import refresh_listings
from arbx_dagster.pipeline.matching import refresh_matches, train_match_model
from arbx_dagster.pipeline.opportunities import refresh_opportunities
from arbx_dagster.storage.warehouse import Warehouse

Progress = Callable[[str], None]
KEY = ["retailer", "sku"]
# What the K changes are made of (shares of K).
CHANGE_MIX = {"move": 0.5, "new_listing": 0.2, "spread": 0.15, "glitch": 0.15}
LANDS_AFTER = timedelta(minutes=10)
SPREAD_CUT = 0.6
GLITCH_PRICE = 0.1


def plant_changes(
    observations: pl.DataFrame, truth: pl.DataFrame, changes: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``(initial observations, changed observations, planted)`` for ``changes`` changes.

    New listings are held out of the initial observations; the other kinds re-observe a
    listing with a new price, all ``LANDS_AFTER`` the last observation. ``planted``:
    ``retailer, sku, kind, true_product_id``."""
    rng = np.random.default_rng(seed)
    counts = {kind: round(share * changes) for kind, share in CHANGE_MIX.items()}
    shared = truth.filter(pl.len().over("true_product_id") > 1)
    picked = shared.sample(
        n=min(shared.height, sum(counts.values())), seed=int(rng.integers(1 << 31))
    )
    parts, start = {}, 0
    for kind, count in counts.items():
        parts[kind] = picked.slice(start, count)
        start += count
    held_out = parts["new_listing"].select(KEY)
    lands_at = observations["observed_at"].max() + LANDS_AFTER
    initial = observations.join(held_out, on=KEY, how="anti")
    price = {
        "move": pl.col("price_offer") * pl.lit(rng.choice([0.95, 1.05])),
        "new_listing": pl.col("price_offer"),
        "spread": pl.col("price_offer") * SPREAD_CUT,
        "glitch": pl.col("price_offer") * GLITCH_PRICE,
    }
    landed = [
        observations.join(parts[kind].select(KEY), on=KEY, how="semi").with_columns(
            price_offer=price[kind].round(0).cast(pl.Int64),
            price_card=pl.lit(None, dtype=pl.Int64),
            in_stock=pl.lit(True),
            observed_at=pl.lit(lands_at).cast(observations.schema["observed_at"]),
        )
        for kind in CHANGE_MIX
    ]
    planted = pl.concat(
        [parts[kind].with_columns(kind=pl.lit(kind)) for kind in CHANGE_MIX]
    ).select(*KEY, "kind", "true_product_id")
    return initial, pl.concat(landed), planted


# The tables an opportunities pass reads and writes, and what a full pass and an
# incremental one must agree on (confidence: to rounding, it is aged by multiplication).
OPPORTUNITY_TABLES = (
    "opportunities",
    "opportunity_inputs",
    "opportunity_segment_changes",
    "opportunity_product_gaps",
    "opportunity_runs",
)
COMPARED = [
    "opportunity_id", "kind", "canonical_id", "buy_retailer", "buy_sku", "buy_price",
    "ref_retailer", "ref_sku", "ref_price", "margin_clp", "severity", "review",
    "glitch_type", "status", "times_seen", "confirmation", "reason",
]  # fmt: skip


def snapshot(warehouse: Warehouse, tables: tuple[str, ...]) -> dict[str, pl.DataFrame]:
    return {table: warehouse.query(f"SELECT * FROM {table}") for table in tables}


def restore(warehouse: Warehouse, saved: dict[str, pl.DataFrame]) -> None:
    with warehouse.transaction():
        for table, rows in saved.items():
            warehouse.replace(table, rows)


def compare_opportunities(first: pl.DataFrame, second: pl.DataFrame) -> dict[str, Any]:
    """How two opportunities tables differ: rows in one only (on ``COMPARED``), and the
    largest confidence difference of the rows they share."""
    a, b = first.select(COMPARED), second.select(COMPARED)
    shared = first.select("opportunity_id", "confidence").join(
        second.select("opportunity_id", "confidence"), on="opportunity_id"
    )
    gap = (shared["confidence"] - shared["confidence_right"]).abs().max()
    only_first = a.join(b, on=COMPARED, how="anti", nulls_equal=True).height
    only_second = b.join(a, on=COMPARED, how="anti", nulls_equal=True).height
    return {
        "rows": [first.height, second.height],
        "only_in_first": only_first,
        "only_in_second": only_second,
        "max_confidence_gap": float(gap or 0.0),
        "identical": only_first == only_second == 0 and (gap or 0.0) < 1e-9,
    }


def _process(
    warehouse: Warehouse, now: datetime, model: Any, timed: Callable, before_opportunities=None
) -> Any:
    """The stages a price refresh runs, each timed under its name; returns what
    ``before_opportunities`` (called between history and opportunities) returns."""
    timed("normalize", lambda: refresh_listings(warehouse, now=now, mode="auto"))
    timed("match", lambda: refresh_matches(warehouse, now=now, scorer=model, mode="auto"))
    timed("history", lambda: refresh_price_history(warehouse, now=now))
    kept = before_opportunities() if before_opportunities else None
    timed("opportunities", lambda: refresh_opportunities(warehouse, now=now))
    return kept


def _found(warehouse: Warehouse, planted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, Any]:
    """Of each planted kind, how many the pass turned into what they are: a live spread
    bought at the cut listing, a live glitch at the glitching one, a new listing in its
    counterpart's product."""
    live = warehouse.query(
        "SELECT kind, buy_retailer AS retailer, buy_sku AS sku FROM opportunities "
        "WHERE status <> 'expired'"
    )
    matches = warehouse.query("SELECT retailer, sku, canonical_id FROM product_matches")
    products = truth.join(matches, on=KEY)
    joined = planted.join(products.select(*KEY, "canonical_id"), on=KEY, how="left")
    partners = joined.join(
        products.select("true_product_id", other_id="canonical_id", other_retailer="retailer"),
        on="true_product_id",
    ).filter(pl.col("other_retailer") != pl.col("retailer"))
    new_matched = (
        partners.filter(pl.col("kind") == "new_listing")
        .group_by(KEY)
        .agg((pl.col("canonical_id") == pl.col("other_id")).any().alias("ok"))
    )
    found = {
        "spread": planted.filter(pl.col("kind") == "spread")
        .join(live.filter(pl.col("kind") == "spread"), on=KEY, how="semi")
        .height,
        "glitch": planted.filter(pl.col("kind") == "glitch")
        .join(live.filter(pl.col("kind") == "glitch"), on=KEY, how="semi")
        .height,
        "new_listing": int(new_matched["ok"].sum()),
    }
    return {
        kind: {"planted": planted.filter(pl.col("kind") == kind).height, "found": found[kind]}
        for kind in found
    }


def _against_a_full_pass(
    warehouse: Warehouse, saved: dict[str, pl.DataFrame], now: datetime, timed: Callable
) -> dict[str, Any]:
    """The incremental pass's mode and what it evaluated, and how its opportunities compare
    with a full pass's over the same data (the tables put back as they were before it)."""
    last = warehouse.query(
        "SELECT mode, changed_listings, touched_products FROM opportunity_runs "
        "ORDER BY evaluated_at DESC LIMIT 1"
    ).row(0, named=True)
    incremental = warehouse.query("SELECT * FROM opportunities").sort("opportunity_id")
    restore(warehouse, saved)
    timed("full_opportunities", lambda: refresh_opportunities(warehouse, now=now, mode="full"))
    full = warehouse.query("SELECT * FROM opportunities").sort("opportunity_id")
    return {
        "mode": last["mode"],
        "changed_listings": int(last["changed_listings"]),
        "evaluated_products": int(last["touched_products"]),
        "compared_with_full_pass": compare_opportunities(incremental, full),
    }


def run_freshness(
    listings: int,
    changes: int,
    *,
    postgres_url: str | None = None,
    seed: int = 7,
    progress: Progress = lambda stage: None,
) -> dict[str, Any]:
    """Measure one price refresh after ``changes`` changes at ``listings`` listings."""
    timed = StageTimer(progress)
    seconds, memory = timed.seconds, timed.memory
    with memory:
        market = timed(
            "generate", lambda: simulate_snapshot(listings, seed=seed, gap_rate=GAP_RATE)
        )
        truth = market.truth_listings
        initial, landed, planted = plant_changes(market.observations, truth, changes, seed)
        now = market.observations["observed_at"].max() + timedelta(minutes=1)
        later = now + LANDS_AFTER
        with scratch_warehouse(postgres_url) as warehouse:
            timed("load", lambda: ingest_observations(warehouse, initial, now=now))
            model = timed("train", lambda: train_match_model(warehouse))
            _process(warehouse, now, model, lambda s, w: timed(f"initial_{s}", w))
            first = {k: v for k, v in seconds.items() if k.startswith("initial_")}
            timed("land_changes", lambda: ingest_observations(warehouse, landed, now=later))
            saved = _process(
                warehouse, later, model, timed, lambda: snapshot(warehouse, OPPORTUNITY_TABLES)
            )
            incremental_matches = warehouse.query(
                "SELECT retailer, sku, canonical_id FROM product_matches"
            )
            found = _found(warehouse, planted, truth)
            mode = warehouse.query(
                "SELECT mode FROM match_runs ORDER BY matched_at DESC LIMIT 1"
            ).item()
            opportunities = _against_a_full_pass(warehouse, saved, later, timed)
            full = timed(
                "full_rematch",
                lambda: refresh_matches(warehouse, now=later, scorer=model, mode="full"),
            )
            full_matches = warehouse.query(
                "SELECT retailer, sku, canonical_id FROM product_matches"
            )
            by_full = _found(warehouse, planted, truth)["new_listing"]
            engine = warehouse.engine
    stages = ("normalize", "match", "history", "opportunities")
    compute = round(sum(seconds[s] for s in stages), 3)
    return {
        "listings": int(market.observations.height),
        "changes": planted.height,
        "warehouse": engine,
        "daemon": False,
        "match_mode": mode,
        "opportunities": opportunities,
        "seconds": {
            "api": None,
            "alert": None,
            "sse": None,
            "incremental_compute": compute,
            "incremental_by_stage": {s: seconds[s] for s in stages},
            "full_rematch": seconds["full_rematch"],
            "full_opportunities": seconds["full_opportunities"],
            "initial_by_stage": {k.removeprefix("initial_"): v for k, v in first.items()},
            "land_changes": seconds["land_changes"],
        },
        "agreement": round(agreement(incremental_matches, full_matches), 5),
        "full_rematch_listings": int(full.counts["listings"]),
        "found": found,
        "new_listings_matched_by_full_rematch": by_full["found"],
        "peak_rss_mb": round(memory.mb, 1),
    }
